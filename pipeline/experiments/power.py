"""Power of the primary contrast (back-translation − synthesis): variance components measured in ``results/``, the
minimum detectable effect (MDE) of a proposed design, and the measured type-I error of the tests. ::

    python -m pipeline.experiments.power [--design decisive] [--report comparison --report dose_response]
        [--seeds 3 5 8] [--queries 200] [--sims 400] [--out reports/power.md]

For every language × shifted split of the selection with both back-translation and synthesis cells, the seeds ×
queries matrix of per-query AP differences gives the variances of the seed, query and residual effects
(:class:`pipeline.experiments.stats.Crossed`). A proposed design (replicate seeds S, queries Q on the Bible splits;
``shifted_register`` keeps the UDHR's paragraphs, the most it has) then has the expected mean squares, hence the
variance of its mean difference and Satterthwaite's df, per language and pooled over the design's languages
(grid.yaml ``designs:``; equal weights; a language without measurements gets the mean of the measured ones).
From those (``family``: the design's number of primary contrasts):

* MDE: the smallest true difference the two-sided test at ``alpha / family`` (Holm's first step, the strictest)
  detects with probability ``--power``: ``(t(1 − alpha / 2m) + t(power)) · SE``;
* equivalence reach: the smallest margin that TOST at ``alpha / family`` declares with probability ``--power``
  when the true difference is 0: ``(t(1 − alpha / m) + t(1 − (1 − power) / 2)) · SE``.

The type-I error of :func:`~pipeline.experiments.stats.crossed_test` and of the earlier two-level bootstrap is
measured by simulating null data (normal effects with the mean measured components, the declared design). Writes
``--out`` (markdown) and a JSON beside it; both regenerate byte for byte from ``results/``.

A design with root seeds (``roots`` > 1, e.g. ``--design augment_help``) is measured on its own cells so far
(:func:`nested_main`): per primary contrast and language, the spread of the root seeds' mean differences on the
design's first split gives the pooled MDE at R root seeds (:func:`nested_projection`), and the nested test's
type-I error is simulated at those variances. Its default ``--out`` is ``reports/power_<design>.md``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.cli import run_command
from pipeline.config import seeds
from pipeline.experiments import cells, designs, results
from pipeline.experiments.contrasts import declared_contrasts, root_pairs
from pipeline.experiments.stats import (
    Crossed,
    crossed_test,
    equivalence_reach,
    mde,
    nested_test,
    pooled_test,
    satterthwaite,
    two_level_bootstrap,
)
from pipeline.io import write_text

OUT = Path("reports/power.md")
COMPONENTS = ("seed", "query", "residual")
#: Bootstrap samples per simulated data set when measuring the bootstrap's type-I error (its p has a resolution of
#: 1 / 201: enough to count rejections at 0.05, and 50 times cheaper than the reports' 10,000).
CALIBRATION_RESAMPLES = 200


def measured_components(exps: list[results.Experiment]) -> pd.DataFrame:
    """Per language × augmentation size × shifted split: seeds, queries, the observed effect and the three variance
    components of the primary contrast, from the cells both arms share (seeds and queries), with the test and query
    form they were measured on."""
    by_name = {e.name: results.with_query_ap(e) for e in exps}
    table = cells.summary_table(exps, cells.report_form(exps))
    primary = declared_contrasts()[0]
    rows = []
    for (lang, size, split), sub in table.groupby(["lang", "size", "split"], sort=True):
        if split not in primary.splits:
            continue
        arms = [sub[sub["aug"] == arm] for arm in (primary.a, primary.b)]
        if any(a.empty for a in arms):
            continue
        ma, mb = cells.paired_matrices(*arms, by_name, split)
        if ma.shape[0] < 2 or ma.shape[1] < 2:
            continue
        d = ma - mb
        comp = Crossed.of(d).components()
        rows.append({"lang": lang, "size": int(size), "split": split, "seeds": d.shape[0], "queries": d.shape[1],
                     "delta": float(d.mean()), **{f"var_{k}": comp[k] for k in COMPONENTS},
                     "collection": ", ".join(sorted(set(sub["collection"]))), "form": sub["form"].iloc[0]})  # fmt: skip
    if not rows:
        raise cells.CompareError("no language × shifted split has both arms of the primary contrast with >= 2 seeds")
    return pd.DataFrame(rows)


def design_terms(comp: dict[str, float], n_seeds: int, n_queries: int) -> list[tuple[float, int]]:
    """The variance terms of a design's mean difference, from the expected mean squares of the components."""
    expected = Crossed(
        n_seeds,
        n_queries,
        comp["residual"] + n_queries * comp["seed"],
        comp["residual"] + n_seeds * comp["query"],
        comp["residual"],
    )
    return expected.terms()


