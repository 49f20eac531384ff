"""Compare experiments: the student's AP per language × condition × split over replicate seeds, with tests
whose unit is the (replicate seed, query) pair and p-values adjusted over declared families.

Usage (after a grid, see docs/usage.md)::

    python -m pipeline.experiments.compare --results results/      # the answer: reports/comparison.* from results/
    python -m pipeline.experiments.compare --report dose_response  # another declared report (grid.yaml: reports)
    python -m pipeline.experiments.compare [--results DIR] [--where key=value ...] [--out reports/NAME.md]  # any

Reads the experiments from ``results/`` (``python -m pipeline.experiments.results`` writes it) or, without
``--results``, from the live experiment refs of the current commit (``dvc exp show --json``), keeps those matching
``--where`` (dotted param keys, or ``grid=NAME``: the grid that named the experiment) and checks that within a
language only the comparison's axes vary: the condition (``aug``, ``augment.size``, ``distill.loss``,
``evaluate.scoring``), the replicate seed ``distill.seed`` and the root ``seed`` (a stratum: it draws new test
queries, so contrasts are made within one root seed). Anything else would confound the comparison, and the error
names the key. A param that differs between strata (languages, root seeds) but is constant within each is listed
as a setting per stratum (e.g. a language or a root seed run in float32 while others ran in bf16).

Statistics (docs/results.md, "How the tests work"; computed by :mod:`pipeline.experiments.stats`): for each
contrast A − B the per-query AP difference is taken on the same queries and the same replicate seeds
(``distill.seed`` also draws the seed bitext, so seed k of A and seed k of B share it); the effect is the mean
difference, its 95 % confidence interval and its p-value come from a two-level bootstrap (resample seeds, then
queries, :func:`~pipeline.experiments.stats.two_level_bootstrap`), and p-values are Holm-adjusted within each
declared family (:data:`CONTRASTS`, :func:`~pipeline.experiments.stats.holm`). A declared report (``--report
NAME``) is a selection that ``grid.yaml``'s ``reports:`` names, beside the grids it reads. Writes
``reports/comparison.md``, a CSV of every experiment's AP per split (one row per replicate seed), a CSV of the
tests and a bar chart; with several ``augment.size`` values also the dose–response line chart ``*_by_size.png``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import seeds as seeds_
from pipeline.cli import run_command
from pipeline.errors import PipelineError
from pipeline.experiments import grid, results
from pipeline.experiments.results import Experiment
from pipeline.experiments.stats import (
    OUTCOMES,
    RESAMPLES,
    crossed_test,
    equivalence_reach,
    holm,
    mde,
    outcome,
    pooled_test,
    two_level_bootstrap,
)
from pipeline.io import atomic_path, write_text
from pipeline.paths import AUG_ORIGINS, QUERY_FORMS, SHIFTED, SPLITS
from pipeline.plots import dose_response_chart, forest_plot, panels_bar_chart

#: Table column -> the param it comes from. A condition is (aug, size, loss, marginals, scoring).
CONDITION = {
    "aug": "aug",
    "size": "augment.size",
    "loss": "distill.loss",
    "marginals": "distill.marginals",
    "scoring": "evaluate.scoring",
}
#: Condition params that older commits did not have, and the value those commits behaved as.
BEFORE_PARAM = {"distill.marginals": "uniform"}
STRATA = {"lang": "lang", "root_seed": "seed"}
REPLICATE = "distill.seed"
ALLOWED_TO_VARY = {*CONDITION.values(), *STRATA.values(), REPLICATE}
OUT = Path("reports/comparison.md")


@dataclass(frozen=True)
class Contrast:
    """A − B: the condition with ``axis`` = ``a`` against the same condition with ``axis`` = ``b``."""

    family: str
    axis: str
    a: str
    b: str
    splits: tuple[str, ...] = tuple(SPLITS)

    @property
    def label(self) -> str:
        return f"{self.a} − {self.b}"


#: The families, declared before the grid ran (issue 14); Holm adjusts within each family over every contrast of
#: it that the selected experiments allow (a wider selection: a larger family, a more conservative adjustment).
CONTRASTS = (
    # primary: the research question, under domain shift, per language
    Contrast("primary", "aug", "backtranslation", "synthetic", SHIFTED),
    # secondary: does each augmentation help at all
    Contrast("secondary", "aug", "backtranslation", "none"),
    Contrast("secondary", "aug", "synthetic", "none"),
    Contrast("secondary", "aug", "both", "none"),
    Contrast("secondary", "aug", "parallel", "none"),
    # controls: the oracle English side, and the question in-domain
    Contrast("control", "aug", "parallel", "backtranslation"),
    Contrast("control", "aug", "backtranslation", "synthetic", ("in_domain",)),
    # OPTICAL: the token alignment against plain pooled KD, and the scoring it is meant to serve
    Contrast("optical", "loss", "ot", "pooled"),
    Contrast("optical", "loss", "ot+pooled", "pooled"),
    Contrast("optical", "marginals", "idf", "uniform"),
    Contrast("optical", "scoring", "maxsim", "dense"),
)
FAMILIES = list(dict.fromkeys(c.family for c in CONTRASTS))


#: What ``--results DIR`` alone writes: the answer, ``reports/comparison.*`` (declared in grid.yaml's ``reports:``).
DEFAULT_REPORT = "comparison"


class CompareError(PipelineError):
    pass


def _varying(exps: list[Experiment]) -> set[str]:
    """Param keys with more than one value among ``exps`` (a key missing from some, added by a later commit,
    varies only if its values differ)."""
    keys = set().union(*(e.params for e in exps))
    return {k for k in keys if len({repr(e.params[k]) for e in exps if k in e.params}) > 1}


def aug_rows(params: dict) -> int:
    """Augmentation rows in the bitext: ``augment.size``, or 0 for ``aug: none`` (which ignores the size)."""
    return 0 if params.get("aug") == "none" else int(params.get("augment.size", 0))


def condition(params: dict) -> dict:
    """The condition columns of an experiment's params (``size``: :func:`aug_rows`)."""
    return {k: aug_rows(params) if k == "size" else params.get(p, BEFORE_PARAM.get(p)) for k, p in CONDITION.items()}


