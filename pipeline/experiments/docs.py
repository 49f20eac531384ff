"""Tables in the docs, generated from the files the pipeline and the benchmarks write: never typed by hand.

A Markdown file marks a generated block with a pair of comments::

    <!-- generated: mt -->
    ...whatever render("mt") returns...
    <!-- end generated -->

``python -m pipeline.experiments.docs`` rewrites every block of ``README.md`` and ``docs/*.md`` from the current
files; ``python -m pipeline.experiments.docs --check`` (run by the test suite) fails, naming the file and block, when
a block differs from what the files hold. Each block says which file it comes from.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from pipeline import paths
from pipeline.errors import PipelineError
from pipeline.experiments import results
from pipeline.experiments.render import engines, source, tests
from pipeline.experiments.render.synthesis import synth_waste
from pipeline.io import read_json, read_metrics, write_text
from pipeline.params import load_params

DOC_FILES = (Path("README.md"), *sorted(Path("docs").glob("*.md")))
BENCHMARK_RESULTS = Path("benchmarks/results")
BLOCK = re.compile(r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.S)


def _metrics(name: str) -> dict:
    """A stage's metrics as it wrote them (the numbers and the info file beside them)."""
    return read_metrics(paths.metrics_file(name))


def minutes(seconds: float) -> str:
    """``3299.6`` -> ``"55 min 00 s"`` (rounded to the second first, so never ``"54 min 60 s"``)."""
    whole = round(seconds)
    return f"{whole // 60} min {whole % 60:02d} s"


def mt() -> str:
    """The default run's MT model: dev BLEU/chrF and what its back-translations look like."""
    m, bt = _metrics("mt"), _metrics("backtranslate")
    src, genre = m["dev_source"], m["dev_target_genre"]
    rows = [
        ("training pairs / epochs", f"{m.get('train_pairs', '–'):,} / {m.get('epochs', '–')}"),
        ("BLEU / chrF, source-domain dev", f"{src['bleu']:.2f} / {src['chrf']:.2f} ({src['sentences']} sentences)"),
        (
            "BLEU / chrF, target-genre dev",
            f"{genre['bleu']:.2f} / {genre['chrf']:.2f} ({genre['sentences']} sentences)",
        ),
        ("sacreBLEU signature", "`" + src["bleu_signature"].replace("|", "\\|") + "`"),
        (
            f"back-translations ({bt['sentences']} pool verses, {bt['method']} {bt['beam']})",
            f"{bt['degenerate_rate']:.0%} degenerate (n-gram loop), {bt['empty_outputs']} empty, "
            f"length ratio en/xx p50 {bt['length_ratio_quantiles'].get('p50', '–')}",
        ),
    ]
    lines = ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]
    return "\n".join([*lines, "", source("metrics/mt.json", "metrics/backtranslate.json")])


def mt_decoding() -> str:
    """``benchmarks/mt_decoding.py``: the loop rate and BLEU/chrF of the MT model per ``no_repeat_ngram_size``."""
    path = BENCHMARK_RESULTS / "mt_decoding.json"
    d = read_json(path)
    lines = [
        "| no_repeat_ngram_size | BLEU / chrF source dev | BLEU / chrF genre dev "
        "| loops: source dev / genre dev / pool |",
        "|---|---|---|---|",
    ]
    for r in d["rows"]:
        loops = " / ".join(
            f"{r[k]:.0%}" for k in ("source_dev_degenerate_rate", "genre_dev_degenerate_rate", "pool_degenerate_rate")
        )
        lines.append(
            f"| {r['no_repeat_ngram_size'] or 'off'} | {r['source_dev_bleu']:.2f} / {r['source_dev_chrf']:.2f} "
            f"| {r['genre_dev_bleu']:.2f} / {r['genre_dev_chrf']:.2f} | {loops} |"
        )
    note = f"`lang: {d['lang']}`, beam {d['rows'][0]['beam']}; a decoding setting only (training is the same)."
    return "\n".join([*lines, "", note + " " + source(path)])


