import numpy as np
import pytest
import pytrec_eval

from pipeline.io import DataFileError
from pipeline.retrieval import trec
from pipeline.retrieval.evaluation import evaluate_run, per_query_ap, robustness
from pipeline.retrieval.search import search


def test_ties_are_broken_by_docid_and_scores_strictly_decrease():
    scores = np.array([0.5, 0.9, 0.5, 0.5, 0.1])
    ranked = trec.rank_documents(scores, ["d3", "d9", "d1", "d2", "d0"], depth=5)
    assert [d for d, _ in ranked] == ["d9", "d1", "d2", "d3", "d0"]
    values = [s for _, s in ranked]
    assert all(a > b for a, b in zip(values, values[1:], strict=False))


def test_depth_cuts_the_ranking():
    ranked = trec.rank_documents(np.arange(10.0), [f"d{i}" for i in range(10)], depth=3)
    assert [d for d, _ in ranked] == ["d9", "d8", "d7"]


def test_run_and_qrels_round_trip(tmp_path):
    run = {"q1": [("a", 0.9), ("b", 0.5)], "q2": [("c", 1.0)]}
    trec.write_run(tmp_path / "r.run", run, tag="sys")
    assert (tmp_path / "r.run").read_text().splitlines()[0] == "q1 Q0 a 1 0.900000 sys"
    assert trec.read_run(tmp_path / "r.run") == run
    trec.write_qrels(tmp_path / "q.txt", [("q2", "c", 1), ("q1", "a", 2)])
    assert trec.read_qrels(tmp_path / "q.txt") == {"q1": {"a": 2}, "q2": {"c": 1}}


def test_write_run_refuses_ties(tmp_path):
    with pytest.raises(ValueError, match="strictly decrease"):
        trec.write_run(tmp_path / "r.run", {"q": [("a", 0.5), ("b", 0.5)]}, tag="x")
    assert not (tmp_path / "r.run").exists()


def test_malformed_trec_files_name_the_file(tmp_path):
    bad = tmp_path / "bad.qrels"
    bad.write_text("q1 0 d1\n")
    with pytest.raises(DataFileError, match="bad.qrels:1"):
        trec.read_qrels(bad)
    bad.write_bytes(b"q1 0 d1 \xff\n")
    with pytest.raises(DataFileError, match="not UTF-8"):
        trec.read_qrels(bad)


@pytest.fixture
def fixture_files(tmp_path):
    rng = np.random.default_rng(0)
    docs = [f"d{i:02d}" for i in range(40)]
    qrels, run = [], {}
    for q in range(8):
        qid = f"q{q}"
        for d in rng.choice(docs, size=4, replace=False):
            qrels.append((qid, str(d), int(rng.integers(1, 3))))
        run[qid] = trec.rank_documents(rng.random(len(docs)), docs, depth=30)
    trec.write_qrels(tmp_path / "qrels.txt", qrels)
    trec.write_run(tmp_path / "sys.run", run, tag="sys")
    return tmp_path / "qrels.txt", tmp_path / "sys.run"


def test_map_equals_pytrec_eval(fixture_files):
    qrels_path, run_path = fixture_files
    ours = evaluate_run(qrels_path, run_path, depth=30)
    run = {q: {d: s for d, s in docs} for q, docs in trec.read_run(run_path).items()}
    ref = pytrec_eval.RelevanceEvaluator(trec.read_qrels(qrels_path), {"map", "ndcg_cut.10", "recall.100"}).evaluate(
        run
    )
    assert ours["AP"] == pytest.approx(np.mean([v["map"] for v in ref.values()]), abs=1e-4)
    assert ours["nDCG@10"] == pytest.approx(np.mean([v["ndcg_cut_10"] for v in ref.values()]), abs=1e-4)
    assert ours["R@100"] == pytest.approx(np.mean([v["recall_100"] for v in ref.values()]), abs=1e-4)
    per_query = per_query_ap(qrels_path, run_path)
    for qid, values in ref.items():
        assert per_query[qid] == pytest.approx(values["map"], abs=1e-9)


def test_signature_records_settings(fixture_files):
    qrels_path, run_path = fixture_files
    sig = evaluate_run(qrels_path, run_path, depth=30)["signature"]
    assert sig["depth"] == 30 and sig["judged_queries"] == 8 and sig["queries_in_run"] == 8
    assert sig["qrels"] == trec.file_hash(qrels_path) and sig["run"] == trec.file_hash(run_path)
    with pytest.raises(ValueError, match="above the fixed depth"):
        evaluate_run(qrels_path, run_path, depth=10)


def test_missing_query_scores_zero(tmp_path):
    trec.write_qrels(tmp_path / "q.txt", [("q1", "a", 1), ("q2", "b", 1)])
    trec.write_run(tmp_path / "r.run", {"q1": [("a", 1.0)]}, tag="x")
    scores = evaluate_run(tmp_path / "q.txt", tmp_path / "r.run", depth=10)
    assert scores["AP"] == 0.5 and scores["signature"]["queries_in_run"] == 1


def test_exact_search_and_robustness():
    q = np.eye(3, dtype=np.float32)[:2]
    d = np.eye(3, dtype=np.float32)
    run = search(q, d, ["q0", "q1"], ["a", "b", "c"], depth=2)
    assert run["q0"][0][0] == "a" and run["q1"][0][0] == "b"
    assert robustness(0.3, 0.6) == 0.5 and robustness(0.3, 0.0) is None


def test_bm25_over_translated_documents_ranks_matching_terms_first():
    from pipeline.retrieval.search import bm25_search

    docs = [
        "The LORD is my shepherd",
        "a wise son makes a glad father",
        "the shepherds watched their flocks",
        "nothing",
    ]
    run = bm25_search(["shepherd", "wise father"], docs, ["q1", "q2"], ["d0", "d1", "d2", "d3"], depth=4, k1=0.9, b=0.4)
    assert [d for d, _ in run["q1"][:2]] == ["d0", "d2"]  # stemming: shepherds → shepherd
    assert run["q2"][0][0] == "d1"
    assert [d for d, _ in run["q1"][2:]] == ["d1", "d3"]  # zero-score ties broken by docid


def test_bm25_with_no_indexable_words_ranks_by_docid():
    from pipeline.retrieval.search import bm25_search

    run = bm25_search(["shepherd"], ["the the the", "of and"], ["q"], ["d1", "d0"], depth=2, k1=0.9, b=0.4)
    assert [d for d, _ in run["q"]] == ["d0", "d1"]
