"""On-disk layout of the ``prepare`` stage's output and readers for the later stages.

``data/prepared/`` (one DVC out, written atomically as a whole)::

    manifest.json                   lang, available / unavailable splits (with reasons)
    <split>/queries.tsv             qid, text         (English)
    <split>/docs.tsv                docid, text       (target language)
    <split>/qrels.txt               TREC qrels
    train/bitext_source.tsv         id, en, xx, origin, domain   (source domain, seed bitext pool)
    train/english_pairs.tsv         id, query, passage           (BBE → WEB, teacher training)
    dev/source.tsv                  id, query, en, xx            (held-out source-domain dev)
    dev/target_genre.tsv            id, en, xx                   (target-genre dev; en for scoring only)
    mono/target_genre.tsv           id, xx                       (target-genre monolingual pool)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline import trec
from pipeline.data.splits import BITEXT_COLUMNS, Prepared
from pipeline.io import DataFileError, atomic_path, read_json, read_tsv, write_json, write_tsv

PREPARED_DIR = Path("data/prepared")

FILES = {
    "bitext": ("train/bitext_source.tsv", BITEXT_COLUMNS),
    "english_pairs": ("train/english_pairs.tsv", ("id", "query", "passage")),
    "source_dev": ("dev/source.tsv", ("id", "query", "en", "xx")),
    "genre_dev": ("dev/target_genre.tsv", ("id", "en", "xx")),
    "mono": ("mono/target_genre.tsv", ("id", "xx")),
}


def write_prepared(prepared: Prepared, out_dir: Path = PREPARED_DIR) -> None:
    with atomic_path(out_dir, is_dir=True) as tmp:
        for split, coll in prepared.collections.items():
            write_tsv(tmp / split / "queries.tsv", coll.queries, ("qid", "text"))
            write_tsv(tmp / split / "docs.tsv", coll.docs, ("docid", "text"))
            trec.write_qrels(tmp / split / "qrels.txt", coll.qrels)
        for attr, (rel_path, columns) in FILES.items():
            rows = getattr(prepared, attr)
            if rows:
                write_tsv(tmp / rel_path, rows, columns)
        write_json(
            tmp / "manifest.json",
            {
                "lang": prepared.lang,
                "splits": sorted(prepared.collections),
                "unavailable": prepared.unavailable,
                "files": sorted(FILES[a][0] for a in FILES if getattr(prepared, a)),
            },
        )


def manifest(prepared_dir: Path = PREPARED_DIR) -> dict:
    path = Path(prepared_dir) / "manifest.json"
    if not path.exists():
        raise DataFileError(f"{path} not found: run the prepare stage first (dvc repro prepare)")
    return read_json(path)


def read_file(name: str, prepared_dir: Path = PREPARED_DIR) -> pd.DataFrame:
    """One of :data:`FILES` as a DataFrame; a clear error if this language has none (UDHR-only)."""
    rel_path, columns = FILES[name]
    path = Path(prepared_dir) / rel_path
    if not path.exists():
        lang = manifest(prepared_dir).get("lang")
        raise DataFileError(f"{path} does not exist: lang {lang!r} has no {name} (UDHR-only languages have no Bible text)")
    return read_tsv(path, columns)


@dataclass
class TestCollection:
    name: str
    queries: pd.DataFrame  # qid, text
    docs: pd.DataFrame  # docid, text
    qrels_path: Path


def read_collection(split: str, prepared_dir: Path = PREPARED_DIR) -> TestCollection:
    """Read one split; checks that every judged document and query exists in the collection."""
    info = manifest(prepared_dir)
    if split not in info["splits"]:
        reason = info["unavailable"].get(split, f"split {split!r} was not prepared")
        raise DataFileError(reason)
    base = Path(prepared_dir) / split
    queries = read_tsv(base / "queries.tsv", ("qid", "text"))
    docs = read_tsv(base / "docs.tsv", ("docid", "text"))
    qrels_path = base / "qrels.txt"
    qrels = trec.read_qrels(qrels_path)
    doc_ids, query_ids = set(docs["docid"]), set(queries["qid"])
    for qid, judged in qrels.items():
        if qid not in query_ids:
            raise DataFileError(f"{qrels_path}: query {qid!r} is not in {base / 'queries.tsv'}")
        missing = sorted(set(judged) - doc_ids)
        if missing:
            raise DataFileError(f"{qrels_path}: document {missing[0]!r} is not in {base / 'docs.tsv'}")
    return TestCollection(split, queries, docs, qrels_path)
