"""The statistics of the reports: tests of a paired AP difference over replicate seeds × queries, and Holm.

Pure functions on numpy arrays; :mod:`pipeline.experiments.compare` chooses what to compare, and renders the
tables and charts. The unit is the (replicate seed, query) pair: row k of both matrices is replicate seed k
(``distill.seed`` also draws the seed bitext, so seed k of A and seed k of B share it), column j the same query.

:func:`crossed_test` is the answer's test. The difference ``d[s, q]`` of seed s and query q is modelled as
``delta + u_s + v_q + e_sq`` with seed, query and residual effects random and crossed (every seed sees every
query). Their variances come from the two-way ANOVA mean squares (method of moments, negative estimates set to
0); the variance of the mean difference is ``var_u / S + var_v / Q + var_e / (S Q)``, its degrees of freedom
Satterthwaite's. Effect, confidence interval, two-sided p and the two one-sided tests (TOST) of equivalence
within a margin all come from that one t distribution, so the interval excludes 0 exactly when p < alpha.
:func:`pooled_test` averages such contrasts over languages (language a fixed effect, equal weights) and reports
their heterogeneity (Cochran's Q, DerSimonian–Laird tau), beside a random-effects sensitivity analysis (languages
as a sample: Paule–Mandel). :func:`two_level_bootstrap` is the earlier test, kept
for its measured comparison (``python -m pipeline.experiments.power``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps
from statsmodels.stats.meta_analysis import combine_effects
from statsmodels.stats.multitest import multipletests

from pipeline.errors import PipelineError

#: Bootstrap samples per contrast.
RESAMPLES = 10_000


class StatsError(PipelineError):
    pass


def two_level_bootstrap(a: np.ndarray, b: np.ndarray, *, resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """Effect, 95 % CI and two-sided p of mean(a − b) for per-query AP matrices (replicate seeds × queries).

    Row k of ``a`` and of ``b`` share replicate seed k; column j is the same query. Each bootstrap sample draws
    the seeds with replacement, then the queries with replacement, and takes the mean difference over the drawn
    cells (two multinomial weight vectors, so no loop). The CI is the percentile interval; the p-value is the
    share of the centred bootstrap distribution at least as far from 0 as the observed effect, (1 + count) /
    (1 + resamples). With one seed this is the ordinary paired bootstrap over queries.
    """
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] < 2:
        raise StatsError("the bootstrap needs two equally shaped seeds × queries matrices with ≥ 2 queries")
    d = a - b
    n_seeds, n_queries = d.shape
    delta = float(d.mean())
    rng = np.random.default_rng(seed)
    w_seed = rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=resamples)
    w_query = rng.multinomial(n_queries, np.full(n_queries, 1 / n_queries), size=resamples)
    boot = np.einsum("bs,sq,bq->b", w_seed, d, w_query) / (n_seeds * n_queries)
    lo, hi = np.quantile(boot, [0.025, 0.975])
    extreme = np.abs(boot - delta) >= abs(delta) - 1e-12
    return {
        "delta": delta,
        "ci_low": float(lo),
        "ci_high": float(hi),
        "p": float((1 + extreme.sum()) / (1 + resamples)),
        "seeds": n_seeds,
        "queries": n_queries,
    }


def holm(pvalues: Iterable[float]) -> np.ndarray:
    """Holm-adjusted p-values of one family, in the order given (``statsmodels.stats.multitest``)."""
    p = np.asarray(list(pvalues), dtype=float)
    return multipletests(p, method="holm")[1] if len(p) else p


@dataclass(frozen=True)
class Crossed:
    """Two-way ANOVA of a seeds × queries difference matrix without replication."""

    seeds: int
    queries: int
    ms_seed: float
    ms_query: float
    ms_residual: float

    @classmethod
    def of(cls, d: np.ndarray) -> Crossed:
        d = np.asarray(d, dtype=float)
        if d.ndim != 2 or d.shape[0] < 2 or d.shape[1] < 2:
            raise StatsError(f"a crossed test needs >= 2 seeds and >= 2 queries; got a {d.shape} matrix")
        s, q = d.shape
        grand = d.mean()
        rows, cols = d.mean(axis=1), d.mean(axis=0)
        resid = d - rows[:, None] - cols[None, :] + grand
        return cls(
            s,
            q,
            float(q * ((rows - grand) ** 2).sum() / (s - 1)),
            float(s * ((cols - grand) ** 2).sum() / (q - 1)),
            float((resid**2).sum() / ((s - 1) * (q - 1))),
        )

    def components(self) -> dict[str, float]:
        """Variances of the seed, query and residual effects (method of moments, clipped at 0)."""
        return {
            "seed": max(0.0, (self.ms_seed - self.ms_residual) / self.queries),
            "query": max(0.0, (self.ms_query - self.ms_residual) / self.seeds),
            "residual": self.ms_residual,
        }

    def terms(self) -> list[tuple[float, int]]:
        """The variance of the mean difference as a sum of (term, its degrees of freedom): each term is a mean
        square times a coefficient; a component clipped at 0 contributes nothing."""
        s, q, n = self.seeds, self.queries, self.seeds * self.queries
        df_e = (s - 1) * (q - 1)
        out = [(self.ms_residual / n, df_e)]
        if self.ms_seed > self.ms_residual:
            out += [(self.ms_seed / n, s - 1), (-self.ms_residual / n, df_e)]
        if self.ms_query > self.ms_residual:
            out += [(self.ms_query / n, q - 1), (-self.ms_residual / n, df_e)]
        return out


def satterthwaite(terms: Sequence[tuple[float, int]]) -> tuple[float, float]:
    """(variance, degrees of freedom) of a linear combination of independent mean squares."""
    var = float(sum(t for t, _ in terms))
    denom = sum(t * t / df for t, df in terms)
    return var, (var * var / denom if denom > 0 else float("inf"))


def t_inference(delta: float, var: float, df: float, *, alpha: float, margin: float | None) -> dict:
    """Effect, (1 - alpha) CI and two-sided p of a t statistic; with ``margin``, the TOST p of |delta| < margin
    (the larger of the two one-sided p-values)."""
    se = float(np.sqrt(var))
    half = float(sps.t.ppf(1 - alpha / 2, df)) * se
    out = {"delta": float(delta), "se": se, "df": float(df), "ci_low": delta - half, "ci_high": delta + half}
    if se > 0:
        out["p"] = float(2 * sps.t.sf(abs(delta) / se, df))
    else:  # every cell differs by the same amount
        out["p"] = 1.0 if delta == 0 else 0.0
    if margin is not None:
        lower = sps.t.sf((delta + margin) / se, df) if se > 0 else float(delta <= -margin)
        upper = sps.t.cdf((delta - margin) / se, df) if se > 0 else float(delta >= margin)
        out["p_equivalence"] = float(max(lower, upper))
    return out


def crossed_test(a: np.ndarray, b: np.ndarray, *, alpha: float = 0.05, margin: float | None = None) -> dict:
    """mean(a − b) over a seeds × queries design with crossed random seed and query effects (module docstring):
    effect, standard error, Satterthwaite df, CI, p, the variance components, and with ``margin`` the TOST p."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise StatsError(f"the crossed test needs equally shaped matrices; got {a.shape} and {b.shape}")
    design = Crossed.of(a - b)
    var, df = satterthwaite(design.terms())
    out = t_inference(float((a - b).mean()), var, df, alpha=alpha, margin=margin)
    return {**out, "seeds": design.seeds, "queries": design.queries,
            **{f"var_{k}": v for k, v in design.components().items()}, "terms": design.terms()}  # fmt: skip


