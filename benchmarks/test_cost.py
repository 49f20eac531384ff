"""What the test costs to evaluate: the evaluation stages on the known-item and on the topical test, before and after.

Three variants, each in a throw-away project that links the workspace's trained models (``models/``, from a
default run) so that only the evaluation differs:

* ``before``: the known-item test with the code of ``--old-rev`` (the commit before the topical test: one
  ``evaluate@<split>`` and one ``evaluate_baselines@<split>`` process per split, each encoding its split's documents);
* ``known_item``: the known-item test with this code (one ``evaluate`` and one ``evaluate_baselines`` process, every
  distinct document encoded once per model, both query forms);
* ``topical``: the topical test (the default) with this code.

Per variant and repeat (the variants in turn, so that the machine's drift spreads over them): the wall time of each
evaluation stage process, imports included (``translate_docs``, ``evaluate_baselines``, ``evaluate``), as a grid cell
or the default DAG pays it. Writes ``benchmarks/results/test_cost.json`` with the machine (CPU model, cores, what
precision ``auto`` picks there); the docs set ``evaluate`` beside the rest of a grid cell (``bitext → distill →
report``, the same work on either test) as the ``tests`` grid recorded it on the same machine
(``benchmarks/results/grid_times.json``). Needs a default run's models in the workspace (``dvc repro`` first).

Usage (from the repository root, venv active)::

    python -m benchmarks.test_cost --old-rev 36b89ab [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from pipeline.config.hardware import auto_summary, cpu_model
from pipeline.io import copy_working_tree, read_metrics, write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results/test_cost.json"
SPLITS_BEFORE = ("in_domain", "shifted_genre", "shifted_register")
#: The evaluation stages of each variant: (name, the commands of its processes).
STAGES = {
    "before": {
        "translate_docs": [["translate_docs"]],
        "evaluate_baselines": [["evaluate", "--baselines", s] for s in SPLITS_BEFORE],
        "evaluate": [["evaluate", s] for s in SPLITS_BEFORE],
    },
    "now": {
        "translate_docs": [["translate_docs"]],
        "evaluate_baselines": [["evaluate", "--baselines"]],
        "evaluate": [["evaluate"]],
    },
}


def stage(proj: Path, *args: str) -> float:
    """Run ``python -m pipeline.stages.<args>`` in ``proj``; its wall seconds."""
    env = {**os.environ, "PYTHONPATH": str(proj)}
    started = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", f"pipeline.stages.{args[0]}", *args[1:]],
        cwd=proj,
        env=env,
        capture_output=True,
        text=True,
    )
    if res.returncode:
        raise SystemExit(f"{proj.name}: stage {' '.join(args)} failed:\n{res.stderr[-2000:]}")
    return time.perf_counter() - started


def project(dest: Path, old_rev: str | None, collection: str | None) -> Path:
    """A throw-away project: this working tree (or ``old_rev``'s files), the workspace's models and UDHR linked."""
    dest.mkdir(parents=True)
    if old_rev:
        archive = subprocess.run(["git", "archive", old_rev], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    else:
        copy_working_tree(ROOT, dest)
    for name in ("models", "data/udhr"):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / name).symlink_to(ROOT / name)
    if collection:
        params = yaml.safe_load((dest / "params.yaml").read_text())
        params["prepare"]["collection"] = collection
        (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stage(dest, "prepare")
    return dest


def sizes(proj: Path) -> dict:
    """Queries, documents per split and distinct documents of a prepared project (from its prepare metrics)."""
    splits = read_metrics(proj / "metrics/prepare.json")["splits"]
    docs = set()
    for split in splits:
        lines = (proj / "data/prepared" / split / "docs.tsv").read_text(encoding="utf-8").splitlines()[1:]
        docs.update(line.split("\t", 1)[1] for line in lines)
    return {
        "queries": {s: v["queries"] for s, v in splits.items()},
        "docs": {s: v["docs"] for s, v in splits.items()},
        "distinct_docs": len(docs),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old-rev", required=True, help="the commit before the topical test (the 'before' code)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    if not (ROOT / "models/student").is_dir():
        raise SystemExit("models/student not found: run the default DAG here first (dvc repro)")
    with tempfile.TemporaryDirectory() as tmp:
        projects = {
            "before": (project(Path(tmp) / "before", args.old_rev, None), STAGES["before"]),
            "known_item": (project(Path(tmp) / "known_item", None, "known_item"), STAGES["now"]),
            "topical": (project(Path(tmp) / "topical", None, "topical"), STAGES["now"]),
        }
        seconds: dict = {v: {s: [] for s in STAGES["now"]} for v in projects}
        for _ in range(args.repeats):
            for variant, (proj, stages) in projects.items():
                for name, commands in stages.items():
                    seconds[variant][name].append(round(sum(stage(proj, *c) for c in commands), 2))
        variants = {}
        for variant, (proj, _) in projects.items():
            median = {name: statistics.median(s) for name, s in seconds[variant].items()}
            variants[variant] = {
                **sizes(proj),
                "seconds": seconds[variant],
                "median_seconds": median,
            }
    out = {
        "machine": f"{cpu_model()}; {auto_summary()}",
        "old_rev": args.old_rev,
        "repeats": args.repeats,
        "variants": variants,
    }
    write_json(args.out, out)
    print(json.dumps({v: d["median_seconds"] for v, d in variants.items()}, indent=1))


if __name__ == "__main__":
    main()
