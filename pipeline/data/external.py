"""Test collections from outside the pipeline (CIRAL, AfriCLIRMatrix, NeuCLIR, …) as one of its splits.

``prepare.external`` maps a split name to a source; ``prepare`` then builds that split from it instead of
from the Bible/UDHR corpora, and every later stage reads it through the same split interface
(``data/prepared/<split>/{queries.tsv,docs.tsv,qrels.txt}``). A source is either

* a directory in TREC layout (what ``ir_datasets export`` and most CLIR releases give)::

      queries.tsv    qid<TAB>text              English queries, no header
      docs.jsonl     {"doc_id": "…", "text": "…", "title": "…"}   one document per line
                     (``docid`` or ``id`` also name the id; a title is prepended to the text)
      qrels          qid 0 docid relevance     TREC qrels (``qrels.txt`` also accepted)

  Put it under ``data/external/`` (a dependency of ``prepare``) so that DVC sees when it changes; or
* ``irds:<dataset id>``, read with the ``ir_datasets`` package (not installed by ``setup.sh``: it downloads
  the collection on first use, so it is for machines with network access).

Nothing of an external collection may reach training: ``prepare`` drops training rows whose text equals
one of its queries or documents and checks for leakage, as for the built-in splits.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from pipeline.data.collection import Collection
from pipeline.io import DataFileError, read_lines

IRDS_PREFIX = "irds:"
DOC_ID_KEYS = ("doc_id", "docid", "id")
QUERY_FIELDS = ("text", "title", "description")


def load_external(split: str, source: str) -> Collection:
    """The collection named by ``prepare.external.<split>`` (a TREC directory or ``irds:<id>``)."""
    if source.startswith(IRDS_PREFIX):
        try:
            import ir_datasets
        except ImportError:
            raise DataFileError(
                f"prepare.external.{split}={source!r} needs the ir_datasets package (pip install ir_datasets), "
                "or export the collection to a TREC directory"
            ) from None
        return collection_from_ir_datasets(split, ir_datasets.load(source[len(IRDS_PREFIX) :]))
    path = Path(source)
    if not path.is_dir():
        raise DataFileError(f"prepare.external.{split}: collection directory not found: {path}")
    return read_trec_collection(split, path)


def read_trec_collection(split: str, path: Path) -> Collection:
    """Read ``queries.tsv``, ``docs.jsonl`` and ``qrels`` from ``path``; one clear error per problem."""
    path = Path(path)
    queries = list(_read_queries(path / "queries.tsv"))
    docs = list(_read_docs(path / "docs.jsonl"))
    qrels_path = next((path / n for n in ("qrels", "qrels.txt") if (path / n).exists()), path / "qrels")
    qrels = list(_read_qrels(qrels_path))
    return _collection(split, queries, docs, qrels, {"source": str(path)})


def collection_from_ir_datasets(split: str, dataset, query_field: str | None = None) -> Collection:
    """A collection from an ``ir_datasets`` dataset (anything with ``queries_iter``/``docs_iter``/``qrels_iter``).

    The query text is ``query_field`` of each query, by default the first of ``text``, ``title``,
    ``description`` that it has (NeuCLIR topics have ``title``; CIRAL queries have ``text``).
    """
    queries = []
    for q in dataset.queries_iter():
        name = query_field or next((f for f in QUERY_FIELDS if getattr(q, f, None)), None)
        if name is None or not getattr(q, name, None):
            raise DataFileError(f"{split}: query {q.query_id!r} has none of the fields {QUERY_FIELDS}")
        queries.append((str(q.query_id), _clean(getattr(q, name))))
    docs = [
        (str(d.doc_id), _clean(" ".join(filter(None, (getattr(d, "title", ""), d.text))))) for d in dataset.docs_iter()
    ]
    qrels = [(str(r.query_id), str(r.doc_id), int(r.relevance)) for r in dataset.qrels_iter()]
    return _collection(split, queries, docs, qrels, {"source": f"{IRDS_PREFIX}{getattr(dataset, 'dataset_id', '?')}"})


def _collection(split, queries, docs, qrels, info) -> Collection:
    for what, rows in (("queries", queries), ("documents", docs), ("qrels", qrels)):
        if not rows:
            raise DataFileError(f"external collection for {split} ({info['source']}) has no {what}")
    _no_duplicates(split, "query", [q for q, _ in queries])
    _no_duplicates(split, "document", [d for d, _ in docs])
    judged = {q for q, _, r in qrels if r > 0}
    coll = Collection(split, {"desc": queries}, docs, qrels, {**info, "judged_queries": len(judged)})
    try:
        coll.validate()
    except ValueError as exc:
        raise DataFileError(f"external collection {info['source']}: {exc}") from None
    # Queries without a relevant document cannot score AP: evaluate only those with one, as TREC does.
    coll.queries = {"desc": [(q, t) for q, t in queries if q in judged]}
    coll.qrels = [r for r in qrels if r[0] in judged]
    if not coll.queries["desc"]:
        raise DataFileError(f"external collection {info['source']}: no query has a relevant document")
    return coll


def _read_queries(path: Path) -> Iterable[tuple[str, str]]:
    for lineno, line in read_lines(path):
        qid, sep, text = line.partition("\t")
        if not sep or not qid.strip() or not text.strip():
            raise DataFileError(f"{path}:{lineno}: expected 'qid<TAB>text', got {line[:80]!r}")
        yield qid.strip(), _clean(text)


def _read_docs(path: Path) -> Iterable[tuple[str, str]]:
    for lineno, line in read_lines(path):
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFileError(f"{path}:{lineno}: not a JSON object: {exc}") from None
        if not isinstance(doc, dict):
            raise DataFileError(f"{path}:{lineno}: expected a JSON object, got {type(doc).__name__}")
        key = next((k for k in DOC_ID_KEYS if k in doc), None)
        if key is None or not isinstance(doc.get("text"), str):
            raise DataFileError(
                f"{path}:{lineno}: a document needs one of {DOC_ID_KEYS} and a 'text' string; keys {sorted(doc)}"
            )
        text = _clean(" ".join(filter(None, (doc.get("title") or "", doc["text"]))))
        if not text:
            raise DataFileError(f"{path}:{lineno}: document {doc[key]!r} has no text")
        yield str(doc[key]), text


def _read_qrels(path: Path) -> Iterable[tuple[str, str, int]]:
    for lineno, line in read_lines(path):
        fields = line.split()
        if len(fields) != 4:
            raise DataFileError(f"{path}:{lineno}: expected 'qid 0 docid relevance', got {line[:80]!r}")
        try:
            yield fields[0], fields[2], int(fields[3])
        except ValueError:
            raise DataFileError(f"{path}:{lineno}: relevance {fields[3]!r} is not an integer") from None


def _no_duplicates(split: str, what: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise DataFileError(f"external collection for {split}: duplicate {what} id {i!r}")
        seen.add(i)


def _clean(text: str) -> str:
    return " ".join(str(text).split())
