"""Wall time and peak memory of the pipeline: every stage from scratch, a no-op repro, and an ``aug`` switch.

Copies the project (the files git sees, plus the set-up's UDHR download) into a throw-away git + DVC repo, runs
``dvc repro`` there from scratch, then ``dvc repro`` again (nothing to do) and ``dvc exp run -S aug=<aug>``.
Per-stage numbers are what each stage records itself (``timings/stages/<stage>.json``: wall seconds and the peak
RSS of the stage process and its children, see ``pipeline.stages.run_stage``). Prints a table and writes
``benchmarks/results/pipeline_times.json`` (default profile), from which ``python -m pipeline.experiments.docs``
renders the docs' performance table. The default profile takes about 20 minutes on 2 cores; ``--profile tiny`` a few.

``--project DIR`` measures an existing project instead, in which ``dvc repro`` has just run from scratch (for
example a fresh clone after the README's run command): its stage timings are read, then the switch is run there;
``--switch-only`` re-measures only the switch and keeps the stage rows of the results file. A switch whose stages
DVC's run cache restored (the project made it before) is refused, not reported. ``--profile NAME`` other than
``default`` applies ``profiles/NAME.yaml`` over the copy's params.yaml; a profile other than ``tiny`` writes
``benchmarks/results/pipeline_times_NAME.json``. Every results file also holds the run's quality numbers (those of
``benchmarks/budget_compare.py``: MT BLEU/chrF, the synthetic pass rate, teacher and student AP). ``--isa avx2`` caps
the libraries at AVX2 on a CPU that has more (``benchmarks/isa.py``; the machine line says so).

Usage (from the repository root, venv active)::

    python -m benchmarks.pipeline_times [--profile default|tiny|quick] [--aug backtranslation] [--keep DIR] [--isa avx2]
    python -m benchmarks.pipeline_times --project /tmp/fresh
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.isa import ISA_ENV, describe
from pipeline.config.hardware import auto_summary, cpu_model
from pipeline.experiments.grid import STAGE_TIMINGS, finished_stages
from pipeline.io import copy_working_tree
from pipeline.profile import apply_profile

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results/pipeline_times.json"


def dag_stages() -> list[str]:
    """The stages of ``dvc.yaml`` in its order (a ``matrix`` stage expanded per item, e.g. ``evaluate@in_domain``)."""
    stages = []
    for name, stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items():
        matrix = stage.get("matrix")
        if matrix:
            (values,) = matrix.values()
            stages += [f"{name}@{v}" for v in values]
        else:
            stages.append(name)
    return stages


def copy_project(dest: Path, profile: str) -> None:
    """The files git sees in the working tree and the profile's params (the ``udhr`` stage fetches the UDHR)."""
    copy_working_tree(ROOT, dest)
    if profile != "default":
        apply_profile(dest / "profiles" / f"{profile}.yaml", dest / "params.yaml")


def results_file(profile: str, bf16: bool = False) -> Path | None:
    """Where a profile's measurement goes: none for ``tiny`` (a smoke run); the default profile run in bf16 (``auto``
    on a CPU with bf16 kernels, libraries not capped) has a file of its own, beside the float32 one."""
    if profile == "tiny":
        return None
    if profile == "default":
        return RESULTS.with_name("pipeline_times_bf16.json") if bf16 else RESULTS
    return RESULTS.with_name(f"pipeline_times_{profile}.json")


def ran_bf16(proj: Path) -> bool:
    """Whether the project's student trained in bf16 (``auto`` on a CPU with bf16 kernels): its distill info says."""
    info = proj / "metrics" / "distill.info.json"
    return info.exists() and json.loads(info.read_text()).get("precision") == "bf16"


def quality(proj: Path) -> dict:
    """The run's quality numbers (``benchmarks/budget_compare.py``'s columns), from its metrics files."""
    from benchmarks.budget_compare import QUALITY, dotted

    return {name: dotted(json.loads((proj / path).read_text()), key) for name, (path, key) in QUALITY.items()}


def run(cmd: list[str], cwd: Path, env: dict) -> float:
    started = time.perf_counter()
    res = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if res.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{res.stderr[-3000:]}")
    return time.perf_counter() - started


def measure_switch(proj: Path, env: dict, aug: str) -> dict:
    """``dvc exp run -S aug=<aug>`` in ``proj``; an error if DVC's run cache spared a stage a switch must run."""
    subprocess.run(["git", "add", "-A"], cwd=proj, env=env, check=True, capture_output=True)
    subprocess.run(
        ["git", "commit", "-qm", "baseline", "--allow-empty"], cwd=proj, env=env, check=True, capture_output=True
    )
    since = time.time()
    seconds = run(["dvc", "exp", "run", "-S", f"aug={aug}"], proj, env)
    switched = finished_stages(since, proj / STAGE_TIMINGS)
    must = [s for s in dag_stages() if s.split("@")[0] in ("bitext", "distill", "evaluate", "report")]
    spared = [s for s in must if s not in switched]
    if spared:
        sys.exit(
            f"{proj}: {spared} did not run (restored from DVC's run cache: this project has made this switch "
            f"before), so {seconds:.0f} s is not a switch; measure in a fresh project or remove its .dvc/cache/runs"
        )
    peak = max((s["peak_rss_gb"] for s in switched.values()), default=0.0)
    print(f"{'exp run -S aug=' + aug:28s} {seconds:8.1f} {peak:12.2f}  ({', '.join(sorted(switched))})")
    return {"aug": aug, "seconds": round(seconds, 1), "peak_rss_gb": peak, "stages": sorted(switched)}