def design_table(
    measured: pd.DataFrame,
    *,
    pooled: Sequence[str],
    seed_counts: Sequence[int],
    query_counts: Sequence[int],
    family: int,
    alpha: float,
    power: float,
) -> pd.DataFrame:
    """MDE and equivalence reach per shifted split × design (seeds, queries): per measured language and size, and
    pooled over the languages ``pooled`` at each measured size (a pooled language not measured at that size gets
    the mean components of those that are)."""
    rows = []
    for split, sub in measured.groupby("split", sort=True):
        register = split != "shifted_genre"  # the UDHR: its paragraphs are all the queries there are
        comps: dict[tuple[str, int], dict[str, float]] = {}
        for r in sub.itertuples():  # a language and size measured twice: the first report's cells
            comps.setdefault((r.lang, r.size), {k: getattr(r, f"var_{k}") for k in COMPONENTS})
        for n_seeds in seed_counts:
            for q in sorted({int(sub["queries"].max())} if register else set(query_counts)):
                cases = []
                for (lang, size), comp in comps.items():
                    n_q = min(q, int(sub[sub["lang"] == lang]["queries"].max())) if register else q
                    cases.append((lang, size, *satterthwaite(design_terms(comp, n_seeds, n_q))))
                for size in sorted({size for _, size in comps}):
                    chosen = [comps[(lang, size)] for lang in pooled if (lang, size) in comps]
                    if not chosen:
                        continue
                    mean = {k: float(np.mean([c[k] for c in chosen])) for k in COMPONENTS}
                    at_size = [comps.get((lang, size), mean) for lang in pooled]
                    terms = [(t / len(pooled) ** 2, d) for c in at_size for t, d in design_terms(c, n_seeds, q)]
                    measured_here = " ".join(lang for lang in pooled if (lang, size) in comps)
                    cases.append((f"pooled ({measured_here} measured)", size, *satterthwaite(terms)))
                for lang, sz, var, df in cases:
                    rows.append({"split": split, "lang": lang, "size": sz, "seeds": n_seeds, "queries": q,
                                 "se": float(np.sqrt(var)), "df": float(df),
                                 "mde": mde(var, df, alpha=alpha, family=family, power=power),
                                 "equivalence_reach": equivalence_reach(var, df, alpha=alpha, family=family,
                                                                        power=power)})  # fmt: skip
    return pd.DataFrame(rows)


def simulate_null(comp: dict[str, float], n_seeds: int, n_queries: int, rng: np.random.Generator) -> np.ndarray:
    """A seeds × queries difference matrix with no true difference and normal effects of the given variances."""
    sd = {k: np.sqrt(v) for k, v in comp.items()}
    return (
        rng.normal(0, sd["seed"], (n_seeds, 1))
        + rng.normal(0, sd["query"], (1, n_queries))
        + rng.normal(0, sd["residual"], (n_seeds, n_queries))
    )


def type_one_error(
    comp: dict[str, float], n_seeds: int, n_queries: int, *, sims: int, alpha: float, seed: int, bootstrap: bool
) -> float:
    """Share of ``sims`` null data sets on which the test rejects at ``alpha`` (crossed t, or the bootstrap)."""
    rng = np.random.default_rng(seed)
    rejected = 0
    for k in range(sims):
        d = simulate_null(comp, n_seeds, n_queries, rng)
        zero = np.zeros_like(d)
        p = (
            two_level_bootstrap(d, zero, resamples=CALIBRATION_RESAMPLES, seed=k)["p"]
            if bootstrap
            else crossed_test(d, zero)["p"]
        )
        rejected += p < alpha
    return rejected / sims


