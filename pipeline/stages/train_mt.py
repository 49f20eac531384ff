"""Stage ``train_mt``: the two MT models, one recipe, trained side by side.

``xx-en`` (target→English) serves back-translation, synthesis and the NMT baselines; ``en-xx`` (English→target)
forward translation (``aug: forward``). Both are trained by fairseq on the same source-domain bitext with the same
``mt`` params (never the test books, never the monolingual pool's English side), validated on the held-out source
dev set; each is converted for CTranslate2 (``<model dir>/ctranslate2``) and scored on the dev sets with the engine
every decoding stage uses (``mt.engine``, ``mt.compute_type``).

``python -m pipeline.stages.train_mt`` starts one process per direction, at once, each with ``mt.threads`` torch
threads (fairseq's small updates leave most of a second core idle, so two one-thread trainings finish far sooner
than two two-thread ones in turn: docs/performance.md); ``--direction`` runs one of them in this process.

Writes ``paths.MT_DIRS[direction]``, ``metrics/<mt|mt_forward>.json`` (sacreBLEU BLEU and chrF with their
signatures on the source dev set and on the target-genre dev sample, translated in the model's direction) and
``dvclive/<mt|mt_forward>`` (loss per epoch) for each direction. ``mt.name`` other than ``fairseq-local`` uses that
Hugging Face model instead of training (for ``en-xx`` with ``mt.src_lang`` and ``mt.tgt_lang`` swapped).
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time

from dvclive import Live
from pipeline.config import paths, seeds
from pipeline.config.conditions import MT_DIRECTIONS
from pipeline.config.params import Params, load_params
from pipeline.data import store
from pipeline.errors import PipelineError
from pipeline.io import atomic_path, write_metrics, write_text
from pipeline.mt import (
    FAIRSEQ_LOCAL,
    MTConfig,
    load_translator,
    score_translations,
    train_mt,
)
from pipeline.mt.config import direction_langs
from pipeline.mt.ct2 import convert
from pipeline.stages import live_logger, run_stage, skipped_without_bitext

log = logging.getLogger(__name__)


def dev_scores(model, params: Params, split: str, direction: str) -> dict:
    """BLEU / chrF of beam (``mt.beam``) translations of a dev set in ``direction`` (its other side is used for
    scoring only)."""
    source, target = direction_langs(direction)  # the bitext and dev tables' columns
    dev = store.read_file(split)
    hyps, stats = model.translate(
        list(dev[source]),
        "beam",
        beam=params.mt.beam,
        batch_size=params.mt.batch_size,
        no_repeat_ngram_size=params.mt.no_repeat_ngram_size,
    )
    return {**score_translations(hyps, list(dev[target])), "truncated": stats["truncated"]}


def train(params: Params, direction: str) -> dict:
    """Train the ``direction`` model into its model directory and convert it; its metrics."""
    source, target = direction_langs(direction)
    model_dir, live_dir = paths.MT_DIRS[direction], paths.LIVE_DIRS[paths.MT_METRICS[direction]]
    bitext = store.read_file("bitext")
    if params.mt.train_size is not None:
        bitext = bitext.iloc[: params.mt.train_size]
    valid = store.read_file("source_dev")
    seed = seeds.derive(params.lang_seed, "train_mt", direction)
    with Live(str(live_dir), dvcyaml=False, save_dvc_exp=False, report=None) as live:
        info = train_mt(
            list(zip(bitext[source], bitext[target], strict=True)),
            list(zip(valid[source], valid[target], strict=True)),
            model_dir,
            MTConfig.from_params(params.mt, seed),
            direction,
            log=live_logger(live),
        )
    started = time.perf_counter()
    convert(model_dir)  # for CTranslate2 (mt.engine); the same folder serves either engine
    return {
        "convert_seconds": round(time.perf_counter() - started, 1),
        "train_pairs": len(bitext),
        "epochs": info["epochs"],
        "final_train_loss": round(info["train_loss"][-1], 4),
        "final_valid_loss": round(info["valid_loss"][-1], 4) if info["valid_loss"] else None,
        "train_seconds": round(info["train_seconds"], 1),
    }


def train_direction(params: Params, direction: str) -> None:
    """One direction's model, metrics and training curve, in this process."""
    import torch

    torch.set_num_threads(params.mt.threads)  # the results depend on it (summation order), so it is a param
    name, model_dir = paths.MT_METRICS[direction], paths.MT_DIRS[direction]
    live_dir = paths.LIVE_DIRS[name]
    if skipped_without_bitext(params, paths.metrics_file(name), dirs=(model_dir, live_dir), direction=direction):
        return
    result: dict = {"name": params.mt.name, "direction": direction, "threads": params.mt.threads}
    if params.mt.name == FAIRSEQ_LOCAL:
        result.update(train(params, direction))
    else:
        with atomic_path(model_dir, is_dir=True) as tmp:  # nothing to train: record which model is used
            write_text(tmp / "HF_MODEL", params.mt.name + "\n")
        live_dir.mkdir(parents=True, exist_ok=True)
    model = load_translator(params.mt, model_dir, direction)
    result["decoder"] = {"engine": type(model).__name__, "compute_type": getattr(model, "compute_type", None)}
    result["dev_source"] = dev_scores(model, params, "source_dev", direction)
    result["dev_target_genre"] = dev_scores(model, params, "genre_dev", direction)
    log.info(
        "%s BLEU source dev %.2f, target-genre dev %.2f",
        direction,
        result["dev_source"]["bleu"],
        result["dev_target_genre"]["bleu"],
    )
    write_metrics(paths.metrics_file(name), result)


def train_side_by_side(params: Params) -> None:
    """Every direction in a process of its own, all at once; one error naming each direction that failed."""
    stage = os.environ.get("DVC_STAGE", "train_mt")
    procs = {
        direction: subprocess.Popen(
            [sys.executable, "-m", "pipeline.stages.train_mt", "--direction", direction],
            env={**os.environ, "OMP_NUM_THREADS": str(params.mt.threads), "DVC_STAGE": f"{stage}/{direction}"},
        )
        for direction in MT_DIRECTIONS
    }
    exits = {direction: proc.wait() for direction, proc in procs.items()}
    failed = ", ".join(f"direction {d} failed (exit {code})" for d, code in exits.items() if code)
    if failed:
        raise PipelineError(f"train_mt: {failed} (its error is printed above)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--direction", choices=MT_DIRECTIONS, help="train only this direction, in this process")
    direction = parser.parse_args(argv).direction
    params = load_params()
    if direction is None:
        train_side_by_side(params)
    else:
        train_direction(params, direction)


if __name__ == "__main__":
    run_stage(main)