def machine(isa: str) -> str:
    """The CPU model, cores, memory, what precision ``auto`` picks there and the instruction-set cap, if any (every
    timing is this machine's)."""
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return f"{cpu_model()}, {os.cpu_count()} CPU cores, {mem:.0f} GB, no GPU; {auto_summary()}{describe(isa)}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    profiles = sorted(p.stem for p in (ROOT / "profiles").glob("*.yaml"))
    ap.add_argument("--profile", choices=["default", *profiles], default="default")
    ap.add_argument("--aug", default="backtranslation")
    ap.add_argument("--keep", help="build the copy here and keep it")
    ap.add_argument("--project", help="measure this project, where `dvc repro` has just run from scratch")
    ap.add_argument(
        "--switch-only", action="store_true", help="with --project: re-measure only the switch, keep the stage rows"
    )
    ap.add_argument(
        "--stages-only",
        action="store_true",
        help="with --project: the stage rows and the no-op repro only, keep the switch measured before",
    )
    ap.add_argument(
        "--readme-seconds",
        type=float,
        help="with --project: the wall time you measured for the README's run command there (recorded as is)",
    )
    ap.add_argument("--isa", choices=sorted(ISA_ENV), default="native", help="cap the libraries' instruction set")
    args = ap.parse_args()
    if (args.switch_only or args.stages_only or args.readme_seconds) and not args.project:
        ap.error("--switch-only, --stages-only and --readme-seconds need --project")
    if (args.switch_only or args.stages_only) and results_file(args.profile) is None:
        ap.error(f"--switch-only and --stages-only keep rows of a results file; --profile {args.profile} writes none")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **ISA_ENV[args.isa]}
    repro = args.readme_seconds
    if args.project:
        proj = Path(args.project).resolve()
    else:
        proj = Path(args.keep or tempfile.mkdtemp(prefix="pipeline-times-")).resolve()
        proj.mkdir(parents=True, exist_ok=True)
        copy_project(proj, args.profile)
        for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "bench"]):
            subprocess.run(cmd, cwd=proj, env=env, check=True, capture_output=True)
        repro = run(["dvc", "repro"], proj, env)
        print(f"dvc repro from scratch: {repro:.1f} s wall (DVC's own overhead included)")
    out = results_file(args.profile, bf16=ran_bf16(proj))
    if args.switch_only:
        result = json.loads(out.read_text())
        result["switch"] = measure_switch(proj, env, args.aug)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out.relative_to(ROOT)} (switch only)")
        return
    done = finished_stages(0.0, proj / STAGE_TIMINGS)
    order = dag_stages()
    missing = [s for s in order if s not in done]
    if missing:
        sys.exit(f"{proj}: no timings for {missing}: run `dvc repro` there from scratch first")
    stages = [{"stage": s, **done[s]} for s in order]
    total = sum(s["seconds"] for s in stages)
    print(f"{'stage':28s} {'wall s':>8s} {'peak RSS GB':>12s}")
    for s in stages:
        print(f"{s['stage']:28s} {s['seconds']:8.1f} {s['peak_rss_gb']:12.2f}")
    print(f"{'whole DAG (sum)':28s} {total:8.1f}")
    noop = run(["dvc", "repro"], proj, env)
    print(f"{'no-op dvc repro':28s} {noop:8.1f}")
    measured = quality(proj)  # before the switch, which applies its experiment's metrics to the workspace
    for name, value in measured.items():
        print(f"{name:28s} {value:8}")
    if args.stages_only:
        switch = json.loads(out.read_text())["switch"]
        print(f"switch kept from {out.relative_to(ROOT)}: {switch['seconds']} s (not re-measured)")
    else:
        switch = measure_switch(proj, env, args.aug)
    print(f"switch / full = {switch['seconds'] / total:.2f}")
    result = {
        "profile": args.profile,
        "machine": machine(args.isa),
        "stages": stages,
        "total_seconds": round(total, 1),
        "noop_seconds": round(noop, 1),
        "switch": switch,
        # the whole `dvc repro` (or the README run command around it), DVC's and Python's start-up included
        "repro_seconds": round(repro, 1) if repro else None,
        "quality": measured,
    }
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out.relative_to(ROOT)}")
    if not (args.keep or args.project):
        shutil.rmtree(proj, ignore_errors=True)


if __name__ == "__main__":
    main()
