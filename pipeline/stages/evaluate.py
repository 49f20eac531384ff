"""Stage ``evaluate@<split>``: every system's TREC run and AP / nDCG@10 / R@100 on one split.

Systems: ``zeroshot`` (the encoder on both sides), ``teacher`` (the English teacher on both sides) and
``student`` (teacher queries, student documents); ``evaluate.scoring`` is ``dense`` (cosine of mean-pooled
embeddings) or ``maxsim`` (ColBERT-style late interaction over token states).

Usage: ``python -m pipeline.stages.evaluate <split>``. Writes ``runs/<split>/<system>.run`` and
``metrics/eval/<split>.json``. A split the language cannot serve (e.g. ``in_domain`` for a UDHR-only
language) is skipped by design: its metrics file says ``"available": false`` and why.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline import retrieval, trec
from pipeline.data import store
from pipeline.encoder import load_encoder
from pipeline.evaluation import evaluate_run
from pipeline.io import atomic_path, write_json, write_text
from pipeline.params import SPLITS, Params, load_params
from pipeline.model import PASSAGE_PREFIX, QUERY_PREFIX
from pipeline.retrieval import Encoder
from pipeline.stages import run_stage
from pipeline.stages.distill import SKIPPED, STUDENT_DIR
from pipeline.stages.encoder import ENCODER_DIR
from pipeline.stages.teacher import TEACHER_DIR

log = logging.getLogger(__name__)


#: System name → (model that encodes English queries, model that encodes target-language documents).
SYSTEMS = {
    "zeroshot": ("encoder", "encoder"),  # the multilingual encoder as it is
    "teacher": ("teacher", "teacher"),  # the English teacher, zero-shot cross-lingual
    "student": ("teacher", "student"),  # OPTICAL: teacher queries, distilled student documents
}
MODEL_DIRS = {"encoder": ENCODER_DIR, "teacher": TEACHER_DIR, "student": STUDENT_DIR}


def system_runs(params: Params, queries: list[tuple[str, str]], docs: list[tuple[str, str]]) -> dict[str, trec.Run]:
    """One run per system; each model encodes each side once (teacher queries serve two systems)."""
    qids, qtexts = map(list, zip(*queries))
    doc_ids, dtexts = map(list, zip(*docs))
    scoring, depth = params.evaluate.scoring, params.evaluate.depth
    systems = dict(SYSTEMS)
    if (STUDENT_DIR / SKIPPED).exists():  # UDHR-only language: no bitext, no student
        del systems["student"]
    reps: dict[tuple[str, str], object] = {}
    for model_name in sorted({m for pair in systems.values() for m in pair}):
        model, tokenizer = load_encoder(MODEL_DIRS[model_name])
        enc = Encoder(model, tokenizer, params.encoder.batch_size, params.encoder.max_length)
        if any(q == model_name for q, _ in systems.values()):
            reps[model_name, "q"] = enc.represent(qtexts, QUERY_PREFIX, scoring, f"{model_name} queries")
        if any(d == model_name for _, d in systems.values()):
            reps[model_name, "d"] = enc.represent(dtexts, PASSAGE_PREFIX, scoring, f"{model_name} documents")
    search = retrieval.search if scoring == "dense" else retrieval.late_interaction_search
    return {name: search(reps[q, "q"], reps[d, "d"], qids, doc_ids, depth) for name, (q, d) in systems.items()}


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
        for name, run in system_runs(params, queries, docs).items():
            trec.write_run(tmp / f"{name}.run", run, tag=name)
            results[name] = evaluate_run(coll.qrels_path, tmp / f"{name}.run", params.evaluate.depth)
            log.info("%s %s AP=%.4f", split, name, results[name]["AP"])
    write_json(metrics_path, results)


if __name__ == "__main__":
    run_stage(main)
