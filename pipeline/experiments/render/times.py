"""What the pipeline costs: stage times and memory, budgets, grid cell times, CPU precision, profiles."""

from __future__ import annotations

import pandas as pd

from pipeline.errors import PipelineError
from pipeline.experiments.render import BENCHMARK_RESULTS, engines, minutes, source, tests
from pipeline.io import read_json


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


def grid_times() -> str:
    """Wall time of the grids' cells (``benchmarks/results/grid_times.json``: ``pipeline.experiments.grid run`` and
    ``benchmarks/grid_times.py``), per grid and the precision its cells trained in (each row's ``precision``: what
    ran, as the cell's ``metrics/distill.json`` said), over every commit they ran on: cells, total, the spread."""
    path = BENCHMARK_RESULTS / "grid_times.json"
    rows = pd.DataFrame(read_json(path)["tasks"])
    rows["grid"] = rows["name"].str.split("-").str[0]
    rows["precision"] = rows["precision"].fillna("–") if "precision" in rows else "–"  # none: a stage run ahead
    header = "| grid | precision | how | cells | commits | total | per cell: median | min | max |"
    lines = [header, "|---" * 9 + "|"]
    for (grid, precision, how), g in rows.groupby(["grid", "precision", "status"], sort=False):
        s = g["seconds"]
        lines.append(
            f"| `{grid}` | {precision} | {HOW.get(how, 'queue')} | {len(g)} | {g['baseline'].nunique()} "
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
            "| grid | precision | cells | " + " | ".join(CELL_PARTS) + " |",
            "|---" * (3 + len(CELL_PARTS)) + "|",
        ]
        for (grid, precision), g in staged.groupby(["grid", "precision"], sort=False):
            parts = pd.DataFrame([_cell_parts(r.stages, r.seconds) for r in g.itertuples()]).median()
            lines.append(
                f"| `{grid}` | {precision} | {len(g)} | " + " | ".join(f"{parts[k]:.0f}" for k in CELL_PARTS) + " |"
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
    stages = [{s["stage"] for s in run["stages"]} for run in (default, quick)]
    if stages[0] != stages[1]:  # a run of older code: its rows are not the default's stages
        rows += [
            "",
            "**Not comparable row by row**: the two runs had different stages (default only: "
            + ", ".join(sorted(stages[0] - stages[1]))
            + "; quick only: "
            + ", ".join(sorted(stages[1] - stages[0]))
            + "), so the quick column is older code (and may be another test); "
            "`python -m benchmarks.pipeline_times --profile quick --isa avx2` measures it again.",
        ]
    return "\n".join([*lines, *rows, "", source(default_path, quick_path)])