def mt_tradeoff() -> str:
    """``benchmarks/mt_tradeoff.py``: training time and quality of MT training settings; marks params.yaml's."""
    path = BENCHMARK_RESULTS / "mt_tradeoff.json"
    d = read_json(path)
    mt = load_params().mt
    lines = [
        "| setting | max_tokens / warmup | dropout | epochs | train s | BLEU / chrF source dev "
        "| BLEU / chrF genre dev | loops source / genre |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in d["rows"]:
        default = (r["max_tokens"], r["warmup_updates"], r["dropout"], r["epochs"]) == (
            mt.max_tokens,
            mt.warmup_updates,
            mt.dropout,
            mt.epochs,
        ) and (r["layers"], r["dim"], r["vocab"]) == (mt.layers, mt.embed_dim, mt.vocab_size)
        name = f"**{r['setting']}** (params.yaml)" if default else r["setting"]
        lines.append(
            f"| {name} | {r['max_tokens']} / {r['warmup_updates']} | {r['dropout']} | {r['epochs']} "
            f"| {r['train_s']:.0f} | {r['bleu_source']:.2f} / {r['chrf_source']:.2f} "
            f"| {r['bleu_genre']:.2f} / {r['chrf_genre']:.2f} "
            f"| {r['degenerate_source']:.1%} / {r['degenerate_genre']:.1%} |"
        )
    note = (
        f"`lang: {d['lang']}`, {d['train_pairs']:,} training pairs, {d['dev_sentences']} dev sentences each, "
        f"beam {d['beam']}, no_repeat_ngram_size {d['no_repeat_ngram_size']}; {d['machine']}, nothing else running."
    )
    return "\n".join([*lines, "", note + " " + source(path)])


def ot_plan() -> str:
    """The default run's Sinkhorn plan over all distill steps (``metrics/distill.json``)."""
    d = _metrics("distill")
    plan = d.get("plan")
    if not plan:
        return f"`distill.loss: {d.get('loss')}` has no OT plan. " + source("metrics/distill.json")
    params = load_params().distill
    rows = [
        ("ε / tolerance / cap", f"{params.epsilon} / {params.sinkhorn_tol:g} / {params.sinkhorn_iters}"),
        ("Sinkhorn iterations per step, mean / max", f"{plan['iterations_mean']} / {plan['iterations_max']}"),
        ("largest marginal violation over all steps (L1 per pair)", f"{plan['marginal_violation_max']:.2g}"),
        ("plan entropy, mean (independent plan)", f"{plan['entropy_mean']} ({plan['entropy_uniform_mean']}) nats"),
    ]
    lines = ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]
    return "\n".join([*lines, "", f"{d['steps']} steps. " + source("metrics/distill.json", "params.yaml")])


