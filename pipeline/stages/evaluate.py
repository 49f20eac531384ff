"""Stages ``evaluate_baselines@<split>`` and ``evaluate@<split>``: TREC runs and AP / nDCG@10 / R@100 on one split.

Systems: ``zeroshot`` (the encoder on both sides), ``teacher`` (the English teacher on both sides),
``student`` (teacher queries, student documents), and the NMT baselines ``nmt_bm25`` / ``nmt_teacher`` over
documents translated into English (see :func:`system_runs`); ``evaluate.scoring`` is ``dense`` (cosine of mean-pooled
embeddings) or ``maxsim`` (ColBERT-style late interaction over token states).

The systems that do not depend on the bitext are evaluated by ``evaluate_baselines`` (``runs/baselines/<split>``,
``metrics/baselines/<split>.json``), so an ``aug`` switch re-runs only the student's evaluation; ``evaluate``
adds the student (``runs/<split>/student.run``) and writes every system's scores to ``metrics/eval/<split>.json``.

Usage: ``python -m pipeline.stages.evaluate [--baselines] <split>``. A split the language cannot serve (e.g.
``in_domain`` for a UDHR-only language) is skipped by design: its metrics file says ``"available": false`` and why.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline import retrieval, trec
from pipeline.data import store
from pipeline.encoder import load_encoder
from pipeline.evaluation import evaluate_run
from pipeline.io import DataFileError, atomic_path, read_json, read_tsv, write_json
from pipeline.model import PASSAGE_PREFIX, QUERY_PREFIX
from pipeline.params import SPLITS, Params, load_params
from pipeline.retrieval import Encoder
from pipeline.stages import SKIPPED, run_stage, write_skipped
from pipeline.stages.distill import STUDENT_DIR
from pipeline.stages.encoder import ENCODER_DIR
from pipeline.stages.teacher import TEACHER_DIR
from pipeline.stages.translate_docs import NMT_DIR

log = logging.getLogger(__name__)


MODEL_DIRS = {"encoder": ENCODER_DIR, "teacher": TEACHER_DIR, "student": STUDENT_DIR}


BASELINES = ("zeroshot", "teacher", "nmt_bm25", "nmt_teacher")


def system_runs(
    params: Params, queries: list[tuple[str, str]], docs: list[tuple[str, str]], nmt_docs: list[tuple[str, str]] | None,
    systems: tuple[str, ...] = (*BASELINES, "student"),
) -> dict[str, trec.Run]:
    """One TREC run per system (each model encodes each text set once).

    ========== ============================ ===========================================
    system     English queries encoded by   documents
    ========== ============================ ===========================================
    zeroshot   encoder                      target language, encoder
    teacher    teacher                      target language, teacher
    student    teacher                      target language, student (OPTICAL)
    nmt_bm25   BM25 (English analyzer)      translated into English by the MT model
    nmt_teacher teacher                     translated into English, teacher
    ========== ============================ ===========================================

    Only ``systems`` are run. ``student`` is left out when the language has no bitext; the ``nmt_*`` systems when it
    has no MT model.
    """
    qids, qtexts = map(list, zip(*queries))
    doc_ids, dtexts = map(list, zip(*docs))
    scoring, depth = params.evaluate.scoring, params.evaluate.depth
    search = retrieval.search if scoring == "dense" else retrieval.late_interaction_search
    has_student = not (STUDENT_DIR / SKIPPED).exists()

    encoders: dict[str, Encoder] = {}  # each model is loaded once (the teacher encodes up to three text sets)

    def represent(model_name: str, texts: list[str], prefix: str, what: str):
        if model_name not in encoders:
            model, tokenizer = load_encoder(MODEL_DIRS[model_name])
            encoders[model_name] = Encoder(model, tokenizer, params.encoder.batch_size, params.encoder.max_length)
        return encoders[model_name].represent(texts, prefix, scoring, f"{model_name} {what}")

    teacher_q = represent("teacher", qtexts, QUERY_PREFIX, "queries")
    runs = {}
    if "zeroshot" in systems:
        runs["zeroshot"] = search(
            represent("encoder", qtexts, QUERY_PREFIX, "queries"),
            represent("encoder", dtexts, PASSAGE_PREFIX, "documents"),
            qids, doc_ids, depth,
        )
    if "teacher" in systems:
        runs["teacher"] = search(teacher_q, represent("teacher", dtexts, PASSAGE_PREFIX, "documents"), qids, doc_ids, depth)
    if "student" in systems and has_student:
        runs["student"] = search(teacher_q, represent("student", dtexts, PASSAGE_PREFIX, "documents"), qids, doc_ids, depth)
    if nmt_docs is not None and "nmt_bm25" in systems:
        nmt_ids, nmt_texts = map(list, zip(*nmt_docs))
        runs["nmt_bm25"] = retrieval.bm25_search(qtexts, nmt_texts, qids, nmt_ids, depth)
        runs["nmt_teacher"] = search(
            teacher_q, represent("teacher", nmt_texts, PASSAGE_PREFIX, "translated documents"), qids, nmt_ids, depth
        )
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baselines", action="store_true", help="evaluate the systems that do not use the bitext")
    parser.add_argument("split", choices=SPLITS)
    args = parser.parse_args()
    split = args.split
    params = load_params()
    runs_dir = Path("runs/baselines" if args.baselines else "runs") / split
    metrics_path = Path("metrics/baselines" if args.baselines else "metrics/eval") / f"{split}.json"
    info = store.manifest()
    if split not in info["splits"]:
        reason = info["unavailable"].get(split, "not prepared")
        log.warning("skipping %s: %s", split, reason)
        write_skipped(reason, runs_dir)
        write_json(metrics_path, {"split": split, "lang": params.lang, "available": False, "reason": reason})
        return
    coll = store.read_collection(split)
    queries = list(coll.queries.itertuples(index=False, name=None))
    docs = list(coll.docs.itertuples(index=False, name=None))
    results: dict = {"split": split, "lang": params.lang, "available": True}
    nmt_docs = None
    if args.baselines:
        systems: tuple[str, ...] = BASELINES
        nmt_path = NMT_DIR / f"{split}.tsv"
        if nmt_path.exists():
            nmt = read_tsv(nmt_path, ("docid", "text"))
            if list(nmt["docid"]) != list(coll.docs["docid"]):
                raise DataFileError(f"{nmt_path}: document ids differ from {split}/docs.tsv; re-run translate_docs")
            nmt_docs = list(nmt.itertuples(index=False, name=None))
    else:
        systems = ("student",)
        baselines = read_json(Path("metrics/baselines") / f"{split}.json")
        if baselines.get("split") != split or baselines.get("lang") != params.lang:
            raise DataFileError(f"metrics/baselines/{split}.json is for another split or language: re-run evaluate_baselines@{split}")
        results.update({k: v for k, v in baselines.items() if k in BASELINES})
    with atomic_path(runs_dir, is_dir=True) as tmp:
        for name, run in system_runs(params, queries, docs, nmt_docs, systems).items():
            trec.write_run(tmp / f"{name}.run", run, tag=name)
            results[name] = evaluate_run(coll.qrels_path, tmp / f"{name}.run", params.evaluate.depth)
            log.info("%s %s AP=%.4f", split, name, results[name]["AP"])
    write_json(metrics_path, results)


if __name__ == "__main__":
    run_stage(main)