def calibration(measured: pd.DataFrame, design: designs.Design, *, sims: int, root: int) -> pd.DataFrame:
    """Measured type-I error of both tests per shifted split: null data with the mean measured components, at the
    declared design (its seeds; its queries on the Bible split, the most measured on the UDHR)."""
    rows = []
    for split, sub in measured.groupby("split", sort=True):
        comp = {k: float(sub[f"var_{k}"].mean()) for k in COMPONENTS}
        s, q = design.seeds, design.queries if split == "shifted_genre" else int(sub["queries"].max())
        for name, boot in (("crossed t", False), ("two-level bootstrap", True)):
            rate = type_one_error(comp, s, q, sims=sims, alpha=design.alpha,
                                  seed=seeds.derive(root, "power", split, name), bootstrap=boot)  # fmt: skip
            rows.append({"split": split, "test": name, "seeds": s, "queries": q, "sims": sims, "type_one_error": rate})
    return pd.DataFrame(rows)


#: The levels of a design whose generators are sampled: root seeds in languages, replicate seeds and queries in root
#: seeds (:func:`pipeline.experiments.stats.nested_test`).
NESTED = ("root", "seed", "query", "residual")


def nested_terms(
    comps: Sequence[dict[str, float]], roots: int, n_seeds: int, n_queries: int
) -> list[tuple[float, int]]:
    """The variance terms of a nested design's pooled mean (equal weights over the languages ``comps``, each a dict
    of :data:`NESTED` variances): per language, one root seed's mean varies by ``root + seed / S + query / Q +
    residual / (S Q)``, and the language's mean over ``roots`` root seeds has that over R, on R − 1 df."""
    k = len(comps)
    one_root = [c["root"] + c["seed"] / n_seeds + c["query"] / n_queries + c["residual"] / (n_seeds * n_queries)
                for c in comps]  # fmt: skip
    return [(v / (roots * k**2), roots - 1) for v in one_root]