def _key(e: Experiment) -> tuple:
    return (*(e.params.get(p) for p in STRATA.values()), *condition(e.params).values(), e.params.get(REPLICATE))


def _value(e: Experiment, key: str) -> str:
    """A param's value as text; ``grid``: the grid that named the experiment (``experiments.grid``: NAME-values)."""
    return e.name.split("-", 1)[0] if key == "grid" else str(e.params.get(key))


def select(exps: list[Experiment], where: dict[str, str], *more: dict[str, str]) -> list[Experiment]:
    """The experiments matching ``where`` (or any of ``more``); an error if a param other than the comparison's
    axes varies within a stratum (a language and root seed). A param may differ between strata (every contrast is
    within one): such settings are listed by :func:`stratum_settings`. The same cell twice (an experiment and its
    commit) counts once, and ``augment.size`` is ignored where ``aug`` is none. A value ``a|b`` matches either."""
    wheres = [where, *more]
    unknown = sorted({k for w in wheres for k in w} - {"grid"} - set().union(*(e.params for e in exps)))
    if unknown:
        raise CompareError(f"selection key(s) {unknown}: no param of any experiment (nor `grid`)")
    keep = [e for e in exps if any(all(_value(e, k) in v.split("|") for k, v in w.items()) for w in wheres)]
    if not keep:
        raise CompareError(f"no experiment matches {' or '.join(map(str, wheres))}")
    strata: dict[tuple, list[Experiment]] = {}
    for e in keep:
        strata.setdefault(_stratum(e), []).append(e)
    within = {k: stratum for stratum, group in strata.items() for k in _varying(group)}
    extra = sorted(set(within) - ALLOWED_TO_VARY)
    if extra:
        label = {k: ", ".join(f"{s} {v}" for s, v in zip(STRATA, within[k], strict=True)) for k in extra}
        where_ = ", ".join(f"{k} ({label[k]})" for k in extra)
        raise CompareError(
            f"these params differ among the selected experiments of one language and root seed, which would "
            f"confound the comparison: {where_}; narrow the selection with --where key=value"
        )
    seen: set[tuple] = set()
    unique = []
    for e in keep:
        if _key(e) not in seen:
            seen.add(_key(e))
            unique.append(e)
    return unique


