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

Statistics (docs/results.md, "How the tests work"; computed by :mod:`pipeline.experiments.stats`): for each contrast A
− B the per-query AP difference is taken on the same queries and the same replicate seeds (``distill.seed`` also draws
the seed bitext, so seed k of A and seed k of B share it); the effect is the mean difference, its 95 % confidence
interval and its p-value come from a two-level bootstrap (resample seeds, then queries,
:func:`~pipeline.experiments.stats.two_level_bootstrap`), and p-values are Holm-adjusted within each declared family
(``grid.yaml``'s ``contrasts:``, :func:`~pipeline.experiments.stats.holm`). A declared report
(``--report NAME``) is a selection that ``grid.yaml``'s ``reports:`` names, beside the grids it reads. Writes
``reports/comparison.md``, a CSV of every experiment's AP per split (one row per replicate seed), a CSV of the tests
and a bar chart; with several ``augment.size`` values also the dose–response line chart ``*_by_size.png``.

The cells are selected by :mod:`pipeline.experiments.cells` and tested by :mod:`pipeline.experiments.contrasts`;
this module writes the reports and is the command line.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from pipeline.cli import run_command
from pipeline.config.conditions import AUG_ORIGINS
from pipeline.config.paths import QUERY_FORMS, SHIFTED, SPLITS
from pipeline.experiments import designs, grid, quality, results
from pipeline.experiments.cells import (
    DEFAULT_REPORT,
    STRATA,
    CompareError,
    declared_reports,
    report_form,
    select,
    stratum_settings,
    summary_table,
)
from pipeline.experiments.conditions import CONDITION, uses
from pipeline.experiments.contrasts import (
    bootstrap_test,
    contrasts,
    crossed_t,
    declared_contrasts,
    design_answer,
    families,
    interim,
    test_line,
    test_of,
)
from pipeline.experiments.results import Experiment
from pipeline.experiments.stats import (
    RESAMPLES,
)
from pipeline.io import atomic_path, write_text
from pipeline.plots import dose_response_chart, forest_plot, panels_bar_chart, quality_chart

OUT = Path("reports/comparison.md")


def render_answer(answer: pd.DataFrame, design: designs.Design, done: int, declared: int) -> str:
    """The declared design's answer as markdown: the primary family, then the contrast per language; while
    ``done`` < ``declared`` cells have run, marked as interim (not the answer). A design with root seeds:
    :func:`render_nested_answer`."""
    status = _status(done, declared)
    if answer.empty:
        unit = "root seeds" if design.roots > 1 else "seeds"
        return f"# The answer (design `{design.name}`)\n\n{status}No language has both arms with >= 2 {unit} yet.\n\n"
    if design.roots > 1:
        return render_nested_answer(answer, design, status)
    a = _formatted(answer)
    a["seeds"] = a["seeds"].map(lambda x: "" if pd.isna(x) else str(int(x)))
    a["queries"] = a["queries"].map(lambda x: "" if pd.isna(x) else str(int(x)))
    cols = ["family", "split", "languages", "seeds", "queries", *ANSWER_COLUMNS]
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
        "for a reader who asks whether the answer would hold for other low-resource languages.\n\n" + _table(a, cols)
    )


def render_nested_answer(answer: pd.DataFrame, design: designs.Design, status: str) -> str:
    """The answer of a design with root seeds: every primary and secondary contrast, pooled and per language."""
    a = _formatted(answer)
    a["roots"] = ["" if pooled else str(int(r)) for r, pooled in zip(a.get("roots", a["df"]), a["pooled"], strict=True)]
    cols = ["family", "contrast", "split", "languages", "roots", "df", *ANSWER_COLUMNS]
    a["df"] = a["df"].map(lambda x: f"{x:.1f}")
    primary = int((answer["family"] == "primary (pooled)").sum())
    return (
        f"# The answer (design `{design.name}`, declared in grid.yaml before its cells ran)\n\n"
        + status
        + f"Student AP, per contrast and split: pooled over the languages listed (equal weights; the primary family, "
        f"m = {primary}, and the secondary one), and per language (m = its rows). The root seed is the unit: per "
        "language the mean difference of each root seed (its replicate seeds and queries nested in it), the "
        "language's effect their mean on `roots` − 1 df; pooled, Satterthwaite df over the languages. p (Holm) for a "
        f"difference, TOST p (Holm) for equivalence within ±{design.margin} AP; MDE at power {design.power} and the "
        "family's Holm-strictest level; Q and tau: heterogeneity across the pooled languages; *languages random*: "
        "the random-effects mean over them (Paule–Mandel) with its t CI on (languages − 1) df.\n\n" + _table(a, cols)
    )


