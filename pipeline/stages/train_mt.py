"""Stage ``train_mt``: the target→English MT model used for back-translation and the NMT baselines.

fairseq trains it; the stage converts it for CTranslate2 (``models/mt/ctranslate2``), and scores the dev sets with the
engine every decoding stage uses (``mt.engine``, ``mt.compute_type``).

Trained on source-domain bitext only (never the test books, never the monolingual pool's English side),
validated on the held-out source dev set. Writes ``models/mt/``, ``metrics/mt.json`` (sacreBLEU BLEU and
chrF with their signatures on the source dev set and on the target-genre dev sample) and ``dvclive/mt``
(loss per epoch). ``mt.name`` other than ``fairseq-local`` uses that Hugging Face model instead of training.
"""

from __future__ import annotations

import logging
import time

from dvclive import Live
from pipeline.config import paths, seeds
from pipeline.config.params import Params, load_params
from pipeline.data import store
from pipeline.io import atomic_path, write_metrics, write_text
from pipeline.mt import (
    FAIRSEQ_LOCAL,
    MTConfig,
    load_translator,
    score_translations,
    train_mt,
)
from pipeline.mt.ct2 import convert
from pipeline.stages import live_logger, run_stage, skipped_without_bitext

log = logging.getLogger(__name__)
MT_DIR = paths.MT_DIR
LIVE_DIR = paths.LIVE_DIRS["mt"]


def dev_scores(model, params: Params, split: str) -> dict:
    """BLEU / chrF of beam (``mt.beam``) translations of a dev set (its English side is used for scoring only)."""
    dev = store.read_file(split)
    hyps, stats = model.translate(
        list(dev["xx"]),
        "beam",
        beam=params.mt.beam,
        batch_size=params.mt.batch_size,
        no_repeat_ngram_size=params.mt.no_repeat_ngram_size,
    )
    return {**score_translations(hyps, list(dev["en"])), "truncated": stats["truncated"]}


def main() -> None:
    params = load_params()
    if skipped_without_bitext(params, paths.metrics_file("mt"), dirs=(MT_DIR, LIVE_DIR)):
        return
    result: dict = {"name": params.mt.name}
    if params.mt.name == FAIRSEQ_LOCAL:
        bitext = store.read_file("bitext")
        if params.mt.train_size is not None:
            bitext = bitext.iloc[: params.mt.train_size]
        valid = store.read_file("source_dev")
        with Live(str(LIVE_DIR), dvcyaml=False, save_dvc_exp=False, report=None) as live:
            info = train_mt(
                list(zip(bitext["xx"], bitext["en"], strict=True)),
                list(zip(valid["xx"], valid["en"], strict=True)),
                MT_DIR,
                MTConfig.from_params(params.mt, seeds.derive(params.seed, "train_mt")),
                log=live_logger(live),
            )
        started = time.perf_counter()
        convert(MT_DIR)  # for CTranslate2 (mt.engine); the same folder serves either engine
        result["convert_seconds"] = round(time.perf_counter() - started, 1)
        result.update(
            train_pairs=len(bitext),
            epochs=info["epochs"],
            final_train_loss=round(info["train_loss"][-1], 4),
            final_valid_loss=round(info["valid_loss"][-1], 4) if info["valid_loss"] else None,
            train_seconds=round(info["train_seconds"], 1),
        )
    else:
        with atomic_path(MT_DIR, is_dir=True) as tmp:  # nothing to train: record which model is used
            write_text(tmp / "HF_MODEL", params.mt.name + "\n")
        LIVE_DIR.mkdir(parents=True, exist_ok=True)
    model = load_translator(params.mt, MT_DIR)
    result["decoder"] = {"engine": type(model).__name__, "compute_type": getattr(model, "compute_type", None)}
    result["dev_source"] = dev_scores(model, params, "source_dev")
    result["dev_target_genre"] = dev_scores(model, params, "genre_dev")
    log.info(
        "BLEU source dev %.2f, target-genre dev %.2f", result["dev_source"]["bleu"], result["dev_target_genre"]["bleu"]
    )
    write_metrics(paths.metrics_file("mt"), result)


if __name__ == "__main__":
    run_stage(main)
