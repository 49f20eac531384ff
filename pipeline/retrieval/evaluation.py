"""Retrieval effectiveness with ``ir_measures`` — every score carries the signature that produced it.

Measures are never hand-rolled. AP divides by all relevant documents, so the run depth changes MAP: it is
fixed by ``evaluate.depth`` and recorded. ``ir_measures`` scores a query that is missing from the run as
0 (trec_eval without ``-c`` would drop it); our runs contain every query, and the signature records the
number of judged queries and of queries in the run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import ir_measures
from ir_measures import AP, R, nDCG

from pipeline.config import paths
from pipeline.io import merge, read_metrics
from pipeline.retrieval import trec

MEASURES = (AP, nDCG @ 10, R @ 100)
#: Names used as metric keys (stable, readable in ``dvc metrics show``).
MEASURE_NAMES = {AP: "AP", nDCG @ 10: "nDCG@10", R @ 100: "R@100"}


def evaluate_run(qrels_path: Path | str, run_path: Path | str, depth: int) -> dict:
    """Mean AP / nDCG@10 / R@100 over the judged queries, with a signature of the settings."""
    qrels = trec.read_qrels(qrels_path)
    run = trec.read_run(run_path)
    deepest = max((len(v) for v in run.values()), default=0)
    if deepest > depth:
        raise ValueError(f"{run_path}: run has {deepest} documents for a query, above the fixed depth {depth}")
    per_query = {name: {} for name in MEASURE_NAMES.values()}
    for m in ir_measures.iter_calc(MEASURES, _qrels_iter(qrels), _run_iter(run)):
        per_query[MEASURE_NAMES[m.measure]][m.query_id] = m.value
    # Judged queries absent from the run score 0 (ir_measures' convention, stated in the signature).
    scores = {
        name: round(sum(values.get(qid, 0.0) for qid in qrels) / len(qrels), 4) for name, values in per_query.items()
    }
    scores["signature"] = {
        "measures": list(MEASURE_NAMES.values()),
        "depth": depth,
        "qrels": trec.file_hash(qrels_path),
        "run": trec.file_hash(run_path),
        "judged_queries": len(qrels),
        "queries_in_run": len(set(run) & set(qrels)),
        "missing_queries_score": 0,
        "ir_measures": ir_measures.__version__,
    }
    return scores


def per_query_ap(qrels_path: Path | str, run_path: Path | str) -> dict[str, float]:
    """Per-query AP (for significance tests); judged queries missing from the run get 0."""
    qrels = trec.read_qrels(qrels_path)
    values = {
        m.query_id: m.value for m in ir_measures.iter_calc([AP], _qrels_iter(qrels), _run_iter(trec.read_run(run_path)))
    }
    return {qid: values.get(qid, 0.0) for qid in sorted(qrels)}


def robustness(shifted_ap: float, in_domain_ap: float) -> float | None:
    """Shifted-domain AP / in-domain AP (None when in-domain AP is 0)."""
    return round(shifted_ap / in_domain_ap, 4) if in_domain_ap > 0 else None


def _qrels_iter(qrels: trec.Qrels):
    for qid, docs in qrels.items():
        for docid, rel in docs.items():
            yield ir_measures.Qrel(qid, docid, rel)


def _run_iter(run: trec.Run):
    for qid, ranked in run.items():
        for docid, score in ranked:
            yield ir_measures.ScoredDoc(qid, docid, score)


def score_run(run: trec.Run, qrels: list[tuple[str, str, int]], depth: int) -> dict:
    """Score an in-memory run against in-memory qrels (dev sets inside training stages)."""
    with tempfile.TemporaryDirectory() as tmp:
        qrels_path, run_path = Path(tmp) / "qrels.txt", Path(tmp) / "dev.run"
        trec.write_qrels(qrels_path, qrels)
        trec.write_run(run_path, run, tag="dev")
        scores = evaluate_run(qrels_path, run_path, depth)
    scores.pop("signature")
    return scores


def split_metrics(split: str) -> dict:
    """Every system's scores on ``split`` as the pipeline wrote them: the baselines' metrics file merged with the
    student's (``metrics/baselines/<split>.json``, ``metrics/eval/<split>.json``, each with its info file)."""
    return merge(
        read_metrics(paths.eval_metrics(split, baselines=True)),
        read_metrics(paths.eval_metrics(split, baselines=False)),
    )