#: The columns every answer table ends with (:func:`_formatted`).
ANSWER_COLUMNS = ["Δ AP [95 % CI]", "p_holm", "p_equivalence_holm", "MDE", "Q (p), tau", "outcome",
                  "languages random"]  # fmt: skip


def _status(done: int, declared: int) -> str:
    return (
        f"**Interim: {done} of the {declared} declared cells have run; this is not the answer.**\n\n"
        if done < declared
        else f"All {declared} declared cells have run.\n\n"
    )


def _formatted(answer: pd.DataFrame) -> pd.DataFrame:
    """An answer's numbers as the tables print them (:data:`ANSWER_COLUMNS`)."""
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
    return a


def _table(a: pd.DataFrame, cols: list[str]) -> str:
    renamed = a[cols].rename(columns={"p_holm": "p (Holm)", "p_equivalence_holm": "TOST p (Holm)"})
    return renamed.to_markdown(index=False, disable_numparse=True) + "\n\n"


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


def _distinct(table: pd.DataFrame, k: str) -> pd.Series:
    """The values of column ``k`` in ``table``; for ``mt_epochs`` and ``keep`` only on the rows whose aug uses them
    (``size`` keeps aug none's 0, as the reports have always shown it)."""
    if k in ("mt_epochs", "keep") and "aug" in table:
        return table.loc[[uses(a, k) for a in table["aug"]], k]
    return table[k]


def _shown(df: pd.DataFrame, table: pd.DataFrame) -> list[str]:
    """The strata and condition columns that vary in ``table`` (one value: said once above the tables)."""
    return [
        k
        for k in ("lang", "root_seed", *CONDITION)
        if k in df and (k in ("lang", "aug") or _distinct(table, k).nunique() > 1)
    ]


def _constant(table: pd.DataFrame) -> str:
    values = {k: _distinct(table, k) for k in ("root_seed", *CONDITION) if k != "aug"}
    fixed = [f"{k} = {v.iloc[0]}" for k, v in values.items() if v.nunique() == 1]
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
    declared = declared_contrasts()
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
        + "; ".join(
            f"**{f}**: " + ", ".join(sorted({c.label for c in declared if c.family == f})) for f in families(declared)
        )
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
    design = next((d for d in designs.declared(args.grid_file).values() if d.report == args.report), None)
    groups = grouped(table)
    tests = contrasts(table, by_name, crossed_t if design else bootstrap_test)
    out = args.out
    text = render(
        table, groups, tests, robustness(table), stratum_settings(exps), CROSSED_TEXT if design else BOOTSTRAP_TEXT
    )
    if design:
        declared = set(designs.declared_cells(design, args.grid_file))
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
            if "contrast" in answer:  # several contrasts (a design with root seeds): each row says which
                label = [f"{c}: {x}" for c, x in zip(answer["contrast"], label, strict=True)]
            title = f"{design.a} − {design.b} (AP)" if "contrast" not in answer else "A − B (AP)"
            forest_plot(answer.assign(label=label), design.margin, title, out.with_name(out.stem + "_forest.png"))
    if quality.has_levels(table):  # an arm at several MT levels: Δ AP against the MT's chrF
        split = design.splits[0] if design else SHIFTED[0]
        pts = quality.points(table, by_name, split)
        fitted = quality.slopes(pts, alpha=0.05)
        text += "\n" + quality.render(pts, fitted, split)
        quality_chart(pts, quality.LIMIT, out.with_name(out.stem + "_quality.png"))
        with atomic_path(out.with_name(out.stem + "_quality.csv")) as tmp:
            fitted.to_csv(tmp, index=False, float_format="%.6g")
    write_text(out, test_line(table) + text)
    with atomic_path(out.with_suffix(".csv")) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out.with_name(out.stem + "_tests.csv")) as tmp:
        tests.assign(**test_of(table)).to_csv(tmp, index=False, float_format="%.6g")
    written = plot(table, groups, out.with_suffix(".png"))
    print(f"wrote {out} and its CSVs, {', '.join(map(str, written))} ({len(exps)} experiments)")


if __name__ == "__main__":
    run_command(main)
