"""Corpora from files (data/external/corpora/<code>/): the pair check, bad files, `prepare` on fixture corpora."""

import json
import shutil
from pathlib import Path

import pytest
from params_helper import prepare_new_language

from pipeline.data import store
from pipeline.data.corpora import check_pairs, read_file_corpus
from pipeline.io import DataFileError, read_metrics

FIXTURES = Path(__file__).parent / "fixtures/corpora"
#: A language that is not built in, with its corpus from files and its shifted_register split from the UDHR.
RUSSIAN = (
    "  rus: {name: Russian, script: Cyrl, corpus: files, bible_source: null, bible_code: null, udhr: rus, lid: false}\n"
)


def test_pair_check_drops_and_counts():
    pairs = [(f"p{i}", "x" * n, "y" * round(n * 1.2)) for i, n in enumerate([40, 80, 60, 120, 50])]
    pairs += [("e", "an English sentence", ""), ("s", "another one", "y"), ("r", "x" * 30, "y" * 200)]
    kept, report = check_pairs(pairs, min_chars=2, max_ratio=3.0)
    assert [p[0] for p in kept] == ["p0", "p1", "p2", "p3", "p4"]
    assert report == {
        "read": 8,
        "dropped_empty": 1,
        "dropped_short": 1,
        "dropped_ratio": 1,
        "kept": 5,
        "length_ratio_centre": 0.1823,
    }


def test_fixture_corpus_reads_and_is_checked():
    corpus = read_file_corpus("rus", FIXTURES, min_chars=2, max_ratio=3.0)
    assert corpus.report["bitext"] | {"length_ratio_centre": 0} == {
        "read": 44,
        "dropped_empty": 1,
        "dropped_short": 1,
        "dropped_ratio": 1,
        "kept": 41,
        "length_ratio_centre": 0,
    }
    assert corpus.report["mono"]["dropped_empty"] == 1 and len(corpus.mono) == 26 and len(corpus.genre_dev) == 12
    assert corpus.bitext[0][0] == "bitext:gen1.1" and corpus.mono[0][0] == "mono:ps1.1"
    assert list(corpus.collections) == ["in_domain"] and set(corpus.missing_splits) == {
        "shifted_genre",
        "shifted_register",
        "topics",
    }


def _broken(tmp_path, name, content):
    root = tmp_path / "corpora"
    shutil.copytree(FIXTURES / "rus", root / "rus")
    (root / "rus" / name).write_text(content, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bitext.tsv", "id\ten\n1\tIn the beginning\n", r"bitext\.tsv: missing column\(s\) \['xx'\]"),
        ("bitext.tsv", "id\ten\txx\n1\tone\tодин\n1\ttwo\tдва\n", r"bitext\.tsv: duplicate id '1'"),
        ("bitext.tsv", "id\ten\txx\n", r"bitext\.tsv has no rows"),
        ("mono.tsv", "", r"mono\.tsv is empty"),
        ("genre_dev.tsv", "id\ten\txx\n1\tone\tодин\textra\n", r"genre_dev\.tsv:2: 4 fields"),
        ("genre_dev.tsv", "id\ten\txx\n1\tone\t\n", r"genre_dev\.tsv: no pair passed the alignment check"),
        ("in_domain/qrels", "q1 0 nowhere 1\n", r"document 'nowhere' absent"),
    ],
)
def test_bad_corpus_files_are_one_clear_error(tmp_path, name, content, message):
    with pytest.raises(DataFileError, match=message):
        read_file_corpus("rus", _broken(tmp_path, name, content), min_chars=2, max_ratio=3.0)


def test_missing_corpus_is_named(tmp_path):
    with pytest.raises(DataFileError, match=r"lang 'rus' reads its corpus from files, but .*rus does not exist"):
        read_file_corpus("rus", tmp_path, min_chars=2, max_ratio=3.0)
    root = _broken(tmp_path, "mono.tsv", "")
    (root / "rus/mono.tsv").unlink()
    with pytest.raises(DataFileError, match=r"file not found: .*mono\.tsv"):
        read_file_corpus("rus", root, min_chars=2, max_ratio=3.0)


def test_prepare_runs_on_file_corpora(tiny_project):
    """The prepare stage on the fixture corpora: one registry entry, the files under data/external/corpora/."""
    proj, env = tiny_project
    shutil.copytree(FIXTURES / "rus", proj / "data/external/corpora/rus")
    run = prepare_new_language(proj, env, "rus", RUSSIAN)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "split shifted_genre not built" in run.stderr

    metrics = read_metrics(proj / "metrics/prepare.json")
    assert metrics["lang"] == "rus" and metrics["unavailable"] == ["shifted_genre", "topics"]
    assert metrics["splits"]["in_domain"] | {"query_words_mean": 0, "doc_words_mean": 0} == {
        "queries": 6,
        "docs": 14,
        "qrels": 6,
        "relevant_per_query_mean": 1.0,
        "queries_with_rel1": 6,
        "judged_queries": 6,
        "query_words_mean": 0,
        "doc_words_mean": 0,
        "source": str(Path("data/external/corpora/rus/in_domain")),
    }
    register = metrics["splits"]["shifted_register"]
    assert register["udhr_paragraphs"] >= 50 and register["distractors"] == 14  # the in_domain documents
    alignment = metrics["alignment"]
    assert alignment["corpus"] == "files"
    assert {k: alignment["bitext"][k] for k in ("read", "dropped_empty", "dropped_short", "dropped_ratio", "kept")} == {
        "read": 44,
        "dropped_empty": 1,
        "dropped_short": 1,
        "dropped_ratio": 1,
        "kept": 41,
    }
    assert alignment["mono"] == {"read": 27, "dropped_empty": 1, "dropped_short": 0, "kept": 26}
    dropped = alignment["dropped_test_duplicates"]
    assert dropped["bitext"] + dropped["source_dev"] == 1  # the planted in_domain document
    train = metrics["train"]
    # 41 checked pairs: min(source_dev_size=30, 41 // 2) = 20 held out as source_dev; the leak is dropped from one
    assert train["bitext_source"] + train["source_dev"] == 40 and train["source_dev"] >= 19
    assert train["mono_target_genre"] == 26 and train["genre_dev"] == 12 and train["english_pairs"] > 10000

    data = proj / "data"
    bitext, source_dev = store.read_file("bitext", data), store.read_file("source_dev", data)
    ids = set(bitext["id"]) | set(source_dev["id"])
    assert ids == {f"bitext:gen1.{v}" for v in range(1, 32)} | {f"bitext:gen2.{v}" for v in range(1, 10)}
    assert (source_dev["query"] == source_dev["en"]).all()  # the English side serves as the query
    assert set(bitext["origin"]) == {"seed"} and set(bitext["domain"]) == {"source"}
    leak = (FIXTURES / "rus/in_domain/docs.jsonl").read_text(encoding="utf-8").splitlines()[0]
    leaked_text = json.loads(leak)["text"]
    written = store.manifest(data)["files"]
    assert set(written) == set(store.FILES) - {"mono_en"}  # mono.tsv has no English: no parallel control
    for name in written:
        df = store.read_file(name, data)
        assert not df.isin([leaked_text]).any().any(), name
    assert store.read_file("mono", data)["id"].str.startswith("mono:ps").all()
    in_domain = store.read_collection("in_domain", data)
    assert list(in_domain.docs["docid"])[:2] == ["jhn1.1", "jhn1.2"]
    assert list(in_domain.queries) == ["title", "desc"] and in_domain.docs_en is None  # titles drawn from the queries
