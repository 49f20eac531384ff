"""What training the two MT models costs, one after the other or side by side: train_mt's library code on the default
data.

A setting trains both directions (``xx-en``, ``en-xx``) with :func:`pipeline.mt.train_mt` on the stage's data (all
``bitext`` pairs, validated on ``source_dev``, the params.yaml settings, each direction's stage seed), then scores
both dev sets with the stage's own decoding (:func:`pipeline.stages.train_mt.dev_scores`). Each direction runs in a
process of its own with torch's thread count fixed (it is per process):

- ``sequential-2``: one direction after the other, two threads each (one per core of a 2-core machine);
- ``concurrent-1``: both directions at once, one thread each (what the stage does).

``--mt KEY=VALUE ...`` trains with those ``mt`` params changed (validated like params.yaml): the generator-quality
levels of MT (e.g. ``--mt epochs=8``), whose dev scores and cost are measured here before a design uses them.

Recorded per setting: the wall time of the pair, and per direction wall and CPU seconds of preprocessing, fairseq
training (with the conversion for CTranslate2) and dev decoding, epochs and updates, BLEU / chrF on both dev sets;
the CPU model and core count.

Needs ``data/prepared`` (``dvc repro prepare``); run it alone on the machine, in a scratch copy of the repository
(it writes only temporary model directories):

    python -m benchmarks.mt_budget [--settings sequential-2,concurrent-1] [--note "..."]
    python -m benchmarks.mt_budget --settings concurrent-1 --mt epochs=8 --out benchmarks/results/mt_levels.json

Rows are appended to ``benchmarks/results/mt_budget.json`` (or ``--out``); compare settings only within one run
(shared hosts differ from one session to the next).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "mt_budget.json"
DIRECTIONS = ("xx-en", "en-xx")
#: Settings: torch's intra-op threads per training process, and whether the two directions run at once.
SETTINGS = {"sequential-2": {"threads": 2, "concurrent": False}, "concurrent-1": {"threads": 1, "concurrent": True}}


class _Updates(logging.Handler):
    """fairseq's end-of-epoch ``train`` stats carry the update count."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.updates = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "train":
            with contextlib.suppress(ValueError, KeyError, TypeError):
                self.updates = int(json.loads(record.getMessage())["train_num_updates"])


def child(direction: str, threads: int, overrides: dict) -> dict:
    """One direction, in this process, with the ``mt`` params ``overrides``; returns its row."""
    import torch

    from pipeline.config import seeds
    from pipeline.config.params import load_params
    from pipeline.data import store
    from pipeline.mt import MTConfig, load_translator, train_mt
    from pipeline.mt.config import direction_langs
    from pipeline.mt.ct2 import convert
    from pipeline.stages.train_mt import dev_scores

    torch.set_num_threads(threads)
    params = load_params()
    mt = type(params.mt).model_validate({**params.mt.model_dump(), **overrides})
    source, target = direction_langs(direction)  # the bitext and dev tables' columns, as the stage reads them
    bitext = store.read_file("bitext")
    if mt.train_size is not None:
        bitext = bitext.iloc[: mt.train_size]
    valid = store.read_file("source_dev")
    cfg = MTConfig.from_params(mt, seeds.derive(params.lang_seed, "train_mt", direction))
    updates = _Updates()
    logging.getLogger("fairseq.logging.progress_bar").addHandler(updates)
    with tempfile.TemporaryDirectory(prefix="mt-budget-") as tmp:
        model_dir = Path(tmp) / "mt"
        wall0, cpu0 = time.perf_counter(), time.process_time()
        info = train_mt(
            list(zip(bitext[source], bitext[target], strict=True)),
            list(zip(valid[source], valid[target], strict=True)),
            model_dir,
            cfg,
            direction,
        )
        convert(model_dir)  # as the stage does, for the decoding engine
        wall1, cpu1 = time.perf_counter(), time.process_time()
        model = load_translator(mt, model_dir, direction)
        dev = {split: dev_scores(model, params, split, direction) for split in ("source_dev", "genre_dev")}
        wall2, cpu2 = time.perf_counter(), time.process_time()
    return {
        "direction": direction,
        "threads": threads,
        "mt": overrides,
        "train_pairs": info["train_pairs"],
        "epochs": info["epochs"],
        "updates": updates.updates,
        "train_mt_wall_s": round(wall1 - wall0, 1),
        "train_mt_cpu_s": round(cpu1 - cpu0, 1),
        "fairseq_train_wall_s": round(info["train_seconds"], 1),
        "preprocess_wall_s": round(info["total_seconds"] - info["train_seconds"], 1),
        "dev_decode_wall_s": round(wall2 - wall1, 1),
        "total_wall_s": round(wall2 - wall0, 1),
        "total_cpu_s": round(cpu2 - cpu0, 1),
        **{f"bleu_{s}": round(d["bleu"], 2) for s, d in dev.items()},
        **{f"chrf_{s}": round(d["chrf"], 2) for s, d in dev.items()},
        "signature": dev["source_dev"]["bleu_signature"],
    }


def _start(direction: str, threads: int, overrides: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.mt_budget",
            "--child",
            direction,
            "--threads",
            str(threads),
            "--overrides",
            json.dumps(overrides),
        ],  # fmt: skip
        env={**os.environ, "OMP_NUM_THREADS": str(threads)},
        stdout=subprocess.PIPE,
        text=True,
    )


def _row(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"benchmark child failed (exit {proc.returncode})")
    return json.loads(next(line[4:] for line in out.splitlines() if line.startswith("ROW ")))


def run_setting(name: str, overrides: dict) -> dict:
    """Both directions under setting ``name``; the pair's wall time and one row per direction."""
    setting = SETTINGS[name]
    started = time.perf_counter()
    if setting["concurrent"]:
        procs = [_start(d, setting["threads"], overrides) for d in DIRECTIONS]
        rows = [_row(p) for p in procs]
    else:
        rows = [_row(_start(d, setting["threads"], overrides)) for d in DIRECTIONS]
    return {"setting": name, **setting, "mt": overrides, "pair_wall_s": round(time.perf_counter() - started, 1),
            "directions": rows}  # fmt: skip


def parse_overrides(items: list[str]) -> dict:
    """``["epochs=8", "train_size=4000"]`` -> ``{"epochs": 8, "train_size": 4000}`` (values read as YAML)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--mt {item!r}: expected KEY=VALUE")
        out[key] = yaml.safe_load(value)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated, of {list(SETTINGS)}")
    ap.add_argument("--note", default="", help="what else ran on the machine meanwhile")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--child", choices=DIRECTIONS, help=argparse.SUPPRESS)
    ap.add_argument("--mt", nargs="*", default=[], help="mt params changed for every setting, KEY=VALUE")
    ap.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--overrides", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print("ROW " + json.dumps(child(args.child, args.threads, json.loads(args.overrides))), flush=True)
        return
    from pipeline.config.hardware import cpu_model

    names = args.settings.split(",")
    unknown = sorted(set(names) - set(SETTINGS))
    if unknown:
        ap.error(f"unknown settings {unknown}; known: {list(SETTINGS)}")
    result = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {"rows": []}
    overrides = parse_overrides(args.mt)
    for name in names:
        row = run_setting(name, overrides)
        row.update(cpu=cpu_model(), cores=os.cpu_count(), note=args.note, date=time.strftime("%Y-%m-%d %H:%M"))
        result["rows"].append(row)
        print(json.dumps(row, indent=1), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