def _stratum(e: Experiment) -> tuple[str, ...]:
    """The experiment's language and root seed: contrasts never cross them."""
    return tuple(str(e.params.get(p)) for p in STRATA.values())


def stratum_settings(exps: list[Experiment]) -> pd.DataFrame:
    """Params that differ between strata (languages, root seeds) but are constant within each, as :func:`select`
    checks: one row per stratum, with the root seed only where it varies."""
    keys = sorted(_varying(exps) - ALLOWED_TO_VARY)
    rows = {}
    for e in exps:
        rows.setdefault(_stratum(e), {k: e.params.get(k) for k in keys})
    table = pd.DataFrame([dict(zip(STRATA, s, strict=True)) | v for s, v in sorted(rows.items())])
    shown = [name for name in STRATA if name == "lang" or table[name].nunique() > 1]
    return table.reindex(columns=[*shown, *keys])


def report_form(exps: list[Experiment]) -> str:
    """The query form a report compares: the first of :data:`~pipeline.paths.QUERY_FORMS` (``title``, then
    ``desc``) with which every selected experiment was evaluated on every split it has (experiments from before
    both forms were evaluated have ``desc`` only)."""
    for form in QUERY_FORMS:
        if all(form in e.forms(split) for e in exps for split in e.splits() if split != "topics"):
            return form
    raise CompareError(f"the selected experiments share no query form on their splits (forms: {QUERY_FORMS})")


def test_of(table: pd.DataFrame) -> dict[str, str]:
    """The test (``prepare.collection``, several joined by commas), the query form of a summary table's numbers and
    the engine(s) that decoded its generators' MT (``mt.engine``)."""
    return {
        "collection": ", ".join(sorted(set(table["collection"]))),
        "form": table["form"].iloc[0],
        "mt_engine": ", ".join(sorted(set(table["mt_engine"]))),
    }


def test_line(table: pd.DataFrame) -> str:
    """The sentence that opens every report: the test and the query form all its numbers are on."""
    test = test_of(table)
    collections = ", ".join(f"`{c}`" for c in test["collection"].split(", "))
    engines = ", ".join(f"`{e}`" for e in test["mt_engine"].split(", "))
    return (
        f"All numbers below: student AP on the {collections} test (`prepare.collection`), `{test['form']}` queries; "
        f"MT decoded by {engines} (`mt.engine`).\n\n"
    )


def summary_table(exps: list[Experiment], form: str) -> pd.DataFrame:
    """One row per experiment × split evaluated with ``form`` queries: strata, condition, replicate seed, the test
    and the student's AP."""
    rows = []
    for e in exps:
        for split in e.splits():
            if form not in e.forms(split):
                continue
            rows.append(
                {
                    "exp": e.name,
                    "rev": e.rev,
                    **{k: e.params.get(p) for k, p in STRATA.items()},
                    **condition(e.params),
                    "seed": e.params.get(REPLICATE),
                    "split": split,
                    "collection": e.collection,
                    "form": form,
                    "mt_engine": e.mt_engine,
                    "AP": e.student(split, form)["AP"],
                }
            )
    if not rows:
        raise CompareError(f"no selected experiment has student AP with {form} queries in metrics/eval/*.json")
    return pd.DataFrame(rows)


def seed_query_matrix(table: pd.DataFrame, exps: dict[str, Experiment], split: str) -> pd.DataFrame:
    """Per-query AP of the rows of ``table`` (one condition, one query form): replicate seeds × queries."""
    rows = {r.seed: pd.Series(exps[r.exp].query_ap[split][r.form]) for r in table.itertuples()}
    return pd.DataFrame(rows).T.sort_index()