def ot_convergence() -> str:
    """``benchmarks/ot_plan.py``: convergence and cost of the plan per Sinkhorn setting, on real states."""
    path = BENCHMARK_RESULTS / "ot_plan.json"
    d = read_json(path)
    lines = [
        "| setting | iterations (mean) | max marginal violation | loss gap to converged | min gradient cosine "
        "| plan entropy (independent) | ms per batch |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in d["rows"]:
        lines.append(
            f"| {r['setting']} | {r['iterations_mean']} | {r['marginal_violation_max']:.2g} | {r['loss_gap_max']:.2g} "
            f"| {min(r['grad_cosine_min'], 1.0):.5f} | {r['entropy_mean']} ({r['entropy_uniform_mean']}) "
            f"| {r['ms_per_batch']} |"
        )
    note = (
        f"`lang: {d['lang']}`, ε {d['epsilon']}, {d['batches']} batches of {d['batch_size']} bitext rows, the "
        f"default run's teacher and student; loss forward + backward; {d['machine']}."
    )
    return "\n".join([*lines, "", note + " " + source(path)])


def cpu_precision() -> str:
    """``benchmarks/cpu_precision.py``: float32 against bfloat16 per CPU kind (matmul throughput, a training step)."""
    path = BENCHMARK_RESULTS / "cpu_precision.json"
    lines = [
        "| CPU (PyTorch capability) | bf16 kernels | shape | fp32 | bf16 | bf16 time ÷ fp32 time |",
        "|---|---|---|---|---|---|",
    ]
    for r in read_json(path):
        cpu = f"{r['cpu']} ({r['capability']}, {r['threads']} threads)"
        kernels = "yes" if r["bf16_kernels"] else "**no**"
        for m in r["matmul_gflops"]:
            cells = f"{m['fp32']:g} GFLOP/s | {m['bf16']:g} GFLOP/s | {m['fp32'] / m['bf16']:.3g}x"
            lines.append(f"| {cpu} | {kernels} | matmul: {m['shape']} | {cells} |")
        step = r["encoder_train_step_s"]
        lines.append(
            f"| {cpu} | {kernels} | encoder training step ({step['shape']}) | {step['fp32']:g} s "
            f"| {step['bf16']:g} s (autocast) | {step['bf16'] / step['fp32']:.3g}x |"
        )
    note = "Medians of the timed repeats (above 1x: bf16 slower than float32)."
    return "\n".join([*lines, "", note + " " + source(path)])


def synthesis() -> str:
    """The default run's LLM synthesis: lines generated and kept, what each filter removed, quality."""
    s = _metrics("synthesize")
    removed = ", ".join(f"`{k}` {v}" for k, v in sorted(s["removed"].items(), key=lambda kv: -kv[1]) if v)
    gen, kept = s["quality_generated"], s["quality_kept"]
    rows = [
        ("model / backend", f"`{s['model']}` / {s['backend']}"),
        (
            "prompts / lines generated / kept",
            f"{s['prompts']} / {s['generated']:,} / {s['kept']} (pass rate {s['pass_rate']:.2f})",
        ),
        ("removed, by first failing filter", removed or "none"),
    ]
    for key, label in (
        ("word_validity", "word validity"),
        ("lid_pass_rate", "LID pass rate"),
        ("novelty_4gram", "4-gram novelty"),
    ):
        if key in gen:
            rows.append((f"{label}: generated → kept", f"{gen[key]:.2f} → {kept[key]:.2f}"))
    bt = s["translation"]
    rows.append(("back-translations of the kept lines", f"{bt['degenerate_rate']:.0%} degenerate (n-gram loop)"))
    lines = ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]
    return "\n".join([*lines, "", source("metrics/synthesize.json")])


def _pipeline_times(name: str = "pipeline_times") -> dict:
    path = BENCHMARK_RESULTS / f"{name}.json"
    if not path.exists():
        raise PipelineError(f"{path} not found: run `python -m benchmarks.pipeline_times` first")
    return read_json(path)


def pipeline_times(name: str = "pipeline_times") -> str:
    """Wall time and peak memory of every stage, the whole DAG, a no-op ``dvc repro`` and an ``aug`` switch
    (``benchmarks/results/<name>.json``), under the machine they were measured on: its ``machine`` string as
    recorded (CPU model, cores, memory, what precision ``auto`` picked there)."""
    t = _pipeline_times(name)
    lines = [f"Measured on: {t['machine']} (profile `{t['profile']}`).", ""]
    lines += ["| stage | wall s | peak RSS GB |", "|---|---|---|"]
    lines += [f"| {s['stage']} | {s['seconds']:.1f} | {s['peak_rss_gb']:.2f} |" for s in t["stages"]]
    lines.append(
        f"| **whole DAG (sum of stages)**, {_verdict(t['total_seconds'], STAGES_BUDGET_SECONDS)} "
        f"| **{t['total_seconds']:.0f} ({minutes(t['total_seconds'])})** "
        f"| {max(s['peak_rss_gb'] for s in t['stages']):.2f} |"
    )
    if t.get("repro_seconds"):
        lines.append(
            "| **end to end from scratch** (the README run command when measured with `--readme-seconds`, else "
            "`dvc repro`; DVC's and each stage's Python start-up included) "
            f"| **{t['repro_seconds']:.0f} ({minutes(t['repro_seconds'])})** | |"
        )
    if t.get("noop_seconds") is not None:
        lines.append(f"| no-op `dvc repro` (nothing to run) | {t['noop_seconds']:.1f} | |")
    sw = t["switch"]
    lines.append(
        f"| `dvc exp run -S aug={sw['aug']}` ({', '.join(sw['stages'])}) "
        f"| {sw['seconds']:.1f} ({minutes(sw['seconds'])}) | {sw['peak_rss_gb']:.2f} |"
    )
    lines += [
        "",
        f"The switch costs {sw['seconds'] / t['total_seconds']:.2f} of the whole DAG. {_budget_gap(t)}"
        + source(BENCHMARK_RESULTS / f"{name}.json"),
    ]
    return "\n".join(lines)


