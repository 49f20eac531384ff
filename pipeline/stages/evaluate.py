"""Stages ``evaluate_baselines@<split>`` and ``evaluate@<split>``: TREC runs and AP / nDCG@10 / R@100 on one split.

Systems: ``zeroshot`` (the encoder on both sides), ``teacher`` (the English teacher on both sides),
``student`` (teacher queries, student documents), and the NMT baselines ``nmt_bm25`` / ``nmt_teacher`` over
documents translated into English (see :func:`pipeline.retrieval.system_runs`); ``evaluate.scoring`` is
``dense`` (cosine of mean-pooled embeddings) or ``maxsim`` (ColBERT-style late interaction over token states).

The systems that do not depend on the bitext are evaluated by ``evaluate_baselines`` (``runs/baselines/<split>``,
``metrics/baselines/<split>.json``), so an ``aug`` switch re-runs only the student's evaluation: ``evaluate``
writes the student's run (``runs/<split>/student.run``) and scores (``metrics/eval/<split>.json``). Names, flags
and ``ir_measures`` signatures go to the ``.info.json`` file beside each (:func:`pipeline.io.write_metrics`).

Usage: ``python -m pipeline.stages.evaluate [--baselines] <split>``. A split the language cannot serve (e.g.
``in_domain`` for a UDHR-only language) is skipped by design: its metrics file says ``"available": false`` and why.
"""

from __future__ import annotations

import argparse
import logging

from pipeline import paths, trec
from pipeline.data import store
from pipeline.evaluation import evaluate_run
from pipeline.io import DataFileError, atomic_path, read_tsv, write_metrics
from pipeline.params import load_params
from pipeline.retrieval import BASELINES, system_runs
from pipeline.stages import SKIPPED, run_stage, write_skipped

log = logging.getLogger(__name__)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baselines", action="store_true", help="evaluate the systems that do not use the bitext")
    parser.add_argument("split", choices=paths.SPLITS)
    args = parser.parse_args()
    split = args.split
    params = load_params()
    runs_dir = paths.runs_dir(split, baselines=args.baselines)
    metrics_path = paths.eval_metrics(split, baselines=args.baselines)
    info = store.manifest()
    if split not in info["splits"]:
        reason = info["unavailable"].get(split, "not prepared")
        log.warning("skipping %s: %s", split, reason)
        write_skipped(reason, runs_dir)
        write_metrics(metrics_path, {"split": split, "lang": params.lang, "available": False, "reason": reason})
        return
    coll = store.read_collection(split)
    queries = list(coll.queries.itertuples(index=False, name=None))
    docs = list(coll.docs.itertuples(index=False, name=None))
    results: dict = {"split": split, "lang": params.lang, "available": True}
    model_dirs = {"encoder": paths.ENCODER_DIR, "teacher": paths.TEACHER_DIR}
    nmt_docs = None
    if args.baselines:
        systems: tuple[str, ...] = BASELINES
        nmt_path = paths.NMT_DIR / f"{split}.tsv"
        if nmt_path.exists():
            nmt = read_tsv(nmt_path, ("docid", "text"))
            if list(nmt["docid"]) != list(coll.docs["docid"]):
                raise DataFileError(f"{nmt_path}: document ids differ from {split}/docs.tsv; re-run translate_docs")
            nmt_docs = list(nmt.itertuples(index=False, name=None))
    else:
        systems = ("student",)
        if not (paths.STUDENT_DIR / SKIPPED).exists():
            model_dirs["student"] = paths.STUDENT_DIR
    runs = system_runs(
        model_dirs,
        queries,
        docs,
        nmt_docs,
        scoring=params.evaluate.scoring,
        depth=params.evaluate.depth,
        batch_size=params.encoder.batch_size,
        max_length=params.encoder.max_length,
        systems=systems,
    )
    with atomic_path(runs_dir, is_dir=True) as tmp:
        for name, run in runs.items():
            trec.write_run(tmp / f"{name}.run", run, tag=name)
            results[name] = evaluate_run(coll.qrels_path, tmp / f"{name}.run", params.evaluate.depth)
            log.info("%s %s AP=%.4f", split, name, results[name]["AP"])
    write_metrics(metrics_path, results)


if __name__ == "__main__":
    run_stage(main)
