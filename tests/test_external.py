"""External test collections (TREC layout / ir_datasets) behind the split interface."""

import shutil
from collections import namedtuple
from pathlib import Path

import pytest
from params_helper import prepare_with, raw_params

from pipeline.config.params import ParamsError, parse_params
from pipeline.data import store
from pipeline.data.external import collection_from_ir_datasets, load_external, read_trec_collection
from pipeline.io import DataFileError

FIXTURE = Path(__file__).parent / "fixtures/trec_collection"


def test_reads_the_fixture_collection():
    coll = read_trec_collection("shifted_register", FIXTURE)
    # q3 has no relevant document: it cannot score AP and is left out, as trec_eval does.
    assert [q for q, _ in coll.queries["desc"]] == ["q1", "q2"]
    assert [d for d, _ in coll.docs] == ["d1", "d2", "d3", "d4", "d5"]
    assert dict(coll.docs)["d1"].startswith("Mahakama Kila mtu")  # the title is prepended
    assert ("q2", "d5", 2) in coll.qrels and coll.info["judged_queries"] == 2


def test_external_split_replaces_the_built_in_one_and_cannot_leak(tmp_path):
    base = prepare_with(lang="swh")
    pool_id, pool_text = base.mono[0]
    coll_dir = tmp_path / "ext"
    shutil.copytree(FIXTURE, coll_dir)
    with open(coll_dir / "docs.jsonl", "a", encoding="utf-8") as fh:  # a pool verse is also a test document
        fh.write(f'{{"doc_id": "d6", "text": "{pool_text}"}}\n')
    prepared = prepare_with({"lang": "swh", "prepare.external": {"shifted_register": str(coll_dir)}})
    register = prepared.collections["shifted_register"]
    assert register.info["source"] == str(coll_dir) and len(register.docs) == 6
    assert prepared.collections["in_domain"].docs == base.collections["in_domain"].docs
    assert pool_id not in {i for i, _ in prepared.mono} and prepared.alignment["dropped_test_duplicates"]["mono"] >= 1
    out = tmp_path / "data"
    store.write_prepared(prepared, out)
    read = store.read_collection("shifted_register", out)
    assert list(read.queries["desc"]["qid"]) == ["q1", "q2"] and list(read.queries["title"]["qid"]) == ["q1", "q2"]


def test_a_udhr_only_language_gains_a_split():
    prepared = prepare_with({"lang": "som", "prepare.external": {"in_domain": str(FIXTURE)}})
    assert "in_domain" in prepared.collections and "in_domain" not in prepared.unavailable


def _broken(tmp_path, name, content: bytes):
    coll_dir = tmp_path / "broken"
    shutil.copytree(FIXTURE, coll_dir)
    (coll_dir / name).write_bytes(content)
    return coll_dir


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("docs.jsonl", b'{"doc_id": "d1", "text": "ok"}\n{"doc_id": "d2", "te', "docs.jsonl:2: not a JSON object"),
        ("docs.jsonl", b'{"doc_id": "d1", "body": "x"}\n', "a document needs one of"),
        ("docs.jsonl", b'{"doc_id": "d1", "text": "caf\xe9"}\n', "docs.jsonl is not UTF-8"),
        ("docs.jsonl", b"", "has no documents"),
        ("docs.jsonl", b'{"doc_id": "d1", "text": "a"}\n{"doc_id": "d1", "text": "b"}\n', "duplicate document id 'd1'"),
        ("queries.tsv", b"q1 courts without a tab\n", "queries.tsv:1: expected 'qid<TAB>text'"),
        ("qrels", b"q1 0 d1\n", "qrels:1: expected 'qid 0 docid relevance'"),
        ("qrels", b"q1 0 d1 yes\n", "relevance 'yes' is not an integer"),
        ("qrels", b"q1 0 d99 1\n", "document 'd99' absent"),
        ("qrels", b"q9 0 d1 1\n", "query 'q9' absent"),
        ("qrels", b"q1 0 d1 0\n", "no query has a relevant document"),
    ],
)
def test_malformed_collections_are_one_clear_error(tmp_path, name, content, message):
    with pytest.raises(DataFileError, match=message):
        read_trec_collection("shifted_register", _broken(tmp_path, name, content))


def test_missing_directory_file_and_package_are_named(tmp_path):
    with pytest.raises(DataFileError, match=r"prepare.external.in_domain: collection directory not found"):
        load_external("in_domain", str(tmp_path / "nowhere"))
    coll_dir = _broken(tmp_path, "qrels", b"")
    (coll_dir / "queries.tsv").unlink()
    with pytest.raises(DataFileError, match=r"file not found: .*queries.tsv"):
        load_external("in_domain", str(coll_dir))
    try:
        import ir_datasets  # noqa: F401
    except ImportError:
        with pytest.raises(DataFileError, match="needs the ir_datasets package"):
            load_external("in_domain", "irds:neuclir/1/fa")


def test_unknown_split_in_params_is_an_error():
    with pytest.raises(ParamsError, match=r"unknown split\(s\) \['dev'\]"):
        parse_params(raw_params({"prepare.external": {"dev": "data/external/x"}}))


Query = namedtuple("Query", "query_id title description")
Doc = namedtuple("Doc", "doc_id title text")
Qrel = namedtuple("Qrel", "query_id doc_id relevance iteration")


class FakeDataset:
    """The part of the ir_datasets API the loader uses (NeuCLIR-style topics with title/description)."""

    dataset_id = "fake/neuclir"

    def queries_iter(self):
        return iter([Query("101", "fair trial", "Find documents about courts"), Query("102", "borders", "Movement")])

    def docs_iter(self):
        return iter([Doc("a", "Mahakama", "Kila mtu ana haki."), Doc("b", "", "Mvua ilinyesha.")])

    def qrels_iter(self):
        return iter([Qrel("101", "a", 3, "0"), Qrel("102", "b", 1, "0")])


def test_ir_datasets_collection():
    coll = collection_from_ir_datasets("shifted_genre", FakeDataset())
    assert coll.queries == {"desc": [("101", "fair trial"), ("102", "borders")]}
    assert dict(coll.docs) == {"a": "Mahakama Kila mtu ana haki.", "b": "Mvua ilinyesha."}
    assert coll.info["source"] == "irds:fake/neuclir"
    assert (
        collection_from_ir_datasets("x", FakeDataset(), query_field="description").queries["desc"][0][1]
        == "Find documents about courts"
    )
