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

from pipeline.config.conditions import SCORINGS
from pipeline.retrieval import trec
from pipeline.retrieval.embed import PASSAGE_PREFIX, QUERY_PREFIX, Encoder
from pipeline.retrieval.encoders import load_encoder
from pipeline.retrieval.evaluation import score_run


def search(query_emb: np.ndarray, doc_emb: np.ndarray, qids: list[str], doc_ids: list[str], depth: int) -> trec.Run:
    """Exact inner-product search (cosine for normalised rows), top ``depth`` per query."""
    if query_emb.shape[1] != doc_emb.shape[1]:
        raise ValueError(f"query dim {query_emb.shape[1]} != document dim {doc_emb.shape[1]}")
    if len(qids) != len(query_emb) or len(doc_ids) != len(doc_emb):
        raise ValueError("ids and embeddings differ in length")
    scores = query_emb @ doc_emb.T
    ranker = trec.Ranker(doc_ids)
    return {qid: ranker.rank(scores[i], depth) for i, qid in enumerate(qids)}


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
    ranker = trec.Ranker(doc_ids)
    return {qid: ranker.rank(scores[i], depth) for i, qid in enumerate(qids)}


def bm25_search(
    queries: list[str],
    docs: list[str],
    qids: list[str],
    doc_ids: list[str],
    depth: int,
    *,
    k1: float,
    b: float,
) -> trec.Run:
    """BM25 (``bm25s``, Lucene variant; ``evaluate.bm25_k1`` / ``bm25_b``) over English text with English
    stopwords and the Snowball stemmer. Every document is scored, so ties are broken like all runs."""
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    tokenize = partial(bm25s.tokenize, stopwords="en", stemmer=stemmer, show_progress=False)
    corpus = tokenize(docs)
    if not corpus.vocab:  # every document is empty after stopwording (e.g. output of a failed MT model)
        return {qid: trec.Ranker(doc_ids).rank(np.zeros(len(docs)), depth) for qid in qids}
    retriever = bm25s.BM25(k1=k1, b=b)
    retriever.index(corpus, show_progress=False)
    query_tokens = tokenize(queries, return_ids=False)
    ranker = trec.Ranker(doc_ids)
    return {
        qid: ranker.rank(retriever.get_scores(tokens), depth) for qid, tokens in zip(qids, query_tokens, strict=True)
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
BASELINES = ("zeroshot", "teacher", "teacher_en", "nmt_bm25", "nmt_teacher")
SYSTEMS = (*BASELINES, "student")


@dataclass
class SplitTexts:
    """What the systems search on one split: English queries per form, target-language documents and, where they
    exist, the documents' English originals (``teacher_en``) and their machine translations (``nmt_*``)."""

    queries: dict[str, list[tuple[str, str]]]  # query form -> (qid, text)
    docs: list[tuple[str, str]]
    docs_en: list[tuple[str, str]] | None = None
    nmt_docs: list[tuple[str, str]] | None = None


class Representations:
    """Each model represents each distinct text once, whichever splits and query forms hold it (the splits of the
    topical test share their distractor documents): :meth:`add` every text first, then :meth:`encode`."""

    def __init__(self, model_dirs: Mapping[str, Path], *, scoring: str, batch_size: int, max_length: int):
        if scoring not in SCORINGS:
            raise ValueError(f"unknown scoring {scoring!r}; expected one of {SCORINGS}")
        self.model_dirs, self.scoring = model_dirs, scoring
        self.batch_size, self.max_length = batch_size, max_length
        self._texts: dict[tuple[str, str], dict[str, int]] = {}  # (model, prefix) -> text -> row
        self._reps: dict[tuple[str, str], object] = {}

    def add(self, model: str, prefix: str, texts: list[str]) -> None:
        index = self._texts.setdefault((model, prefix), {})
        for text in texts:
            index.setdefault(text, len(index))

    def encode(self) -> dict[str, int]:
        """Encode every added text, one model at a time (each loaded once); returns the texts encoded per model."""
        counts: dict[str, int] = {}
        for model in dict.fromkeys(m for m, _ in self._texts):
            loaded, tokenizer = load_encoder(self.model_dirs[model])
            encoder = Encoder(loaded, tokenizer, self.batch_size, self.max_length)
            for (name, prefix), index in self._texts.items():
                if name == model:
                    what = "queries" if prefix == QUERY_PREFIX else "documents"
                    self._reps[name, prefix] = encoder.represent(list(index), prefix, self.scoring, f"{model} {what}")
                    counts[model] = counts.get(model, 0) + len(index)
            del loaded, encoder
        return counts

    def get(self, model: str, prefix: str, texts: list[str]):
        """The representations of ``texts`` (dense rows or per-token arrays), in their order."""
        rows = [self._texts[model, prefix][t] for t in texts]
        reps = self._reps[model, prefix]
        return reps[rows] if isinstance(reps, np.ndarray) else [reps[i] for i in rows]


def _pairs(splits: Mapping[str, SplitTexts], systems: tuple[str, ...], models: Mapping[str, Path]):
    """(split, system, query model, document model, documents) of every dense system to run."""
    for split, texts in splits.items():
        sides = {
            "zeroshot": ("encoder", "encoder", texts.docs),
            "teacher": ("teacher", "teacher", texts.docs),
            "teacher_en": ("teacher", "teacher", texts.docs_en),
            "student": ("teacher", "student", texts.docs),
            "nmt_teacher": ("teacher", "teacher", texts.nmt_docs),
        }
        for system, (query_model, doc_model, docs) in sides.items():
            if system in systems and docs is not None and doc_model in models:
                yield split, system, query_model, doc_model, docs


def system_runs(
    model_dirs: Mapping[str, Path],
    splits: Mapping[str, SplitTexts],
    *,
    scoring: str,
    depth: int,
    batch_size: int,
    max_length: int,
    systems: tuple[str, ...],
    bm25: dict[str, float],
) -> tuple[dict[str, dict[str, dict[str, trec.Run]]], dict[str, int]]:
    """One TREC run per split × query form × system, and the texts each model encoded (each once).

    ============ ============================ ===================================================
    system       English queries encoded by   documents
    ============ ============================ ===================================================
    zeroshot     encoder                      target language, encoder
    teacher      teacher                      target language, teacher (zero-shot cross-lingual)
    teacher_en   teacher                      their English originals, teacher (the monolingual ceiling)
    student      teacher                      target language, student (OPTICAL)
    nmt_bm25     BM25 (English analyzer)      translated into English by the MT model
    nmt_teacher  teacher                      translated into English, teacher
    ============ ============================ ===================================================

    ``bm25``: ``k1`` and ``b`` of ``nmt_bm25``. ``model_dirs`` maps ``encoder``/``teacher``/``student`` to model
    directories; a system whose model or documents
    are missing (``student`` for a language without bitext, ``teacher_en`` for documents without English, ``nmt_*``
    without translations) is left out. ``scoring``: ``dense`` (cosine of mean-pooled embeddings) or ``maxsim``.
    Returns ``runs[split][form][system]``.
    """
    reps = Representations(model_dirs, scoring=scoring, batch_size=batch_size, max_length=max_length)
    pairs = list(_pairs(splits, systems, model_dirs))
    for split, _, query_model, doc_model, docs in pairs:
        for rows in splits[split].queries.values():
            reps.add(query_model, QUERY_PREFIX, [t for _, t in rows])
        reps.add(doc_model, PASSAGE_PREFIX, [t for _, t in docs])
    encoded = reps.encode()
    run_search = search if scoring == "dense" else late_interaction_search
    runs: dict[str, dict[str, dict[str, trec.Run]]] = {s: {f: {} for f in t.queries} for s, t in splits.items()}
    for split, system, query_model, doc_model, docs in pairs:
        doc_ids, doc_texts = map(list, zip(*docs, strict=True))
        d = reps.get(doc_model, PASSAGE_PREFIX, doc_texts)
        for form, rows in splits[split].queries.items():
            qids, qtexts = map(list, zip(*rows, strict=True))
            runs[split][form][system] = run_search(reps.get(query_model, QUERY_PREFIX, qtexts), d, qids, doc_ids, depth)
    for split, texts in splits.items():
        if "nmt_bm25" in systems and texts.nmt_docs is not None:
            nmt_ids, nmt_texts = map(list, zip(*texts.nmt_docs, strict=True))
            for form, rows in texts.queries.items():
                qids, qtexts = map(list, zip(*rows, strict=True))
                runs[split][form]["nmt_bm25"] = bm25_search(qtexts, nmt_texts, qids, nmt_ids, depth, **bm25)
    return runs, encoded
