"""The study's answer: student AP per ``aug`` from the compare reports, their contrasts, and the declared
design's outcome and status."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from pipeline.config import paths
from pipeline.config.conditions import AUG_ORIGINS
from pipeline.errors import PipelineError
from pipeline.experiments import results
from pipeline.experiments.render import BENCHMARK_RESULTS, minutes, source, tests
from pipeline.io import read_json

LANG_SPLIT = ("lang", "split")


def aug_report(report: str, by: tuple[str, ...] = LANG_SPLIT, tested: tuple[str, ...] = LANG_SPLIT) -> str:
    """A compare report over ``aug`` values (``reports/<report>.csv``): its table of student AP per ``by`` and
    ``aug``, then its contrasts (``reports/<report>_tests.csv``, labelled by ``tested``)."""
    table = aug_table(paths.REPORTS_DIR / f"{report}.csv", by=by)
    return table + "\n\n" + tests_table(paths.REPORTS_DIR / f"{report}_tests.csv", list(tested))


def aug_table(path: Path, by: tuple[str, ...] = LANG_SPLIT) -> str:
    """Student AP per ``by`` (default: language and split) and ``aug`` (mean ± sd over replicate seeds) from a
    compare report's CSV."""
    df = pd.read_csv(path)
    order = [a for a in AUG_ORIGINS if a in set(df["aug"])]
    stats = df.groupby([*by, "aug"])["AP"].agg(["mean", "std", "count"]).reset_index()
    lines = ["| " + " | ".join(by) + " | " + " | ".join(order) + " |", "|---" * (len(order) + len(by)) + "|"]
    for key, g in stats.groupby(list(by)):
        cells = {r.aug: f"{r.mean:.4f} ± {0 if pd.isna(r.std) else r.std:.4f} ({r.count})" for r in g.itertuples()}
        shown = [f"`{v}`" if k == "lang" else str(v) for k, v in zip(by, key, strict=True)]
        lines.append("| " + " | ".join(shown) + " | " + " | ".join(cells.get(a, "–") for a in order) + " |")
    return "\n".join([*lines, "", "Student AP, mean ± sd over replicate seeds (n). " + source(path)])


def _ap_cell(g: pd.DataFrame) -> str:
    sd = g["AP"].std(ddof=1)
    return f"{g['AP'].mean():.4f} ± {0 if pd.isna(sd) else sd:.4f} ({len(g)})"


def tests_table(path: Path, columns: list[str]) -> str:
    """A compare report's contrasts (``*_tests.csv``): effect, 95 % CI, raw and Holm-adjusted p."""
    t = pd.read_csv(path)
    lines = [
        "| family (m) | " + " | ".join(columns) + " | contrast | seeds × queries | Δ AP [95 % CI] | p | p (Holm) |",
        "|---" * (len(columns) + 6) + "|",
    ]
    for r in t.itertuples():
        cells = " | ".join(str(getattr(r, c)) for c in columns)
        lines.append(
            f"| {r.family} ({int(r.family_size)}) | {cells} | {r.contrast} | {r.seeds} × {r.queries} "
            f"| {r.delta:+.4f} [{r.ci_low:+.4f}, {r.ci_high:+.4f}] | {r.p:.3g} | {r.p_holm:.3g} |"
        )
    return "\n".join([*lines, "", source(path)])


#: Upstream metrics of the answer's languages: every cell of a language shares them (the MT model, the
#: back-translated and synthesised pools, the filters); the AP of its student is what the cells change.
_UPSTREAM = ("metrics/mt.json", "metrics/backtranslate.json", "metrics/synthesize.json")


