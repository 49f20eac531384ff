"""Wall time and peak memory of the pipeline: every stage from scratch, a no-op repro, and an ``aug`` switch.

Copies the project (tracked files + the set-up's UDHR download) into a throw-away git + DVC repo, then runs
each stage in DAG order with ``dvc repro --single-item <stage>`` under GNU ``time`` (wall seconds, peak RSS of the
stage process tree), a no-op ``dvc repro``, and ``dvc exp run -S aug=<aug>``. Prints one line per step and the
ratio switch / full. The default profile takes about 20 minutes on 2 cores; ``--profile tiny`` a few.

Usage::

    python benchmarks/pipeline_times.py [--profile default|tiny] [--aug backtranslation] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = ["pipeline", "dvc.yaml", "params.yaml", "profiles", ".dvc/config", ".dvcignore", ".gitignore"]
SPLITS = ["in_domain", "shifted_genre", "shifted_register"]
STAGES = ["prepare", "encoder", "train_mt", "backtranslate", "translate_docs", "llm", "synthesize", "bitext",
          "teacher", "distill", *(f"evaluate_baselines@{s}" for s in SPLITS), *(f"evaluate@{s}" for s in SPLITS), "report"]


def timed(cmd: list[str], cwd: Path, env: dict) -> tuple[float, float]:
    """(wall seconds, peak RSS in GB) of ``cmd`` and its children."""
    with tempfile.NamedTemporaryFile("r") as out:
        started = time.perf_counter()
        res = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out.name, *cmd], cwd=cwd, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - started
        if res.returncode:
            sys.exit(f"{' '.join(cmd)} failed:\n{res.stderr[-2000:]}")
        return wall, int(out.read().strip().splitlines()[-1]) / 1024**2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", choices=["default", "tiny"], default="default")
    ap.add_argument("--aug", default="backtranslation")
    ap.add_argument("--keep", help="build the copy here and keep it")
    args = ap.parse_args()
    proj = Path(args.keep or tempfile.mkdtemp(prefix="pipeline-times-"))
    proj.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        src, dst = ROOT / name, proj / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__")) if src.is_dir() else shutil.copy(src, dst))
    if args.profile == "tiny":
        shutil.copy(ROOT / "profiles/tiny.yaml", proj / "params.yaml")
    shutil.copytree(ROOT / "data/external/udhr", proj / "data/external/udhr")
    env = {**os.environ, "PYTHONPATH": str(proj), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "bench"]):
        subprocess.run(cmd, cwd=proj, env=env, check=True)
    total = 0.0
    print(f"{'step':28s} {'wall s':>8s} {'peak RSS GB':>12s}")
    for stage in STAGES:
        wall, rss = timed(["dvc", "repro", "--single-item", stage], proj, env)
        total += wall
        print(f"{stage:28s} {wall:8.1f} {rss:12.2f}", flush=True)
    print(f"{'whole DAG (sum)':28s} {total:8.1f}")
    noop, _ = timed(["dvc", "repro"], proj, env)
    print(f"{'no-op dvc repro':28s} {noop:8.1f}")
    subprocess.run(["git", "add", "-A"], cwd=proj, env=env, check=True)
    subprocess.run(["git", "commit", "-qm", "baseline"], cwd=proj, env=env, check=True)
    switch, rss = timed(["dvc", "exp", "run", "-S", f"aug={args.aug}"], proj, env)
    print(f"{'exp run -S aug=' + args.aug:28s} {switch:8.1f} {rss:12.2f}")
    print(f"switch / full = {switch / total:.2f}")
    if not args.keep:
        shutil.rmtree(proj, ignore_errors=True)


if __name__ == "__main__":
    main()
