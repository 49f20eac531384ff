"""Wall time of every queued experiment that DVC's queue ran here: per cell and per grid.

``dvc queue start`` runs each queued experiment as a task with a directory ``.dvc/tmp/exps/run/<task>/``
(its ``.run`` file names the experiment and its baseline commit; the ``.pid`` file is written when the task
starts and the ``.out`` log last when it ends). This script reads those directories and merges one row per
task into ``benchmarks/results/grid_times.json`` (rows already there are kept: the directories go when DVC
cleans its queue), keyed by experiment name and baseline commit, beside the rows ``python -m pipeline.experiments.grid
run`` records itself. The time includes whatever else the machine ran meanwhile: run grids on
an otherwise idle machine, one worker (``-j 1``), when the seconds matter.

    python -m benchmarks.grid_times [--json PATH]
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

from dvc.repo.experiments.executor.base import TaskStatus

from pipeline.experiments.grid import TIMES_FILE, record_times

RUN_DIR = Path(".dvc/tmp/exps/run")
RESULTS = TIMES_FILE


def tasks(run_dir: Path = RUN_DIR) -> list[dict]:
    rows = []
    for task in sorted(p for p in run_dir.glob("*") if p.is_dir()):
        run, pid, out = (task / f"{task.name}{ext}" for ext in (".run", ".pid", ".out"))
        if not (run.exists() and pid.exists() and out.exists()):
            continue
        info = json.loads(run.read_text())
        start, end = pid.stat().st_mtime, out.stat().st_mtime
        rows.append(
            {
                "name": info.get("name") or task.name[:7],
                "baseline": info.get("baseline_rev"),
                "started": datetime.fromtimestamp(start, UTC).isoformat(timespec="seconds"),
                "seconds": round(end - start, 1),
                "status": TaskStatus(info["status"]).name.lower() if "status" in info else "unknown",
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, default=RESULTS)
    args = ap.parse_args()
    rows = tasks()
    for r in rows:
        print(f"{r['started']}  {r['seconds']:8.1f} s  {r['status']:9s} {r['name']}")
    record_times(rows, args.json)


if __name__ == "__main__":
    main()