def _budget_gap(t: dict) -> str:
    """Where a run over the stages' budget is over: by how much, and its largest stages (empty within budget)."""
    over = t["total_seconds"] - STAGES_BUDGET_SECONDS
    if over <= 0:
        return ""
    largest = sorted(t["stages"], key=lambda s: -s["seconds"])[:5]
    named = ", ".join(f"`{s['stage']}` {s['seconds']:.0f} s" for s in largest)
    return (
        f"The stages are {over:.0f} s ({over / STAGES_BUDGET_SECONDS:.0%}) over {STAGES_BUDGET_SECONDS // 60} "
        f"minutes; the five largest: {named}. "
    )


#: The default's time budgets on a 2-core machine: the DAG's stages on the measuring machine (so that a newcomer's
#: machine 1.35x slower stays within the end-to-end budget), and an `aug` switch.
STAGES_BUDGET_SECONDS = 15 * 60
SWITCH_BUDGET_SECONDS = 4 * 60


def _verdict(seconds: float, budget: int) -> str:
    return f"{'within' if seconds <= budget else '**over**'} the {budget // 60}-minute budget"


def front_door_times() -> str:
    """One line for the README: how long the two commands' pipeline part takes, on the machine measured last."""
    t = _pipeline_times()
    whole = ""
    if t.get("repro_seconds"):
        whole = f"a run from scratch took {minutes(t['repro_seconds'])} end to end, "
    return (
        f"Measured on {t['machine']} (`benchmarks/results/pipeline_times.json`): {whole}the stages of the whole DAG "
        f"take {minutes(t['total_seconds'])} together ({_verdict(t['total_seconds'], STAGES_BUDGET_SECONDS)}), "
        f"an `aug` switch (`dvc exp run -S aug={t['switch']['aug']}`) {minutes(t['switch']['seconds'])} "
        f"({_verdict(t['switch']['seconds'], SWITCH_BUDGET_SECONDS)}). "
        + " ".join(filter(None, (tests.cost_since(t), engines.front_door())))
    )


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
    order = [a for a in paths.AUG_ORIGINS if a in set(df["aug"])]
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
    order = [a for a in paths.AUG_ORIGINS if a in set(df["aug"])]
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


def grid_times() -> str:
    """Wall time of the grids' cells (``benchmarks/results/grid_times.json``: ``pipeline.experiments.grid run`` and
    ``benchmarks/grid_times.py``), per grid and baseline commit (in the order run): cells, total, the spread."""
    path = BENCHMARK_RESULTS / "grid_times.json"
    rows = pd.DataFrame(read_json(path)["tasks"])
    rows["grid"] = rows["name"].str.split("-").str[0]
    rows["commit"] = rows["baseline"].str[:7]
    lines = ["| grid | commit | how | cells | total | per cell: median | min | max |", "|---" * 8 + "|"]
    for (grid, commit, how), g in rows.groupby(["grid", "commit", "status"], sort=False):
        s = g["seconds"]
        lines.append(
            f"| `{grid}` | {commit} | {HOW.get(how, 'queue')} | {len(g)} "
            f"| {minutes(s.sum())} | {s.median():.0f} s | {s.min():.0f} s | {s.max():.0f} s |"
        )
    ahead = rows[rows["status"] == "ahead"]
    if len(ahead):
        lines += [
            "",
            "Stages run ahead of their cells (`pipeline.experiments.grid ahead`; each cell then restored them): "
            + ", ".join(f"`{r.name}` {minutes(r.seconds)}" for r in ahead.itertuples())
            + ", counted in no cell's time above.",
        ]
    rows = rows[rows["status"] != "ahead"]
    staged = rows[rows["stages"].map(lambda x: isinstance(x, dict) and bool(x))] if "stages" in rows else rows[:0]
    if len(staged):
        lines += [
            "",
            "Where a cell's time went, for the cells that recorded it (`pipeline.experiments.grid run` reads the "
            "records of the stages that finished during the cell): median seconds; `evaluate` is the student's "
            "evaluations of every split, `upstream` any other stage that ran (a language's first cell), `DVC` the "
            "rest of the cell's wall time (DVC's status checks, caching and the experiment's commit).",
            "",
            "| grid | commit | cells | " + " | ".join(CELL_PARTS) + " |",
            "|---" * (3 + len(CELL_PARTS)) + "|",
        ]
        for (grid, commit), g in staged.groupby(["grid", "commit"], sort=False):
            parts = pd.DataFrame([_cell_parts(r.stages, r.seconds) for r in g.itertuples()]).median()
            lines.append(
                f"| `{grid}` | {commit} | {len(g)} | " + " | ".join(f"{parts[k]:.0f}" for k in CELL_PARTS) + " |"
            )
    return "\n".join([*lines, "", source(path)])


