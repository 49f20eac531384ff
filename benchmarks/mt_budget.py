"""What ``train_mt`` spends its time on, and what a setting costs: train_mt's library code on the default data.

Each setting runs in its own process (torch's thread count is per process): :func:`pipeline.mt.train_mt` on the
stage's data (all ``bitext`` pairs, validated on ``source_dev``) with the params.yaml settings and the stage's seed,
then the stage's own dev scoring (:func:`pipeline.stages.train_mt.dev_scores`: beam ``mt.beam`` on both dev sets).
Recorded per setting: wall and CPU seconds (all threads) of the preprocessing (SentencePiece, binarisation),
of fairseq training and of the dev decoding; epochs and updates; BLEU / chrF on both dev sets; the CPU model.

Needs ``data/prepared`` (``dvc repro prepare``); run it in a scratch copy of the repository, not in a working tree
whose DVC outputs matter (it writes only a temporary model directory).

    python -m benchmarks.mt_budget --settings threads-1 [--note "what else ran meanwhile"]

``--settings`` runs the named settings (comma-separated, one after the other) and appends their rows to
``benchmarks/results/mt_budget.json``: the machine's load changes between runs, so keep every run with its note.
``threads-2`` is train_mt as the stage runs it (torch's default: one thread per core here), ``threads-1`` with one
thread (a candidate setting, not a param yet: its quiet-machine wall time is still to be measured).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "mt_budget.json"
#: Settings: torch's intra-op thread count for the whole process (training and decoding); the rest is params.yaml.
SETTINGS = {"threads-2": {"threads": 2}, "threads-1": {"threads": 1}}


def cpu_model() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    match = re.search(r"^Model name:\s*(.+)$", out, re.M)
    return match.group(1).strip() if match else platform.processor()


class _Updates(logging.Handler):
    """fairseq's end-of-epoch ``train`` stats carry the update count."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.updates = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "train":
            with contextlib.suppress(ValueError, KeyError, TypeError):
                self.updates = int(json.loads(record.getMessage())["train_num_updates"])


def child(name: str) -> dict:
    """One setting, in this process; returns its row."""
    import torch

    from pipeline.config import seeds
    from pipeline.config.params import load_params
    from pipeline.data import store
    from pipeline.mt import MTConfig, load_translator, train_mt
    from pipeline.stages.train_mt import dev_scores

    setting = SETTINGS[name]
    torch.set_num_threads(setting["threads"])
    params = load_params()
    bitext = store.read_file("bitext")
    if params.mt.train_size is not None:
        bitext = bitext.iloc[: params.mt.train_size]
    valid = store.read_file("source_dev")
    cfg = MTConfig.from_params(params.mt, seeds.derive(params.seed, "train_mt"))
    updates = _Updates()
    logging.getLogger("fairseq.logging.progress_bar").addHandler(updates)
    epochs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="mt-budget-") as tmp:
        model_dir = Path(tmp) / "mt"
        wall0, cpu0 = time.perf_counter(), time.process_time()
        info = train_mt(
            list(zip(bitext["xx"], bitext["en"], strict=True)),
            list(zip(valid["xx"], valid["en"], strict=True)),
            model_dir,
            cfg,
            "xx-en",
            log=lambda epoch, stats: epochs.append(
                {"epoch": epoch, "wall_s": round(time.perf_counter() - wall0, 1), **stats}
            ),
        )
        wall1, cpu1 = time.perf_counter(), time.process_time()
        model = load_translator(params.mt, model_dir, "xx-en")
        dev = {split: dev_scores(model, params, split, "xx-en") for split in ("source_dev", "genre_dev")}
        wall2, cpu2 = time.perf_counter(), time.process_time()
    return {
        "setting": name,
        **setting,
        "train_pairs": info["train_pairs"],
        "epochs": info["epochs"],
        "updates": updates.updates,
        "per_epoch": epochs,
        "train_mt_wall_s": round(wall1 - wall0, 1),
        "train_mt_cpu_s": round(cpu1 - cpu0, 1),
        "fairseq_train_wall_s": info["train_seconds"],
        "preprocess_wall_s": round(info["total_seconds"] - info["train_seconds"], 1),
        "dev_decode_wall_s": round(wall2 - wall1, 1),
        "dev_decode_cpu_s": round(cpu2 - cpu1, 1),
        "total_wall_s": round(wall2 - wall0, 1),
        "total_cpu_s": round(cpu2 - cpu0, 1),
        **{f"bleu_{s}": round(d["bleu"], 2) for s, d in dev.items()},
        **{f"chrf_{s}": round(d["chrf"], 2) for s, d in dev.items()},
        "signature": dev["source_dev"]["bleu_signature"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated, of {list(SETTINGS)}")
    ap.add_argument("--note", default="", help="what else ran on the machine meanwhile")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print("ROW " + json.dumps(child(args.child)), flush=True)
        return
    names = args.settings.split(",")
    unknown = sorted(set(names) - set(SETTINGS))
    if unknown:
        ap.error(f"unknown settings {unknown}; known: {list(SETTINGS)}")
    result = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {"rows": []}
    for name in names:
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.mt_budget", "--child", name],
            env={**os.environ, "OMP_NUM_THREADS": str(SETTINGS[name]["threads"])},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        row = json.loads(next(line[4:] for line in out.splitlines() if line.startswith("ROW ")))
        row.update(cpu=cpu_model(), cores=os.cpu_count(), note=args.note, date=time.strftime("%Y-%m-%d %H:%M"))
        result["rows"].append(row)
        print(json.dumps(row, indent=1), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