def answer_components() -> str:
    """Per language of ``reports/comparison.csv``: how good its MT model and its LLM synthesis were, from the
    ``results/`` records of its cells (the components the answer rests on, measured)."""
    cells = pd.read_csv(paths.REPORTS_DIR / "comparison.csv").groupby("lang")["exp"].unique()
    lines = [
        "| lang | precision | MT BLEU / chrF (source dev) | (genre dev) | BT degenerate | synthesis: prompts "
        "/ generated / kept | word validity of kept | bitext pools kept: BT / synthetic | aug rows |",
        "|---" * 9 + "|",
    ]
    for lang, names in cells.items():
        files = [results.RESULTS_DIR / f"{name}.json" for name in sorted(names)]
        exps = [results.from_record(read_json(path), str(path)) for path in files]
        upstream = {json.dumps([e.metrics[m] for m in _UPSTREAM], sort_keys=True) for e in exps}
        if len(upstream) != 1:
            raise PipelineError(f"results/: the {lang} cells of reports/comparison.csv differ upstream of bitext")
        m, params = exps[0].metrics, exps[0].params
        mt_, bt, syn = m["metrics/mt.json"], m["metrics/backtranslate.json"], m["metrics/synthesize.json"]
        pools = m["metrics/bitext.json"]["augmentation"]
        lines.append(
            f"| `{lang}` | {params['train.precision']} "
            f"| {mt_['dev_source']['bleu']:.1f} / {mt_['dev_source']['chrf']:.1f} "
            f"| {mt_['dev_target_genre']['bleu']:.1f} / {mt_['dev_target_genre']['chrf']:.1f} "
            f"| {bt['degenerate_rate']:.1%} | {syn['prompts']:,} / {syn['generated']:,} / {syn['kept']} "
            f"(pass rate {syn['pass_rate']:.2f}) | {syn['quality_kept']['word_validity']:.2f} "
            f"| {pools['backtranslation']['kept_in_pool']:,} / {pools['synthetic']['kept_in_pool']} "
            f"| {params['augment.size']} |"
        )
    note = (
        "One row per language (identical in each of its cells, checked). BLEU and chrF: sacrebleu, the MT "
        "model (target → English) on held-out verses and on the shifted genre's held-out text; BT degenerate: "
        "back-translations with an n-gram loop; kept: lines that passed the synthesis filters; pools kept: lines "
        "the bitext filters keep, from which `aug rows` are drawn. "
    )
    return "\n".join([*lines, "", note + source("reports/comparison.csv", "results/")])


def dose_response() -> str:
    """Student AP against the number of augmentation rows (``reports/dose_response.csv``), then its contrasts."""
    path = paths.REPORTS_DIR / "dose_response.csv"
    df = pd.read_csv(path)
    sizes = sorted(df["size"].unique())
    lines = ["| lang | split | aug | " + " | ".join(f"{s} rows" for s in sizes) + " |", "|---" * (len(sizes) + 3) + "|"]
    order = [a for a in AUG_ORIGINS if a in set(df["aug"])]
    for (lang, split), g in df.groupby(["lang", "split"], sort=False):
        for aug in order:
            here = g[g["aug"] == aug]
            cells = [_ap_cell(here[here["size"] == s]) if (here["size"] == s).any() else "" for s in sizes]
            lines.append(f"| `{lang}` | {split} | {aug} | " + " | ".join(cells) + " |")
    lines += ["", "Student AP, mean ± sd over replicate seeds (n). " + source(path), ""]
    return "\n".join(lines) + "\n" + tests_table(paths.REPORTS_DIR / "dose_response_tests.csv", ["split", "size"])


def optical() -> str:
    """Student AP by distillation loss, OT marginals and scoring (``reports/optical.csv``), then its contrasts."""
    path = paths.REPORTS_DIR / "optical.csv"
    df = pd.read_csv(path)
    scorings = sorted(df["scoring"].unique())
    lines = ["| lang | split | loss | marginals | " + " | ".join(scorings) + " |", "|---" * (len(scorings) + 4) + "|"]
    for (lang, split), g in df.groupby(["lang", "split"], sort=False):
        for (loss, marginals), h in g.groupby(["loss", "marginals"], sort=True):
            cells = [_ap_cell(h[h["scoring"] == s]) if (h["scoring"] == s).any() else "" for s in scorings]
            lines.append(f"| `{lang}` | {split} | {loss} | {marginals} | " + " | ".join(cells) + " |")
    lines += ["", "Student AP, mean ± sd over replicate seeds (n); `aug: none`. " + source(path), ""]
    tests = paths.REPORTS_DIR / "optical_tests.csv"
    return "\n".join(lines) + "\n" + tests_table(tests, ["lang", "split", "loss", "marginals", "scoring"])


