"""Dense retrieval: exact cosine search over L2-normalised embeddings → TREC runs.

A *system* is a pair of encoders, one for English queries and one for target-language documents
(zero-shot: the same encoder on both sides; OPTICAL: teacher for queries, student for documents).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline import trec
from pipeline.model import PASSAGE_PREFIX, QUERY_PREFIX, encode


@dataclass
class Encoder:
    """A loaded encoder with its tokenizer and encoding settings."""

    model: object
    tokenizer: object
    batch_size: int = 64
    max_length: int = 128

    def encode(self, texts: list[str], prefix: str, desc: str) -> np.ndarray:
        return encode(
            self.model,
            self.tokenizer,
            texts,
            prefix=prefix,
            batch_size=self.batch_size,
            max_length=self.max_length,
            desc=desc,
        )


def search(
    query_emb: np.ndarray, doc_emb: np.ndarray, qids: list[str], doc_ids: list[str], depth: int
) -> trec.Run:
    """Exact inner-product search (cosine for normalised rows), top ``depth`` per query."""
    if query_emb.shape[1] != doc_emb.shape[1]:
        raise ValueError(f"query dim {query_emb.shape[1]} != document dim {doc_emb.shape[1]}")
    if len(qids) != len(query_emb) or len(doc_ids) != len(doc_emb):
        raise ValueError("ids and embeddings differ in length")
    scores = query_emb @ doc_emb.T
    return {qid: trec.rank_documents(scores[i], doc_ids, depth) for i, qid in enumerate(qids)}


def dense_run(
    query_encoder: Encoder,
    doc_encoder: Encoder,
    queries: list[tuple[str, str]],
    docs: list[tuple[str, str]],
    depth: int,
) -> trec.Run:
    """Encode English queries (``query: ``) and documents (``passage: ``), then search."""
    qids, qtexts = zip(*queries)
    doc_ids, dtexts = zip(*docs)
    q = query_encoder.encode(list(qtexts), QUERY_PREFIX, "queries")
    d = doc_encoder.encode(list(dtexts), PASSAGE_PREFIX, "documents")
    return search(q, d, list(qids), list(doc_ids), depth)
