"""Stage ``evaluate@<split>``: every system's TREC run and AP / nDCG@10 / R@100 on one split.

Usage: ``python -m pipeline.stages.evaluate <split>``. Writes ``runs/<split>/<system>.run`` and
``metrics/eval/<split>.json``. A split the language cannot serve (e.g. ``in_domain`` for a UDHR-only
language) is skipped by design: its metrics file says ``"available": false`` and why.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline import trec
from pipeline.data import store
from pipeline.encoder import load_encoder
from pipeline.evaluation import evaluate_run
from pipeline.io import atomic_path, write_json, write_text
from pipeline.params import SPLITS, Params, load_params
from pipeline.retrieval import Encoder, dense_run
from pipeline.stages import run_stage
from pipeline.stages.encoder import ENCODER_DIR

log = logging.getLogger(__name__)


def systems(params: Params) -> dict[str, tuple[Encoder, Encoder]]:
    """System name → (query encoder, document encoder)."""
    model, tokenizer = load_encoder(ENCODER_DIR)
    base = Encoder(model, tokenizer, params.encoder.batch_size, params.encoder.max_length)
    return {"zeroshot": (base, base)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("split", choices=SPLITS)
    split = parser.parse_args().split
    params = load_params()
    runs_dir = Path("runs") / split
    metrics_path = Path("metrics/eval") / f"{split}.json"
    info = store.manifest()
    if split not in info["splits"]:
        reason = info["unavailable"].get(split, "not prepared")
        log.warning("skipping %s: %s", split, reason)
        with atomic_path(runs_dir, is_dir=True) as tmp:
            write_text(tmp / "SKIPPED", reason + "\n")
        write_json(metrics_path, {"split": split, "lang": params.lang, "available": False, "reason": reason})
        return
    coll = store.read_collection(split)
    queries = list(coll.queries.itertuples(index=False, name=None))
    docs = list(coll.docs.itertuples(index=False, name=None))
    results: dict = {"split": split, "lang": params.lang, "available": True}
    with atomic_path(runs_dir, is_dir=True) as tmp:
        for name, (query_encoder, doc_encoder) in systems(params).items():
            run = dense_run(query_encoder, doc_encoder, queries, docs, params.evaluate.depth)
            trec.write_run(tmp / f"{name}.run", run, tag=name)
            results[name] = evaluate_run(coll.qrels_path, tmp / f"{name}.run", params.evaluate.depth)
            log.info("%s %s AP=%.4f", split, name, results[name]["AP"])
    write_json(metrics_path, results)


if __name__ == "__main__":
    run_stage(main)