def simulate_nested_null(
    comp: dict[str, float], roots: int, n_seeds: int, n_queries: int, population: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """One language's null data: ``roots`` seeds × queries matrices with normal effects of the :data:`NESTED`
    variances. Each root seed draws its ``n_queries`` queries without replacement from one population of
    ``population`` query effects (the test's topics: root seeds overlap in queries as the pipeline's query samples
    do; ``population == n_queries``: every root seed has the same queries, as on the UDHR)."""
    sd = {k: np.sqrt(v) for k, v in comp.items()}
    query_effects = rng.normal(0, sd["query"], population)
    out = []
    for _ in range(roots):
        picked = query_effects[rng.choice(population, n_queries, replace=False)]
        out.append(rng.normal(0, sd["root"]) + rng.normal(0, sd["seed"], (n_seeds, 1)) + picked[None, :]
                   + rng.normal(0, sd["residual"], (n_seeds, n_queries)))  # fmt: skip
    return out


def nested_type_one_error(
    comps: dict[str, dict[str, float]], roots: int, n_seeds: int, n_queries: int, population: int, *, sims: int,
    alpha: float, seed: int,
) -> dict[str, float]:  # fmt: skip
    """Share of ``sims`` pooled null data sets (one per language of ``comps``) on which each test rejects at
    ``alpha``: the nested test (root seed the unit) on ``roots`` root seeds × ``n_seeds`` replicate seeds, and, for
    the same number of cells, the earlier design: one root seed per language with ``roots × n_seeds`` replicate
    seeds and the pooled crossed test, which cannot see the generator effect (its one draw shifts every cell of a
    language alike)."""
    rng = np.random.default_rng(seed)
    rejected = {"nested": 0, "crossed, one root seed": 0}
    for _ in range(sims):
        data = {lang: simulate_nested_null(c, roots, n_seeds, n_queries, population, rng) for lang, c in comps.items()}
        rejected["nested"] += nested_test(data)["p"] < alpha
        one_root = [simulate_nested_null(c, 1, roots * n_seeds, n_queries, population, rng)[0] for c in comps.values()]
        parts = [crossed_test(d, np.zeros_like(d)) for d in one_root]
        rejected["crossed, one root seed"] += pooled_test(parts)["p"] < alpha
    return {name: count / sims for name, count in rejected.items()}


def root_means(exps: list[results.Experiment], design: designs.Design) -> pd.DataFrame:
    """Per primary contrast × pooled language × root seed, on ``design.splits[0]``: the root seed's mean per-query
    difference A − B (over its replicate seeds and queries) and the variance of its per-query differences."""
    table = cells.summary_table(exps, cells.report_form(exps))
    by_name = {e.name: results.with_query_ap(e) for e in exps}
    split = design.splits[0]
    rows = []
    for a, b in design.contrasts:
        for lang in design.pooled:
            sub = table[(table["lang"] == lang) & (table["split"] == split)]
            for root, ma, mb in root_pairs(sub, "aug", a, b, by_name, split):
                d = ma - mb
                rows.append({"contrast": f"{a} − {b}", "split": split, "lang": lang, "root_seed": int(root),
                             "seeds": d.shape[0], "queries": d.shape[1], "mean": float(d.mean()),
                             "var_query": float(d.mean(axis=0).var(ddof=1))})  # fmt: skip
    return pd.DataFrame(rows)


def root_variances(means: pd.DataFrame) -> dict[str, float]:
    """Per language with ≥ 2 root seeds in ``means`` (one contrast's :func:`root_means`): the sample variance of its
    root seeds' mean differences."""
    return {lang: float(g["mean"].var(ddof=1)) for lang, g in means.groupby("lang") if len(g) >= 2}


def nested_projection(means: pd.DataFrame, design: designs.Design, root_counts: Sequence[int]) -> pd.DataFrame:
    """Per primary contrast and number of root seeds R: the pooled MDE on the measured split. A language's
    variance of one root seed's mean is the sample variance of its measured root means (its replicate seeds and
    queries as run); a language with fewer than 2 root seeds measured gets the mean of the others'. The pooled
    mean's variance and df are :func:`~pipeline.experiments.stats.nested_test`'s: ``sum(v_l / R) / L²`` on
    Satterthwaite's df over the languages' R − 1."""
    rows = []
    k = len(design.pooled)
    for contrast, group in means.groupby("contrast", sort=False):
        measured = root_variances(group)
        if not measured:
            continue
        fill = float(np.mean(list(measured.values())))
        per_language = [measured.get(lang, fill) for lang in design.pooled]
        kw = {"alpha": design.alpha, "family": design.family, "power": design.power}
        for roots in root_counts:
            var, df = satterthwaite([(v / (roots * k**2), roots - 1) for v in per_language])
            rows.append({"contrast": contrast, "split": group["split"].iloc[0], "roots": roots,
                         "measured": " ".join(measured), "sd_root_mean": float(np.sqrt(fill)),
                         "se": float(np.sqrt(var)), "df": df, "mde": mde(var, df, **kw)})  # fmt: skip
    return pd.DataFrame(rows)


def nested_main(args, design: designs.Design, loaded: list[results.Experiment]) -> None:
    """``--design`` with root seeds: :func:`root_means` of its report's cells so far, :func:`nested_projection` at
    the design's root seeds and one and two more, and the nested test's type-I error simulated at the measured
    variances (a root seed's mean variance split into the part its queries explain and the rest, the generator's;
    at one replicate seed the seed's share is not separable and counts as the generator's, and the per-query
    variance is simulated as noise of each root seed's own; simulated only once a language has 2 root seeds)."""
    means = root_means(cells.select(loaded, *cells.declared_reports()[design.report]), design)
    counts = sorted({design.roots, design.roots + 1, design.roots + 2})
    projection = nested_projection(means, design, counts) if not means.empty else pd.DataFrame()
    calib = []
    for contrast, g in means.groupby("contrast", sort=False):
        root_var = root_variances(g)
        if not root_var:
            continue
        q, noise = int(g["queries"].median()), float(g["var_query"].mean())
        comp = {"root": max(0.0, float(np.mean(list(root_var.values()))) - noise / q), "seed": 0.0, "query": 0.0,
                "residual": noise}  # fmt: skip
        rates = nested_type_one_error(dict.fromkeys(design.pooled, comp), design.roots, 1, q, q, sims=args.sims,
                                      alpha=design.alpha, seed=0)  # fmt: skip
        calib.append({"contrast": contrast, "sd_generator": float(np.sqrt(comp["root"])), **rates})
    settings = {"design": design.name, "pooled": " ".join(design.pooled), "family": design.family,
                "alpha": design.alpha, "power": design.power, "target_mde": design.target_mde,
                "roots_declared": design.roots}  # fmt: skip
    out = args.out if args.out != OUT else OUT.with_name(f"power_{design.name}.md")
    tables = {"root means": means, "projection": projection, "type-I error": pd.DataFrame(calib)}
    text = [f"# Power of design `{design.name}` from its own cells so far", "",
            "Settings: " + ", ".join(f"{k} = {v}" for k, v in settings.items()) + ".", ""]  # fmt: skip
    for title, df in tables.items():
        text += [f"## {title}", "", df.to_markdown(index=False, floatfmt=".4f") if not df.empty else "None yet.", ""]
    write_text(out, "\n".join(text))
    payload = {"settings": settings, **{k: df.to_dict("records") for k, df in tables.items()}}
    write_text(out.with_suffix(".json"), json.dumps(payload, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out} and {out.with_suffix('.json')}")


def render(measured: pd.DataFrame, projected: pd.DataFrame, calib: pd.DataFrame, settings: dict) -> str:
    m = measured.copy()
    for k in COMPONENTS:
        m[f"sd_{k}"] = np.sqrt(m.pop(f"var_{k}"))
    lines = [
        f"# Power of the primary contrast ({declared_contrasts()[0].label})",
        "",
        "Settings: " + ", ".join(f"{k} = {v}" for k, v in settings.items()) + ".",
        "",
        "## Variance components measured in results/ (SD of the seed, query and residual effects of the "
        "per-query AP difference)",
        "",
        m.to_markdown(index=False, floatfmt=".4f"),
        "",
        "## Minimum detectable effect and equivalence reach of a design",
        "",
        "mde: the smallest true difference detected with the stated power at alpha / family (two-sided); "
        "equivalence_reach: the smallest TOST margin declared with that power when the true difference is 0. "
        "Pooled: the equal-weight mean over the languages (unmeasured languages at the measured mean).",
        "",
        projected.to_markdown(index=False, floatfmt=".4f"),
        "",
        "## Type-I error measured by simulation (null data, measured components and design, nominal "
        f"{settings['alpha']})",
        "",
        calib.to_markdown(index=False, floatfmt=".3f"),
        "",
    ]
    return "\n".join(lines)


def main(argv: Iterable[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=results.RESULTS_DIR)
    ap.add_argument("--design", default="decisive", help="a declared design (grid.yaml: designs)")
    ap.add_argument("--report", action="append", help="declared report(s) whose cells to measure "
                    "(default: comparison and dose_response, the cells run before the design)")  # fmt: skip
    ap.add_argument("--seeds", type=int, nargs="+", default=[3, 5, 8], help="replicate seeds per cell")
    ap.add_argument(
        "--queries", type=int, nargs="+", default=[200], help="queries per Bible split, besides the design's"
    )
    ap.add_argument("--sims", type=int, default=400, help="null data sets per test and split")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(list(argv) if argv is not None else None)
    design = designs.declared()[args.design]
    declared = cells.declared_reports()
    loaded = [results.ran_params(e) for e in results.load(args.results)]
    if design.roots > 1:
        nested_main(args, design, loaded)
        return
    reports = args.report or ["comparison", "dose_response"]
    measured = pd.concat(
        [measured_components(cells.select(loaded, *declared[name])).assign(report=name) for name in reports],
        ignore_index=True,
    )
    settings = {"design": design.name, "pooled": " ".join(design.pooled), "family": design.family,
                "alpha": design.alpha, "power": design.power, "margin": design.margin,
                "target_mde": design.target_mde}  # fmt: skip
    projected = design_table(measured, pooled=design.pooled, seed_counts=sorted({*args.seeds, design.seeds}),
                           query_counts=sorted({*args.queries, design.queries}), family=design.family,
                           alpha=design.alpha, power=design.power)  # fmt: skip
    calib = calibration(measured, design, sims=args.sims, root=0)
    write_text(args.out, render(measured, projected, calib, settings))
    payload = {"settings": settings, "measured": measured.to_dict("records"), "designs": projected.to_dict("records"),
               "calibration": calib.to_dict("records")}  # fmt: skip
    write_text(args.out.with_suffix(".json"), json.dumps(payload, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    run_command(main)