def paired_matrices(
    cell_a: pd.DataFrame, cell_b: pd.DataFrame, exps: dict[str, Experiment], split: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per-query AP of two conditions on the replicate seeds and queries both have (seeds × queries each)."""
    ma, mb = seed_query_matrix(cell_a, exps, split), seed_query_matrix(cell_b, exps, split)
    seeds, queries = ma.index.intersection(mb.index), ma.columns.intersection(mb.columns)
    return ma.loc[seeds, queries].to_numpy(), mb.loc[seeds, queries].to_numpy()


def bootstrap_test(a: np.ndarray, b: np.ndarray, seed: int) -> dict:
    """The reports' test without a declared design: the two-level bootstrap."""
    return two_level_bootstrap(a, b, seed=seed)


def crossed_t(a: np.ndarray, b: np.ndarray, seed: int) -> dict | None:
    """The test of a declared design (:func:`~pipeline.experiments.stats.crossed_test`): effect, CI and p from
    one t distribution; no resampling, so ``seed`` is unused. None with fewer than 2 seeds (no seed variance)."""
    if a.shape[0] < 2:
        return None
    res = crossed_test(a, b)
    return {k: res[k] for k in ("delta", "ci_low", "ci_high", "p", "se", "df", "seeds", "queries")}


def contrasts(table: pd.DataFrame, exps: dict[str, Experiment], test=bootstrap_test) -> pd.DataFrame:
    """Every declared contrast the table allows, per stratum × split × the rest of the condition; Holm per family.
    ``test(a, b, seed)``: :func:`bootstrap_test`, or :func:`crossed_t` for a report with a declared design."""
    cond = list(CONDITION)
    out = []
    for (lang, root, split), sub in table.groupby(["lang", "root_seed", "split"], sort=True):
        cells = {tuple(k): g for k, g in sub.groupby(cond, sort=True)}
        for c in CONTRASTS:
            if split not in c.splits:
                continue
            for key, cell_a in cells.items():
                a = dict(zip(cond, key, strict=True))
                if str(a[c.axis]) != c.a:
                    continue
                b = {**a, c.axis: c.b} | ({"size": 0} if (c.axis, c.b) == ("aug", "none") else {})
                cell_b = cells.get(tuple(b[k] for k in cond))
                if cell_b is None:
                    continue
                ma, mb = paired_matrices(cell_a, cell_b, exps, split)
                if ma.shape[0] == 0 or ma.shape[1] < 2:
                    continue
                res = test(ma, mb, seeds_.derive(0, "compare", str(lang), str(root), split, c.label, repr(key)))
                if res is None:
                    continue
                out.append({"family": c.family, "lang": lang, "root_seed": root, "split": split, **a,
                            "contrast": c.label, **res})  # fmt: skip
    tests = pd.DataFrame(out)
    if tests.empty:
        return tests
    tests["p_holm"] = np.nan
    for idx in tests.groupby("family").groups.values():
        tests.loc[idx, "p_holm"] = holm(tests.loc[idx, "p"])
        tests.loc[idx, "family_size"] = len(idx)
    tests["family"] = pd.Categorical(tests["family"], FAMILIES, ordered=True)
    return tests.sort_values(
        ["family", "lang", "root_seed", "split", "size", "loss", "marginals", "scoring", "contrast"]
    ).reset_index(drop=True)


def design_answer(table: pd.DataFrame, exps: dict[str, Experiment], design: grid.Design) -> pd.DataFrame:
    """The declared design's answer: per split, ``design.a − design.b`` per pooled language (crossed seeds ×
    queries test) and pooled over the languages present (equal weights, Q and tau). Holm over the splits for the
    pooled rows (the primary family), over languages × splits for the per-language rows (secondary), for the
    difference and for TOST within ``design.margin``; each row's MDE from its own SE and df at the family's size,
    and its outcome (:func:`~pipeline.experiments.stats.outcome`)."""
    names = {OUTCOMES[0]: f"{design.a} better", OUTCOMES[1]: f"{design.b} better",
             OUTCOMES[2]: f"equivalent within ±{design.margin}", OUTCOMES[3]: "inconclusive"}  # fmt: skip
    rows = []
    for split in design.splits:
        parts = []
        for lang in design.pooled:
            sub = table[(table["lang"] == lang) & (table["split"] == split)]
            arms = [sub[sub["aug"] == arm] for arm in (design.a, design.b)]
            if any(arm.empty for arm in arms):
                continue
            ma, mb = paired_matrices(*arms, exps, split)
            if ma.shape[0] < 2 or ma.shape[1] < 2:
                continue
            res = crossed_test(ma, mb, alpha=design.alpha, margin=design.margin)
            parts.append(res)
            rows.append({"split": split, "languages": lang, "pooled": False, **res})
        if parts:
            languages = " ".join(r["languages"] for r in rows if r["split"] == split and not r["pooled"])
            pooled = pooled_test(parts, alpha=design.alpha, margin=design.margin)
            rows.append({"split": split, "pooled": True, **pooled, "languages": languages})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out = out.drop(columns=["terms"])
    for mask in (out["pooled"], ~out["pooled"]):
        m = int(mask.sum())
        out.loc[mask, "family_size"] = m
        out.loc[mask, "p_holm"] = holm(out.loc[mask, "p"]) if m else []
        out.loc[mask, "p_equivalence_holm"] = holm(out.loc[mask, "p_equivalence"]) if m else []
    out["family_size"] = out["family_size"].astype(int)
    kw = {"alpha": design.alpha, "power": design.power}
    sizes = list(zip(out["se"], out["df"], out["family_size"], strict=True))
    out["mde"] = [mde(se**2, df, family=m, **kw) for se, df, m in sizes]
    out["equivalence_reach"] = [equivalence_reach(se**2, df, family=m, **kw) for se, df, m in sizes]
    out["outcome"] = [
        names[outcome(d, p, q, design.alpha)]
        for d, p, q in zip(out["delta"], out["p_holm"], out["p_equivalence_holm"], strict=True)
    ]
    out.insert(0, "family", np.where(out["pooled"], "primary (pooled)", "by language"))
    return out.sort_values(["pooled", "split"], ascending=[False, True], kind="stable").reset_index(drop=True)


def interim(answer: pd.DataFrame, done: int, declared: int) -> pd.DataFrame:
    """The answer with no outcome while ``done`` < ``declared`` cells have run: each row's outcome is
    ``interim`` (its effect, CI and p stay, for the record; the families' Holm sizes are not yet final)."""
    return answer.assign(outcome="interim") if done < declared and not answer.empty else answer


def render_answer(answer: pd.DataFrame, design: grid.Design, done: int, declared: int) -> str:
    """The declared design's answer as markdown: the primary family, then the contrast per language; while
    ``done`` < ``declared`` cells have run, marked as interim (not the answer)."""
    status = (
        f"**Interim: {done} of the {declared} declared cells have run; this is not the answer.**\n\n"
        if done < declared
        else f"All {declared} declared cells have run.\n\n"
    )
    if answer.empty:
        return f"# The answer (design `{design.name}`)\n\n{status}No language has both arms with >= 2 seeds yet.\n\n"
    a = answer.copy()
    a["Δ AP [95 % CI]"] = [
        f"{d:+.4f} [{lo:+.4f}, {hi:+.4f}]" for d, lo, hi in zip(a["delta"], a["ci_low"], a["ci_high"], strict=True)
    ]
    for col in ("p_holm", "p_equivalence_holm"):
        a[col] = a[col].map(lambda x: f"{x:.3g}")
    a["MDE"] = a["mde"].map(lambda x: f"{x:.4f}")
    a["Q (p), tau"] = [
        f"{q:.1f} ({qp:.2g}), {t:.4f}" if pooled and pd.notna(qp) else ""
        for q, qp, t, pooled in zip(a["Q"], a["Q_p"], a["tau"], a["pooled"], strict=True)
    ]
    a["languages random"] = [
        f"{d:+.4f} [{lo:+.4f}, {hi:+.4f}]" if pooled and pd.notna(lo) else ""
        for d, lo, hi, pooled in zip(a["re_delta"], a["re_ci_low"], a["re_ci_high"], a["pooled"], strict=True)
    ]
    cols = ["family", "split", "languages", "seeds", "queries", "Δ AP [95 % CI]", "p_holm", "p_equivalence_holm",
            "MDE", "Q (p), tau", "outcome", "languages random"]  # fmt: skip
    a["seeds"] = a["seeds"].map(lambda x: "" if pd.isna(x) else str(int(x)))
    a["queries"] = a["queries"].map(lambda x: "" if pd.isna(x) else str(int(x)))
    return (
        f"# The answer (design `{design.name}`, declared in grid.yaml before its cells ran)\n\n"
        + status
        + f"{design.a} − {design.b}, student AP, per split: pooled over the languages listed (equal weights; "
        f"primary family, m = {int(answer['pooled'].sum())}), and per language (m = its rows). Effect and 95 % CI "
        "from the crossed seeds × queries t test (Satterthwaite df); p (Holm) for a difference, TOST p (Holm) for "
        f"equivalence within ±{design.margin} AP; MDE at power {design.power} and the family's Holm-strictest "
        "level; Q and tau: heterogeneity across the pooled languages. *Languages random*: a sensitivity analysis "
        "added after the design was declared, not part of the declared test or its outcome: the random-effects mean "
        "over the pooled languages (Paule–Mandel between-language variance) with its t CI on (languages − 1) df, "
        "for a reader who asks whether the answer would hold for other low-resource languages.\n\n"
        + a[cols]
        .rename(columns={"p_holm": "p (Holm)", "p_equivalence_holm": "TOST p (Holm)"})
        .to_markdown(index=False, disable_numparse=True)
        + "\n\n"
    )


def grouped(table: pd.DataFrame) -> pd.DataFrame:
    """Mean ± sd of the student's AP over replicate seeds per stratum × split × condition."""
    keys = ["lang", "root_seed", "split", *CONDITION]
    g = table.groupby(keys, sort=True)["AP"]
    out = pd.DataFrame({"seeds": g.size(), "mean": g.mean(), "sd": g.std(ddof=1)}).reset_index()
    out["aug"] = pd.Categorical(out["aug"], list(AUG_ORIGINS), ordered=True)
    out["split"] = pd.Categorical(out["split"], SPLITS, ordered=True)
    return out.sort_values(keys).reset_index(drop=True)


def robustness(table: pd.DataFrame) -> pd.DataFrame:
    """Shifted AP / in-domain AP of each experiment's student, as mean ± sd over seeds per stratum × condition."""
    keys = ["lang", "root_seed", *CONDITION]
    wide = table.pivot_table(index=[*keys, "exp"], columns="split", values="AP").reset_index()
    if "in_domain" not in wide:
        return pd.DataFrame()
    rows = []
    for key, g in wide.groupby(keys, sort=True):
        row = {**dict(zip(keys, key, strict=True)), "seeds": len(g)}
        for split in SHIFTED:
            if split in g:
                ratio = g[split] / g["in_domain"]
                row[f"{split} / in_domain"] = (
                    f"{ratio.mean():.3f} ± {ratio.std(ddof=1):.3f}" if len(g) > 1 else f"{ratio.mean():.3f}"
                )
        rows.append(row)
    out = pd.DataFrame(rows)
    out["aug"] = pd.Categorical(out["aug"], list(AUG_ORIGINS), ordered=True)
    return out.sort_values(keys).reset_index(drop=True)


def _shown(df: pd.DataFrame, table: pd.DataFrame) -> list[str]:
    """The strata and condition columns that vary in ``table`` (one value: said once above the tables)."""
    return [
        k for k in ("lang", "root_seed", *CONDITION) if k in df and (k in ("lang", "aug") or table[k].nunique() > 1)
    ]


def _constant(table: pd.DataFrame) -> str:
    fixed = [f"{k} = {table[k].iloc[0]}" for k in ("root_seed", *CONDITION) if k != "aug" and table[k].nunique() == 1]
    return "Fixed in every selected experiment: " + ", ".join(f"`{f}`" for f in fixed) + "." if fixed else ""


#: (short name, sentence) of each test, for the reports' text
BOOTSTRAP_TEXT = (
    "two-level bootstrap",
    f"95 % CI and p from {RESAMPLES:,} two-level bootstrap samples (seeds, then queries)",
)
CROSSED_TEXT = ("crossed t test", "95 % CI and p from the crossed seeds × queries t test (Satterthwaite df)")


def render(
    table: pd.DataFrame,
    groups: pd.DataFrame,
    tests: pd.DataFrame,
    robust: pd.DataFrame,
    settings: pd.DataFrame,
    method: tuple[str, str] = BOOTSTRAP_TEXT,
) -> str:
    g = groups.copy()
    g["AP (mean ± sd)"] = [
        f"{m:.4f} ± {s:.4f}" if pd.notna(s) else f"{m:.4f}" for m, s in zip(g["mean"], g["sd"], strict=True)
    ]
    cols = _shown(g, table)
    lines = [_constant(table), ""] if _constant(table) else []
    if set(settings.columns) - set(STRATA):
        lines += [
            "# Settings per stratum (params that differ between languages or root seeds; constant within each)",
            "",
            settings.to_markdown(index=False),
            "",
        ]
    lines += [
        "# Student AP (mean ± sd over replicate seeds `distill.seed`; `size`: augmentation rows)",
        "",
        g[[*cols[:1], "split", *cols[1:], "seeds", "AP (mean ± sd)"]].to_markdown(index=False),
        "",
        "# Robustness of the student (shifted AP / in-domain AP, mean ± sd over seeds)",
        "",
        robust[[*_shown(robust, table), "seeds", *[c for c in robust if "/" in c]]].to_markdown(index=False)
        if not robust.empty
        else "No in-domain split.",
        "",
        f"# Contrasts (unit: replicate seed × query; {method[0]}; Holm within each family)",
        "",
        f"Δ AP = mean per-query AP difference over the paired seeds and queries; {method[1]}; p (Holm): adjusted "
        "within the family "
        "(m = its number of contrasts here). Families: "
        + "; ".join(f"**{f}**: " + ", ".join(sorted({c.label for c in CONTRASTS if c.family == f})) for f in FAMILIES)
        + f" (primary only on {' and '.join(SHIFTED)}).",
        "",
    ]
    if tests.empty:
        lines.append("No contrast has both sides in the selected experiments.")
    else:
        t = tests.copy()
        t["Δ AP"] = t["delta"].map(lambda x: f"{x:+.4f}")
        t["95 % CI"] = [f"[{lo:+.4f}, {hi:+.4f}]" for lo, hi in zip(t["ci_low"], t["ci_high"], strict=True)]
        t["p"] = t["p"].map(lambda x: f"{x:.3g}")
        t["p (Holm)"] = t["p_holm"].map(lambda x: f"{x:.3g}")
        t["m"] = t["family_size"].astype(int)
        keep = ["family", "m", *[c for c in _shown(t, table) if c != "aug"], "split", "contrast", "seeds", "queries"]
        lines.append(t[[*keep, "Δ AP", "95 % CI", "p", "p (Holm)"]].to_markdown(index=False, disable_numparse=True))
    return "\n".join(lines) + "\n"


def plot(table: pd.DataFrame, groups: pd.DataFrame, path: Path) -> list[Path]:
    """The bar chart of student AP by split (one panel per language, or per language and root seed when the root
    seed varies), each stratum at its largest augmentation size; where a stratum has several sizes, the
    dose–response."""
    written = [path]
    strata = list(STRATA)
    largest = groups[groups["size"] == groups.groupby(strata)["size"].transform("max")]
    bars = pd.concat([largest, groups[groups["aug"] == "none"]]).drop_duplicates(["lang", "root_seed", "split", "aug"])
    panel = bars["lang"].astype(str)
    if bars["root_seed"].nunique() > 1:
        panel = panel + ", root seed " + bars["root_seed"].astype(str)
    splits = [s for s in SPLITS if s in set(table["split"])]
    panels_bar_chart(bars.assign(panel=panel), "panel", splits, list(AUG_ORIGINS), "student AP", path)
    augmented = table[table["aug"] != "none"]
    if (augmented.groupby(strata)["size"].nunique() > 1).any():
        written.append(path.with_name(path.stem + "_by_size.png"))
        dose_response_chart(groups, splits, list(AUG_ORIGINS), written[-1])
    return written


def declared_reports(grid_file: Path = grid.GRID_FILE) -> dict[str, tuple[dict[str, str], ...]]:
    """The reports ``grid_file`` declares (``reports:``): name -> its selections (an experiment matching any of
    them enters ``reports/NAME.*``); :data:`DEFAULT_REPORT` among them."""
    declared = grid.reports(grid_file)
    if DEFAULT_REPORT not in declared:
        raise CompareError(f"{grid_file}: reports: no {DEFAULT_REPORT!r} (the report --results alone writes)")
    return declared


def load(args) -> list[Experiment]:
    """The experiments of ``results/`` or of the live refs, with what ran in place of ``auto`` (a cell's
    precision is what its machine ran, :func:`pipeline.experiments.results.ran_params`)."""
    if args.results:
        exps = results.load(args.results)
    else:
        exps = [results.with_info(e) for e in results.parse_exp_show(results.exp_show(args.all_commits))]
    return [results.ran_params(e) for e in exps]


def main(argv: Iterable[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--results",
        type=Path,
        help="read experiments from this directory (pipeline.experiments.results); alone: --report comparison",
    )
    ap.add_argument("--report", help="a declared report (grid.yaml: reports): its selection from results/")
    ap.add_argument("--where", action="append", default=[], help="dotted.param=value[|value] (repeatable)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--all-commits", action="store_true", help="live refs: also earlier commits (dvc exp show -A)")
    ap.add_argument("--grid-file", type=Path, default=grid.GRID_FILE, help="where the reports are declared")
    ap.add_argument("--query-form", choices=QUERY_FORMS, help="compare this form (default: report_form's choice)")
    args = ap.parse_args(list(argv) if argv is not None else None)
    if args.results and not args.where and not args.report:
        args.report = DEFAULT_REPORT  # all of results/ mixes grids that must not be compared with each other
    wheres = [dict(w.split("=", 1) for w in args.where)]
    if args.report:
        declared = declared_reports(args.grid_file)
        if args.report not in declared:
            raise CompareError(
                f"{args.grid_file}: no report {args.report!r} in reports: (declared: {sorted(declared)})"
            )
        wheres = [w | wheres[0] for w in declared[args.report]]
        args.results = args.results or results.RESULTS_DIR
        args.out = args.out if args.out != OUT else OUT.with_name(f"{args.report}.md")
    exps = select(load(args), *wheres)
    by_name = {e.name: results.with_query_ap(e) for e in exps}
    if len(by_name) != len(exps):
        raise CompareError("two selected experiments have the same name")
    table = summary_table(exps, args.query_form or report_form(exps))
    design = next((d for d in grid.designs(args.grid_file).values() if d.report == args.report), None)
    groups = grouped(table)
    tests = contrasts(table, by_name, crossed_t if design else bootstrap_test)
    out = args.out
    text = render(
        table, groups, tests, robustness(table), stratum_settings(exps), CROSSED_TEXT if design else BOOTSTRAP_TEXT
    )
    if design:
        declared = set(grid.declared_cells(design, args.grid_file))
        done = len(declared & {e.name for e in exps})
        answer = interim(design_answer(table, by_name, design), done, len(declared))
        text = render_answer(answer, design, done, len(declared)) + text
        answer = answer.assign(**test_of(table))
        with atomic_path(out.with_name(out.stem + "_answer.csv")) as tmp:
            answer.to_csv(tmp, index=False, float_format="%.6g")
        if not answer.empty:
            # the pooled row says how many of the design's languages it pools so far
            label = [
                f"pooled ({len(langs.split())} of {len(design.pooled)})" if pooled else langs
                for langs, pooled in zip(answer["languages"], answer["pooled"], strict=True)
            ]
            labels = answer.assign(label=label)
            forest_plot(labels, design.margin, f"{design.a} − {design.b} (AP)", out.with_name(out.stem + "_forest.png"))
    write_text(out, test_line(table) + text)
    with atomic_path(out.with_suffix(".csv")) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out.with_name(out.stem + "_tests.csv")) as tmp:
        tests.assign(**test_of(table)).to_csv(tmp, index=False, float_format="%.6g")
    written = plot(table, groups, out.with_suffix(".png"))
    print(f"wrote {out} and its CSVs, {', '.join(map(str, written))} ({len(exps)} experiments)")


if __name__ == "__main__":
    run_command(main)