def pooled_test(results: Sequence[dict], *, alpha: float = 0.05, margin: float | None = None) -> dict:
    """The equal-weight mean of independent :func:`crossed_test` results (one per language: a fixed effect), with
    Satterthwaite df over all their terms: the declared test. Beside it, the languages' heterogeneity and a
    random-effects sensitivity analysis (:func:`heterogeneity`)."""
    if len(results) < 1:
        raise StatsError("a pooled test needs at least one contrast")
    k = len(results)
    delta = float(np.mean([r["delta"] for r in results]))
    var, df = satterthwaite([(t / k**2, d) for r in results for t, d in r["terms"]])
    out = t_inference(delta, var, df, alpha=alpha, margin=margin)
    effects, variances = [r["delta"] for r in results], [r["se"] ** 2 for r in results]
    return {**out, "languages": k, "Q_df": k - 1, **heterogeneity(effects, variances, alpha=alpha)}


def heterogeneity(effects: Sequence[float], variances: Sequence[float], *, alpha: float) -> dict:
    """Per-language effects and their variances, from statsmodels' meta-analysis (``combine_effects``,
    inverse-variance weights): Cochran's Q with its p and the DerSimonian–Laird between-language SD tau (truncated at
    0, which statsmodels' DL leaves to the caller); and a sensitivity analysis that treats the languages as a sample
    of languages: the random-effects mean with the Paule–Mandel between-language variance (statsmodels truncates it
    at 0) and its t CI on k − 1 df (``re_delta``, ``re_ci_low``, ``re_ci_high``; NaN for one language)."""
    k, nan = len(effects), float("nan")
    if k < 2:
        return {"Q": 0.0, "Q_p": nan, "tau": 0.0, "re_delta": nan, "re_ci_low": nan, "re_ci_high": nan}
    effects, variances = np.asarray(effects, dtype=float), np.asarray(variances, dtype=float)
    with np.errstate(invalid="ignore"):  # DL's own random-effects fields (unused) take sqrt of a negative tau²
        dl = combine_effects(effects, variances, method_re="dl")
    pm = combine_effects(effects, variances, method_re="iterated", use_t=True, alpha=alpha)
    low, high = pm.conf_int()[1]  # random effects, t on k - 1 df
    return {"Q": float(dl.q), "Q_p": float(sps.chi2.sf(dl.q, k - 1)), "tau": float(np.sqrt(max(dl.tau2, 0.0))),
            "re_delta": float(pm.mean_effect_re), "re_ci_low": float(low), "re_ci_high": float(high)}  # fmt: skip


