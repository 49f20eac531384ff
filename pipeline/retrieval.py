"""Dense retrieval: exact cosine search over L2-normalised embeddings → TREC runs.

A *system* is a pair of encoders, one for English queries and one for target-language documents
(zero-shot: the same encoder on both sides; OPTICAL: teacher for queries, student for documents).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from pipeline import trec
from pipeline.encoder import load_encoder
from pipeline.evaluation import score_run
from pipeline.model import PASSAGE_PREFIX, QUERY_PREFIX, encode, encode_tokens

SCORINGS = ("dense", "maxsim")


@dataclass
class Encoder:
    """A loaded encoder with its tokenizer and encoding settings."""

    model: object
    tokenizer: object
    batch_size: int
    max_length: int

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

    def encode_tokens(self, texts: list[str], prefix: str, desc: str) -> list[np.ndarray]:
        return encode_tokens(
            self.model,
            self.tokenizer,
            texts,
            prefix=prefix,
            batch_size=self.batch_size,
            max_length=self.max_length,
            desc=desc,
        )

    def represent(self, texts: list[str], prefix: str, scoring: str, desc: str):
        """Pooled embeddings (``dense``) or per-token states (``maxsim``)."""
        if scoring == "dense":
            return self.encode(texts, prefix, desc)
        if scoring == "maxsim":
            return self.encode_tokens(texts, prefix, desc)
        raise ValueError(f"unknown scoring {scoring!r}; expected one of {SCORINGS}")


def search(query_emb: np.ndarray, doc_emb: np.ndarray, qids: list[str], doc_ids: list[str], depth: int) -> trec.Run:
    """Exact inner-product search (cosine for normalised rows), top ``depth`` per query."""
    if query_emb.shape[1] != doc_emb.shape[1]:
        raise ValueError(f"query dim {query_emb.shape[1]} != document dim {doc_emb.shape[1]}")
    if len(qids) != len(query_emb) or len(doc_ids) != len(doc_emb):
        raise ValueError("ids and embeddings differ in length")
    scores = query_emb @ doc_emb.T
    return {qid: trec.rank_documents(scores[i], doc_ids, depth) for i, qid in enumerate(qids)}


def maxsim_scores(query_tokens: list[np.ndarray], doc_tokens: list[np.ndarray], chunk: int = 256) -> np.ndarray:
    """ColBERT-style late interaction: Σ over query tokens of the max cosine over document tokens.

    Returns [n_queries, n_docs]. Documents are padded into chunks of ``chunk`` (padding scores -inf).
    """
    dim = query_tokens[0].shape[1]
    scores = np.zeros((len(query_tokens), len(doc_tokens)), dtype=np.float32)
    for start in range(0, len(doc_tokens), chunk):
        block = doc_tokens[start : start + chunk]
        longest = max(len(d) for d in block)
        padded = np.zeros((len(block), max(longest, 1), dim), dtype=np.float32)
        valid = np.zeros((len(block), max(longest, 1)), dtype=bool)
        for j, d in enumerate(block):
            padded[j, : len(d)] = d
            valid[j, : len(d)] = True
        for i, q in enumerate(query_tokens):
            sim = np.einsum("qh,dlh->dql", q, padded)  # [docs, q tokens, d tokens]
            sim = np.where(valid[:, None, :], sim, -np.inf)
            best = sim.max(axis=2)
            scores[i, start : start + len(block)] = np.where(np.isfinite(best), best, 0.0).sum(axis=1)
    return scores


def late_interaction_search(
    query_tokens: list[np.ndarray], doc_tokens: list[np.ndarray], qids: list[str], doc_ids: list[str], depth: int
) -> trec.Run:
    scores = maxsim_scores(query_tokens, doc_tokens)
    return {qid: trec.rank_documents(scores[i], doc_ids, depth) for i, qid in enumerate(qids)}


def bm25_search(
    queries: list[str],
    docs: list[str],
    qids: list[str],
    doc_ids: list[str],
    depth: int,
    k1: float = 0.9,
    b: float = 0.4,
) -> trec.Run:
    """BM25 (``bm25s``, Lucene variant; Anserini's default k1=0.9, b=0.4) over English text with English
    stopwords and the Snowball stemmer. Every document is scored, so ties are broken like all runs."""
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    tokenize = partial(bm25s.tokenize, stopwords="en", stemmer=stemmer, show_progress=False)
    corpus = tokenize(docs)
    if not corpus.vocab:  # every document is empty after stopwording (e.g. output of a failed MT model)
        return {qid: trec.rank_documents(np.zeros(len(docs)), doc_ids, depth) for qid in qids}
    retriever = bm25s.BM25(k1=k1, b=b)
    retriever.index(corpus, show_progress=False)
    query_tokens = tokenize(queries, return_ids=False)
    return {
        qid: trec.rank_documents(retriever.get_scores(tokens), doc_ids, depth)
        for qid, tokens in zip(qids, query_tokens, strict=True)
    }


def dense_run(
    query_encoder: Encoder,
    doc_encoder: Encoder,
    queries: list[tuple[str, str]],
    docs: list[tuple[str, str]],
    depth: int,
) -> trec.Run:
    """Encode English queries (``query: ``) and documents (``passage: ``), then search."""
    qids, qtexts = zip(*queries, strict=True)
    doc_ids, dtexts = zip(*docs, strict=True)
    q = query_encoder.encode(list(qtexts), QUERY_PREFIX, "queries")
    d = doc_encoder.encode(list(dtexts), PASSAGE_PREFIX, "documents")
    return search(q, d, list(qids), list(doc_ids), depth)


def dev_ap(query_encoder: Encoder, doc_encoder: Encoder, dev, doc_column: str, depth: int) -> dict:
    """AP etc. on a dev set (a DataFrame with ``id``, ``query`` and ``doc_column``): each query's one relevant
    document is the ``doc_column`` side of the same row. The teacher and distill stages score their dev sets with it
    before and after training."""
    queries = list(zip(dev["id"], dev["query"], strict=True))
    docs = list(zip(dev["id"], dev[doc_column], strict=True))
    run = dense_run(query_encoder, doc_encoder, queries, docs, depth)
    return score_run(run, [(i, i, 1) for i in dev["id"]], depth)


#: The systems that do not use the bitext (``evaluate_baselines``); ``student`` is added by ``evaluate``.
BASELINES = ("zeroshot", "teacher", "nmt_bm25", "nmt_teacher")
SYSTEMS = (*BASELINES, "student")


def system_runs(
    model_dirs: Mapping[str, Path],
    queries: list[tuple[str, str]],
    docs: list[tuple[str, str]],
    nmt_docs: list[tuple[str, str]] | None,
    *,
    scoring: str,
    depth: int,
    batch_size: int,
    max_length: int,
    systems: tuple[str, ...] = SYSTEMS,
) -> dict[str, trec.Run]:
    """One TREC run per system (each model is loaded once and encodes each text set once).

    =========== ============================ ===========================================
    system      English queries encoded by   documents
    =========== ============================ ===========================================
    zeroshot    encoder                      target language, encoder
    teacher     teacher                      target language, teacher
    student     teacher                      target language, student (OPTICAL)
    nmt_bm25    BM25 (English analyzer)      translated into English by the MT model
    nmt_teacher teacher                      translated into English, teacher
    =========== ============================ ===========================================

    ``model_dirs`` maps ``encoder``/``teacher``/``student`` to model directories; a system whose model is not
    in it (``student`` for a language without bitext) is left out, and so are the ``nmt_*`` systems when
    ``nmt_docs`` is None (no MT model). ``scoring``: ``dense`` (cosine of mean-pooled embeddings) or ``maxsim``.
    """
    if scoring not in SCORINGS:
        raise ValueError(f"unknown scoring {scoring!r}; expected one of {SCORINGS}")
    qids, qtexts = map(list, zip(*queries, strict=True))
    doc_ids, dtexts = map(list, zip(*docs, strict=True))
    run_search = search if scoring == "dense" else late_interaction_search
    encoders: dict[str, Encoder] = {}

    def represent(model_name: str, texts: list[str], prefix: str, what: str):
        if model_name not in encoders:
            model, tokenizer = load_encoder(model_dirs[model_name])
            encoders[model_name] = Encoder(model, tokenizer, batch_size, max_length)
        return encoders[model_name].represent(texts, prefix, scoring, f"{model_name} {what}")

    teacher_q = represent("teacher", qtexts, QUERY_PREFIX, "queries")
    runs = {}
    if "zeroshot" in systems:
        runs["zeroshot"] = run_search(
            represent("encoder", qtexts, QUERY_PREFIX, "queries"),
            represent("encoder", dtexts, PASSAGE_PREFIX, "documents"),
            qids,
            doc_ids,
            depth,
        )
    if "teacher" in systems:
        teacher_d = represent("teacher", dtexts, PASSAGE_PREFIX, "documents")
        runs["teacher"] = run_search(teacher_q, teacher_d, qids, doc_ids, depth)
    if "student" in systems and "student" in model_dirs:
        student_d = represent("student", dtexts, PASSAGE_PREFIX, "documents")
        runs["student"] = run_search(teacher_q, student_d, qids, doc_ids, depth)
    if nmt_docs is not None and "nmt_bm25" in systems:
        nmt_ids, nmt_texts = map(list, zip(*nmt_docs, strict=True))
        runs["nmt_bm25"] = bm25_search(qtexts, nmt_texts, qids, nmt_ids, depth)
        nmt_d = represent("teacher", nmt_texts, PASSAGE_PREFIX, "translated documents")
        runs["nmt_teacher"] = run_search(teacher_q, nmt_d, qids, nmt_ids, depth)
    return runs
