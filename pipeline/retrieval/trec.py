"""TREC run and qrels files.

* run:   ``qid Q0 docid rank score tag`` — trec_eval ignores ``rank`` and re-sorts by score, breaking ties
  by docid, so :class:`Ranker` writes strictly decreasing scores with ties broken here,
  deterministically (by docid, ascending), and :func:`write_run` refuses non-decreasing scores.
* qrels: ``qid 0 docid rel``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from pipeline.io import DataFileError, atomic_path, read_lines

Run = dict[str, list[tuple[str, float]]]  # qid -> [(docid, score)] in rank order
Qrels = dict[str, dict[str, int]]  # qid -> {docid: rel}


class Ranker:
    """Ranks the documents of one collection by score, ties broken by docid (ascending).

    The docid order is computed once per collection, not once per query. Scores are made strictly decreasing
    (tied documents get their score minus a tiny, rank-ordered epsilon), so any TREC tool ranks them in exactly
    this order.
    """

    def __init__(self, doc_ids: list[str]):
        self.doc_ids = list(doc_ids)
        self._docid_rank = np.argsort(np.argsort(np.array(self.doc_ids, dtype=object)))

    def rank(self, scores: np.ndarray, depth: int) -> list[tuple[str, float]]:
        """Top-``depth`` documents for one query's score vector."""
        if len(scores) != len(self.doc_ids):
            raise ValueError(f"{len(scores)} scores for {len(self.doc_ids)} documents")
        scores = np.asarray(scores, dtype=np.float64)
        # lexsort: last key is primary → sort by -score, then by docid rank.
        order = np.lexsort((self._docid_rank, -scores))[:depth]
        ranked: list[tuple[str, float]] = []
        previous = np.inf
        for i, raw in zip(order.tolist(), scores[order].tolist(), strict=True):
            score = round(raw, 6)
            if score >= previous:
                score = round(previous - 1e-6, 6)
            ranked.append((self.doc_ids[i], score))
            previous = score
        return ranked


def rank_documents(scores: np.ndarray, doc_ids: list[str], depth: int) -> list[tuple[str, float]]:
    """Top-``depth`` documents for one query's score vector, ties broken by docid (:class:`Ranker`)."""
    return Ranker(doc_ids).rank(scores, depth)


def write_run(path: Path | str, run: Mapping[str, list[tuple[str, float]]], tag: str) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for qid in sorted(run):
            previous = np.inf
            for rank, (docid, score) in enumerate(run[qid], start=1):
                if not score < previous:
                    raise ValueError(f"run for {qid}: scores must strictly decrease (rank {rank}, {docid})")
                previous = score
                fh.write(f"{qid} Q0 {docid} {rank} {score:.6f} {tag}\n")


def read_run(path: Path | str) -> Run:
    run: Run = {}
    for lineno, fields in _rows(path, 6):
        qid, _, docid, _, score, _ = fields
        try:
            run.setdefault(qid, []).append((docid, float(score)))
        except ValueError:
            raise DataFileError(f"{path}:{lineno}: score {score!r} is not a number") from None
    return run


def write_qrels(path: Path | str, qrels: Iterable[tuple[str, str, int]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for qid, docid, rel in sorted(qrels):
            fh.write(f"{qid} 0 {docid} {int(rel)}\n")


def read_qrels(path: Path | str) -> Qrels:
    qrels: Qrels = {}
    for lineno, fields in _rows(path, 4):
        qid, _, docid, rel = fields
        try:
            qrels.setdefault(qid, {})[docid] = int(rel)
        except ValueError:
            raise DataFileError(f"{path}:{lineno}: relevance {rel!r} is not an integer") from None
    if not qrels:
        raise DataFileError(f"{path} has no qrels")
    return qrels


def _rows(path: Path | str, n_fields: int):
    for lineno, line in read_lines(path):
        fields = line.split()
        if len(fields) != n_fields:
            raise DataFileError(f"{path}:{lineno}: expected {n_fields} fields, got {len(fields)}: {line!r}")
        yield lineno, fields


def file_hash(path: Path | str) -> str:
    """Short content hash recorded in metric signatures (which qrels / run produced a score)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