#: How a row of ``grid_times.json`` ran, by its ``status`` (any other: a queued cell).
HOW = {"run": "`pipeline.experiments.grid run`", "ahead": "`pipeline.experiments.grid ahead` (one stage)"}

#: The parts of a grid cell's wall time in the docs' table (:func:`_cell_parts`).
CELL_PARTS = ("bitext", "distill", "evaluate", "report", "upstream", "DVC")


def _cell_parts(stages: dict[str, float], seconds: float) -> dict[str, float]:
    """A cell's stage seconds (``grid_times.json``'s ``stages``) in :data:`CELL_PARTS`."""
    out = dict.fromkeys(CELL_PARTS, 0.0)
    for stage, t in stages.items():
        part = stage.split("@")[0]
        out[part if part in CELL_PARTS else "upstream"] += t
    out["DVC"] = seconds - sum(stages.values())
    return out


def power() -> str:
    """The declared design's power (``reports/power.json``, ``python -m pipeline.experiments.power``): per shifted
    split, the pooled primary contrast's MDE and equivalence reach at each measured size and proposed design, and
    the measured type-I error of the tests."""
    path = paths.REPORTS_DIR / "power.json"
    data = read_json(path)
    cfg = data["settings"]
    rows = pd.DataFrame(data["designs"])
    pooled = rows[rows["lang"].str.startswith("pooled")]
    lines = [
        f"Pooled over `{cfg['pooled']}` (m = {cfg['family']}, alpha = {cfg['alpha']} two-sided at alpha / m, "
        f"power {cfg['power']}); components measured at each augmentation size (languages not measured at a size "
        "take the mean of those measured):",
        "",
        "| split | size | measured | seeds | queries | SE | MDE | equivalence reach |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in pooled.itertuples():
        measured = r.lang.removeprefix("pooled (").removesuffix(" measured)")
        lines.append(
            f"| {r.split} | {r.size} | {measured} | {r.seeds} | {r.queries} | {r.se:.4f} | {r.mde:.4f} "
            f"| {r.equivalence_reach:.4f} |"
        )
    calib = pd.DataFrame(data["calibration"])
    lines += [
        "",
        f"Type-I error at nominal {cfg['alpha']}, measured on simulated null data (normal effects with the measured "
        "components and design):",
        "",
        "| split | test | seeds | queries | simulations | type-I error |",
        "|---|---|---|---|---|---|",
    ]
    for r in calib.itertuples():
        lines.append(f"| {r.split} | {r.test} | {r.seeds} | {r.queries} | {r.sims} | {r.type_one_error:.3f} |")
    return "\n".join([*lines, "", source(path)])


def power_decisive() -> str:
    """The design's power re-measured on its own cells (``reports/power_decisive.json``: ``python -m
    pipeline.experiments.power --report decisive --seeds 5 --queries 1000 --out reports/power_decisive.md``): the
    components each language's cells give, and the MDE they imply for the declared seeds and queries."""
    path = paths.REPORTS_DIR / "power_decisive.json"
    data = read_json(path)
    measured = pd.DataFrame(data["measured"])
    rows = pd.DataFrame(data["designs"])
    lines = [
        "| split | language | seeds run | queries | Δ | SD seed | SD query | SD residual |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in measured.itertuples():
        lines.append(
            f"| {r.split} | {r.lang} | {r.seeds} | {r.queries} | {r.delta:+.4f} | {r.var_seed**0.5:.4f} "
            f"| {r.var_query**0.5:.4f} | {r.var_residual**0.5:.4f} |"
        )
    lines += [
        "",
        f"What those components imply for the declared design (m = {data['settings']['family']}, power "
        f"{data['settings']['power']}; a pooled row gives any pooled language not yet run the mean of those "
        "measured):",
        "",
        "| split | language | seeds | queries | SE | MDE | equivalence reach |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows.itertuples():
        lines.append(
            f"| {r.split} | {r.lang} | {r.seeds} | {r.queries} | {r.se:.4f} | {r.mde:.4f} | {r.equivalence_reach:.4f} |"
        )
    from pipeline.experiments import grid

    margin = grid.designs()["decisive"].margin
    pooled = rows[rows["lang"].str.startswith("pooled")]
    lines += ["", f"Against the declared margin of ±{margin} AP, the pooled contrast's:"]
    for r in pooled.itertuples():
        lines.append(
            f"- {r.split}: MDE {r.mde:.4f} ({'within' if r.mde <= margin else 'above'} {margin}), equivalence "
            f"reach {r.equivalence_reach:.4f}: "
            + (
                f"a true Δ of 0 is declared equivalent within ±{margin} with power {data['settings']['power']}."
                if r.equivalence_reach <= margin
                else f"even a true Δ of 0 is declared equivalent within ±{margin} with less than power "
                f"{data['settings']['power']}, so this split ends as a difference or inconclusive unless its Δ is "
                "close to 0."
            )
        )
    return "\n".join([*lines, "", source(path)])


def design_answer() -> str:
    """The declared design's outcome in docs/results.md: its answer rows (``reports/decisive_answer.csv``), the
    forest plot, and student AP per language, split and ``aug`` (``reports/decisive.csv``)."""
    from pipeline.experiments import grid

    report = grid.designs()["decisive"].report
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
    from pipeline.experiments import grid

    design = grid.designs()["decisive"]
    cells = grid.declared_cells(design)
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
        + f' (Holm over {len(design.splits)}), while the median |Δ| seen there is {observed:.3f}: their "no '
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


def _runs_side_by_side(left: dict, right: dict, totals: tuple[tuple[str, str], ...]) -> list[str]:
    """Table rows comparing two pipeline runs: seconds per stage (the right run's stages), the ``totals`` rows
    (key, label) and the quality numbers. Each run: ``stages`` (stage → seconds), the totals' keys, ``quality``."""
    lines = [
        f"| {stage} s | {left['stages'].get(stage, float('nan')):.1f} | {secs:.1f} |"
        for stage, secs in right["stages"].items()
    ]
    lines += [f"| {label} | {left[key]:.1f} | {right[key]:.1f} |" for key, label in totals]
    lines += [f"| {name} | {left['quality'][name]:.4g} | {value:.4g} |" for name, value in right["quality"].items()]
    return lines


def budget_compare() -> str:
    """Two default runs side by side (``benchmarks/results/budget_compare.json``, ``benchmarks/budget_compare.py``):
    stage seconds, the switch, and the quality numbers a saving must not move."""
    path = BENCHMARK_RESULTS / "budget_compare.json"
    data = read_json(path)
    before, after = data["before"], data["after"]
    lines = [
        f"Both on {after['machine'].split(';')[0]}.",
        "",
        f"| | before ({before['rev']}) | after ({after['rev']}) |",
        "|---|---|---|",
    ]
    totals = (
        ("total_seconds", "**stages, sum** s"),
        ("switch_seconds", "`aug` switch s"),
        ("readme_seconds", "README run, end to end s"),
    )
    return "\n".join([*lines, *_runs_side_by_side(before, after, totals), "", source(path)])


def _pipeline_run(times: dict) -> dict:
    """A ``benchmarks/pipeline_times.py`` results file in the shape of :func:`_runs_side_by_side`'s runs."""
    return {
        "stages": {s["stage"]: s["seconds"] for s in times["stages"]},
        "total_seconds": times["total_seconds"],
        "switch_seconds": times["switch"]["seconds"],
        "quality": times["quality"],
    }


def quick_profile() -> str:
    """The ``quick`` profile (``profiles/quick.yaml``) against the default, both measured from scratch by
    ``benchmarks/pipeline_times.py`` (``benchmarks/results/pipeline_times_quick.json``, ``pipeline_times.json``):
    stage seconds, the switch and the quality numbers."""
    default_path = BENCHMARK_RESULTS / "pipeline_times.json"
    quick_path = BENCHMARK_RESULTS / "pipeline_times_quick.json"
    default, quick = read_json(default_path), read_json(quick_path)
    cpus = default["machine"].split(";")[0], quick["machine"].split(";")[0]
    lines = [
        f"Both on {cpus[1]}." if cpus[0] == cpus[1] else f"Default on {cpus[0]}; quick on {cpus[1]}.",
        "",
        "| | default | quick |",
        "|---|---|---|",
    ]
    totals = (
        ("total_seconds", f"**stages, sum** s (the budget: {15 * 60})"),
        ("switch_seconds", "`aug` switch s (the budget: 240)"),
    )
    rows = _runs_side_by_side(_pipeline_run(default), _pipeline_run(quick), totals)
    return "\n".join([*lines, *rows, "", source(default_path, quick_path)])


RENDERERS: dict[str, Callable[[], str]] = {
    "answer-status": answer_status,
    "budget-compare": budget_compare,
    "quick-profile": quick_profile,
    "default-run": tests.default_run,
    "tests-side-by-side": tests.tests_side_by_side,
    "test-collections": tests.test_collections,
    "test-cost": tests.test_cost,
    "power": power,
    "mt": mt,
    "mt-decoding": mt_decoding,
    "mt-engines": engines.mt_engines,
    "encoder-engines": engines.encoder_engines,
    "mt-tradeoff": mt_tradeoff,
    "ot-plan": ot_plan,
    "ot-convergence": ot_convergence,
    "synthesis": synthesis,
    "synth-waste": synth_waste,
    "cpu-precision": cpu_precision,
    "pipeline-times": pipeline_times,
    "pipeline-times-bf16": lambda: pipeline_times("pipeline_times_bf16"),
    "front-door-times": front_door_times,
    "dose-response": dose_response,
    "grid-times": grid_times,
    "power-decisive": power_decisive,
    "design-answer": design_answer,
    "optical": optical,
    "comparison": lambda: aug_report("comparison"),
    "answer-components": answer_components,
    "root-seeds": lambda: aug_report("root_seeds", by=("lang", "root_seed", "split"), tested=("root_seed", "split")),
}


def render_file(text: str, where: str) -> str:
    """``text`` with every generated block re-rendered."""

    def fill(match: re.Match) -> str:
        name = match["name"]
        if name not in RENDERERS:
            raise PipelineError(f"{where}: unknown generated block {name!r}; known: {sorted(RENDERERS)}")
        return match.group(1) + RENDERERS[name]().rstrip("\n") + "\n" + match.group(4)

    return BLOCK.sub(fill, text)


def stale_blocks(files=DOC_FILES) -> list[str]:
    """``file: block`` for every generated block whose text differs from what the files hold now."""
    stale = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        fresh = render_file(text, str(path))
        old = {m["name"]: m["body"] for m in BLOCK.finditer(text)}
        new = {m["name"]: m["body"] for m in BLOCK.finditer(fresh)}
        stale += [f"{path}: {name}" for name in old if old[name] != new[name]]
    return stale


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="fail if a generated block is out of date; write nothing")
    args = ap.parse_args(argv)
    try:
        if args.check:
            stale = stale_blocks()
            if stale:
                sys.exit("out of date (run `python -m pipeline.experiments.docs`): " + "; ".join(stale))
            return
        for path in DOC_FILES:
            text = path.read_text(encoding="utf-8")
            fresh = render_file(text, str(path))
            if fresh != text:
                write_text(path, fresh)
                print(f"updated {path}")
    except PipelineError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