def nested_test(
    by_language: Mapping[str, Sequence[np.ndarray]], *, alpha: float = 0.05, margin: float | None = None
) -> dict:
    """mean(A − B) pooled over languages when the generators were sampled: each language has R ≥ 2 root seeds
    (each a new MT model, new pools and LLM samples, a new query sample), and each root seed a replicate seeds ×
    queries matrix of per-query differences (``by_language[lang][r]``; shapes may differ between root seeds).

    Replicate seeds and queries are nested in root seeds, root seeds in languages. The unit of the test is the root
    seed: its mean difference ``m_lr`` carries every level below it, so ``var_r(m_lr) / R`` estimates the variance
    of a language's mean without a model of the levels (the generator effect included, however large). The pooled
    effect is the equal-weight mean over the languages (a fixed effect), its variance the sum of theirs over L²,
    its df Satterthwaite's over the languages' R − 1. Returns the pooled inference (:func:`t_inference`), one per
    language (t on R − 1 df), the heterogeneity of the languages (:func:`heterogeneity`) and, where every root seed
    has ≥ 2 seeds and ≥ 2 queries, the variance components: the mean within-root ones (:class:`Crossed`) and the
    root seeds' own (``var_root``: the spread of the root means beyond what the levels below explain, clipped at 0).
    """
    if not by_language:
        raise StatsError("a nested test needs at least one language")
    per_language, terms, components = {}, [], []
    k = len(by_language)
    for lang, matrices in by_language.items():
        means = np.array([np.asarray(m, dtype=float).mean() for m in matrices])
        if len(means) < 2:
            raise StatsError(f"{lang}: a nested test needs >= 2 root seeds per language; got {len(means)}")
        var = float(means.var(ddof=1) / len(means))
        per_language[lang] = {**t_inference(float(means.mean()), var, len(means) - 1, alpha=alpha, margin=margin),
                              "roots": len(means)}  # fmt: skip
        terms.append((var / k**2, len(means) - 1))
        components.append(_root_components(matrices, means))
    delta = float(np.mean([r["delta"] for r in per_language.values()]))
    var, df = satterthwaite(terms)
    out = t_inference(delta, var, df, alpha=alpha, margin=margin)
    effects = [r["delta"] for r in per_language.values()]
    meta = heterogeneity(effects, [r["se"] ** 2 for r in per_language.values()], alpha=alpha)
    known = [c for c in components if c is not None]
    mean_components = {key: float(np.mean([c[key] for c in known])) for key in known[0]} if known else {}
    return {**out, "languages": k, "Q_df": k - 1, **meta, "per_language": per_language,
            **{f"var_{key}": v for key, v in mean_components.items()}}  # fmt: skip


def _root_components(matrices: Sequence[np.ndarray], means: np.ndarray) -> dict[str, float] | None:
    """One language's mean within-root components and its root variance; None where a root seed has one seed or
    one query (its within-root components are not estimable)."""
    if any(np.ndim(m) != 2 or min(np.shape(m)) < 2 for m in matrices):
        return None
    designs = [Crossed.of(m) for m in matrices]
    within = [satterthwaite(d.terms())[0] for d in designs]  # each root mean's variance from the levels below
    comps = [d.components() for d in designs]
    out = {key: float(np.mean([c[key] for c in comps])) for key in comps[0]}
    return {"root": max(0.0, float(means.var(ddof=1)) - float(np.mean(within))), **out}


def mde(var: float, df: float, *, alpha: float, family: int, power: float) -> float:
    """Minimum detectable effect: the smallest true difference that the two-sided t test at ``alpha / family``
    (Holm's first, strictest step) detects with probability ``power``, for an estimate of variance ``var``."""
    return float((sps.t.ppf(1 - alpha / (2 * family), df) + sps.t.ppf(power, df)) * np.sqrt(var))


def equivalence_reach(var: float, df: float, *, alpha: float, family: int, power: float) -> float:
    """The smallest margin that TOST at ``alpha / family`` declares with probability ``power`` when the true
    difference is 0."""
    return float((sps.t.ppf(1 - alpha / family, df) + sps.t.ppf(1 - (1 - power) / 2, df)) * np.sqrt(var))


#: What a primary contrast (A − B) can conclude, given its Holm-adjusted difference and equivalence p-values.
OUTCOMES = ("A better", "B better", "equivalent", "inconclusive")


def outcome(delta: float, p_holm: float, p_equivalence_holm: float, alpha: float = 0.05) -> str:
    """One of :data:`OUTCOMES`: a difference where the (adjusted) test rejects 0, else equivalence where TOST
    rejects |delta| >= margin, else inconclusive."""
    if p_holm < alpha:
        return OUTCOMES[0] if delta > 0 else OUTCOMES[1]
    if p_equivalence_holm < alpha:
        return OUTCOMES[2]
    return OUTCOMES[3]