def design_answer() -> str:
    """The declared design's outcome in docs/results.md: its answer rows (``reports/decisive_answer.csv``), the
    forest plot, and student AP per language, split and ``aug`` (``reports/decisive.csv``)."""
    from pipeline.experiments import designs

    report = designs.declared()["decisive"].report
    path = paths.REPORTS_DIR / f"{report}_answer.csv"
    lines = [
        "| family (m) | split | languages | seeds × queries | Δ AP [95 % CI] | p (Holm) | TOST p (Holm) | MDE "
        "| outcome |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in pd.read_csv(path).itertuples():
        size = "" if r.pooled else f"{int(r.seeds)} × {int(r.queries)}"
        lines.append(
            f"| {r.family} ({int(r.family_size)}) | {r.split} | `{r.languages}` | {size} | {r.delta:+.4f} "
            f"[{r.ci_low:+.4f}, {r.ci_high:+.4f}] | {r.p_holm:.3g} | {r.p_equivalence_holm:.3g} | {r.mde:.4f} "
            f"| {r.outcome} |"
        )
    return "\n".join(
        [
            *lines,
            "",
            source(path),
            "",
            f"![backtranslation − synthetic per language and pooled, with the equivalence margin]"
            f"(../reports/{report}_forest.png)",
            "",
            aug_table(paths.REPORTS_DIR / f"{report}.csv"),
        ]
    )


def answer_status() -> str:
    """The README's answer: where the declared design (``designs: decisive``) stands. Its cells in ``results/``
    against the grid's; with ``reports/decisive_answer.csv``, each shifted split's pooled outcome with its effect,
    CI and MDE; and the earlier grids' per-language MDE (``reports/power.json``) that made "no difference detected"
    uninformative."""
    from pipeline.experiments import designs

    design = designs.declared()["decisive"]
    cells = designs.declared_cells(design)
    ran = [name for name in cells if (Path(results.RESULTS_DIR) / f"{name}.json").exists()]
    answer_csv = paths.REPORTS_DIR / f"{design.report}_answer.csv"
    tests_csv = paths.REPORTS_DIR / f"{design.report}_tests.csv"
    complete = answer_csv.exists() and len(ran) == len(cells)  # an outcome only from the whole declared design
    if complete:
        answer = pd.read_csv(answer_csv)
        lines = [
            f"- **Test:** student AP on {tests.test_sentence(answer['collection'].iloc[0], answer['form'].iloc[0])}; "
            "[docs/data.md](docs/data.md#the-tests).",
            _answer_outcomes(answer, design.margin),
            _answer_scope(answer),
            _against_none(pd.read_csv(tests_csv), design.splits),
            f"- **Tables and forest plot:** `reports/{design.report}.md`, `reports/{design.report}_forest.png`.",
            "",
        ]
    else:
        lines = ["**Not settled yet**: no outcome is stated before the declared cells have run.", ""]
    power_json = read_json(paths.REPORTS_DIR / "power.json")
    power_rows = pd.DataFrame(power_json["designs"])
    earlier = power_rows[(power_rows["seeds"] == 3) & ~power_rows["lang"].str.startswith("pooled")]
    earlier = earlier[(earlier["split"] != "shifted_genre") | (earlier["queries"] == 200)]
    spans = {split: (g["mde"].min(), g["mde"].max()) for split, g in earlier.groupby("split")}
    measured = pd.DataFrame(power_json["measured"])
    observed = float(measured[measured["report"] == "comparison"]["delta"].abs().median())
    lines += [
        f"- **Progress:** {len(ran)} of the {len(cells)} declared cells (report `{design.report}`) are in `results/`"
        + ("." if len(ran) == len(cells) else ". " + _time_left(cells, ran)),
        "- **Why the earlier grids could not settle it:** with 3 seeds and 200 (genre) or 50–60 (register) queries "
        "per language, the smallest difference a per-language test detects with 80 % power is "
        + " and ".join(f"{lo:.3f}–{hi:.3f} AP on {split}" for split, (lo, hi) in spans.items())
        + f' (Holm over {design.family}), while the median |Δ| seen there is {observed:.3f}: their "no '
        'difference detected" is not evidence of no difference.',
        "",
        source(
            paths.REPORTS_DIR / "power.json",
            *([answer_csv, tests_csv] if complete else []),
            results.RESULTS_DIR,
            BENCHMARK_RESULTS / "grid_times.json",
        ),
    ]
    return "\n".join(lines)


def _answer_outcomes(answer: pd.DataFrame, margin: float) -> str:
    """Each shifted split's declared outcome (the pooled row of ``reports/<design>_answer.csv``), with the
    heterogeneity across the pooled languages and the per-language outcomes of the secondary family beside it."""
    lines = []
    for r in answer[answer["pooled"]].itertuples():
        per_lang = answer[(answer["split"] == r.split) & (answer["family"] == "by language")]
        lo, hi = int(per_lang["queries"].min()), int(per_lang["queries"].max())
        queries = f"{lo}" if lo == hi else f"{lo}–{hi}"
        langs = "; ".join(
            f"`{p.languages}` {p.delta:+.4f} [{p.ci_low:+.4f}, {p.ci_high:+.4f}] {p.outcome} (Holm p {p.p_holm:.2g}"
            + (f", MDE {p.mde:.4f})" if p.outcome == "inconclusive" else ")")
            for p in per_lang.itertuples()
        )
        lines.append(
            f"- **{r.split}: {r.outcome}** — pooled over `{r.languages}` (language a fixed effect, the declared "
            f"test): Δ AP {r.delta:+.4f} [{r.ci_low:+.4f}, {r.ci_high:+.4f}], Holm p {r.p_holm:.3g}, TOST p "
            f"{r.p_equivalence_holm:.3g} (±{margin} AP), MDE {r.mde:.4f}, "
            f"{int(per_lang['seeds'].min())} seeds × {queries} queries per language. Across the languages "
            f"Q = {r.Q:.1f} on {int(r.Q_df)} df (p {r.Q_p:.2g}), tau {r.tau:.4f}; with languages random (a "
            f"sensitivity analysis, not the declared test) {r.re_delta:+.4f} [{r.re_ci_low:+.4f}, "
            f"{r.re_ci_high:+.4f}]. Per language (secondary family, Holm over "
            f"{int(per_lang['family_size'].max())}; the 95 % CIs unadjusted): {langs}."
        )
    return "\n".join(lines)


def _answer_scope(answer: pd.DataFrame) -> str:
    """How far the pooled outcomes carry: the declared test is about the pooled languages; say where the languages
    differ beyond chance, which languages point against the pooled direction, and where the random-effects
    interval (the sensitivity analysis) includes 0."""
    pooled = answer[answer["pooled"]]
    per_lang = answer[answer["family"] == "by language"]
    languages = pooled["languages"].iloc[0]
    parts, carries = [], True
    for r in pooled.itertuples():
        rows = per_lang[per_lang["split"] == r.split]
        against = rows[rows["delta"] * r.delta < 0]["languages"].tolist()
        includes_zero = r.re_ci_low <= 0 <= r.re_ci_high
        carries = carries and not includes_zero
        differ = "differ" if r.Q_p < 0.05 else "do not differ"
        parts.append(
            f"on {r.split} the languages {differ} beyond chance (Q p {r.Q_p:.2g})"
            + (f", `{' '.join(against)}` {'points' if len(against) == 1 else 'point'} the other way" if against else "")
            + f", and with languages random the interval {'includes' if includes_zero else 'excludes'} 0"
        )
    return (
        f"- **How far it carries:** the declared test is about `{languages}`: "
        + "; ".join(parts)
        + (
            ". The outcome is about these languages; the data do not show it for low-resource languages at large."
            if not carries
            else ". With languages random the intervals exclude 0 on every split as well."
        )
    )


def _against_none(tests: pd.DataFrame, splits: list[str]) -> str:
    """Each augmentation against none (the secondary family of ``reports/<design>_tests.csv``, Holm within it) on the
    shifted splits: the languages where it raises or lowers AP after adjustment."""
    rows = tests[(tests["family"] == "secondary") & tests["contrast"].str.endswith(" − none")]
    if rows.empty:
        return "- **Against no augmentation:** the design has no aug − none contrast."
    parts = []
    for split in splits:
        at = rows[(rows["split"] == split) & (rows["p_holm"] < 0.05)]
        found = []
        for contrast in sorted(set(at["contrast"]), key=lambda c: (c.startswith("parallel"), c)):  # the control last
            g = at[at["contrast"] == contrast]
            aug = contrast.split(" − ")[0]
            for verb, sign in (("lowers", -1), ("raises", 1)):
                langs = sorted(g[g["delta"] * sign > 0]["lang"])
                if langs:
                    found.append(f"{aug} {verb} AP in `{' '.join(langs)}`")
        parts.append(f"On {split}, " + ("; ".join(found) if found else "no aug − none contrast survives Holm") + ".")
    family_size = int(rows["family_size"].max())
    sizes = " or ".join(f"{int(n):,}" for n in sorted(rows["size"].dropna().unique()))
    return (
        f"- **Against no augmentation** ({sizes} rows; secondary family, Holm over {family_size}; `parallel`: the "
        "back-translated verses with their real English): " + " ".join(parts)
    )


def _time_left(cells: dict[str, dict], ran: list[str]) -> str:
    """What the declared cells not yet run cost on one machine, at the cell times ``grid run`` recorded for the
    cells that ran (``grid_times.json``): the median cell, and a language's first cell beyond it (its upstream)."""
    rows = pd.DataFrame(read_json(BENCHMARK_RESULTS / "grid_times.json")["tasks"])
    if rows.empty:
        return ""
    times = rows[rows["name"].isin(ran)].drop_duplicates("name", keep="last")
    if times.empty:
        return ""
    times["lang"] = times["name"].map(lambda n: cells[n]["lang"])
    median = times["seconds"].median()
    upstream = times.groupby("lang")["seconds"].max() - median
    # Stages run ahead of their cells (``grid ahead``): part of their language's upstream, in no cell's time.
    ahead = rows[(rows["status"] == "ahead") & rows["name"].str.split("@").str[0].isin(cells)]
    ahead = ahead.drop_duplicates("name", keep="last")
    ahead_by_lang = ahead.groupby(ahead["name"].map(lambda n: cells[n.split("@")[0]]["lang"]))["seconds"].sum()
    upstream = upstream.add(ahead_by_lang[ahead_by_lang.index.isin(upstream.index)], fill_value=0)
    todo = [n for n in cells if n not in ran]
    new_langs = sorted({cells[n]["lang"] for n in todo} - set(times["lang"]))
    done_ahead = "".join(
        f" ({lang}'s stages run ahead of its cells took {minutes(ahead_by_lang[lang])})"
        for lang in new_langs
        if lang in ahead_by_lang
    )
    left = (
        f"At the median cell time so far ({median:.0f} s over {len(times)} cells) the {len(todo)} cells left take "
        f"about {len(todo) * median / 3600:.1f} h on one machine like the one they ran on (docs/performance.md, grid "
        f"times)"
    )
    if not new_langs:
        return left + "; every language's upstream stages have run."
    return (
        left
        + ", plus the upstream stages of "
        + (
            f"the language not started ({new_langs[0]})"
            if len(new_langs) == 1
            else f"each of the {len(new_langs)} languages not started ({' '.join(new_langs)})"
        )
        + done_ahead
        + "; "
        + ", ".join(f"{lang}'s took {minutes(t)}" for lang, t in upstream.items())
        + " beyond a cell."
    )
