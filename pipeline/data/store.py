"""On-disk layout of the ``prepare`` stage's outputs and readers for the later stages.

Two DVC outs under a data root (default ``data/``), each written atomically as a whole::

    english/                        language-independent: the teacher depends on this only, so changing
      english_pairs.tsv             `lang` does not retrain it.   id, query (BBE), passage (WEB)
      english_dev.tsv               held-out source-domain dev    id, query, en
    prepared/                       everything that depends on `lang`
      manifest.json                 lang, available / unavailable splits (with reasons), files
      <split>/queries.tsv           qid, text         (English)
      <split>/docs.tsv              docid, text       (target language)
      <split>/qrels.txt             TREC qrels
      train/bitext_source.tsv       id, en, xx, origin, domain   (source domain, seed bitext pool)
      dev/source.tsv                id, query, en, xx            (the English dev verses the language aligns)
      dev/target_genre.tsv          id, en, xx                   (target-genre dev; en for scoring only)
      mono/target_genre.tsv         id, xx                       (target-genre monolingual pool)
      mono/target_genre_en.tsv      id, en                       (its WEB English: the `parallel` augmentation
                                                                  only; absent for a file corpus)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline import trec
from pipeline.data.splits import BITEXT_COLUMNS, Prepared, normalise
from pipeline.io import (
    DataFileError,
    atomic_path,
    read_json,
    read_tsv,
    write_json,
    write_tsv,
)

DATA_ROOT = Path("data")

#: name → (out directory under the data root, path inside it, columns)
FILES = {
    "english_pairs": ("english", "english_pairs.tsv", ("id", "query", "passage")),
    "english_dev": ("english", "english_dev.tsv", ("id", "query", "en")),
    "bitext": ("prepared", "train/bitext_source.tsv", BITEXT_COLUMNS),
    "source_dev": ("prepared", "dev/source.tsv", ("id", "query", "en", "xx")),
    "genre_dev": ("prepared", "dev/target_genre.tsv", ("id", "en", "xx")),
    "mono": ("prepared", "mono/target_genre.tsv", ("id", "xx")),
    "mono_en": ("prepared", "mono/target_genre_en.tsv", ("id", "en")),
}


def write_prepared(prepared: Prepared, root: Path = DATA_ROOT) -> None:
    root = Path(root)
    with atomic_path(root / "english", is_dir=True) as english, atomic_path(root / "prepared", is_dir=True) as tmp:
        dirs = {"english": english, "prepared": tmp}
        for split, coll in prepared.collections.items():
            write_tsv(tmp / split / "queries.tsv", coll.queries, ("qid", "text"))
            write_tsv(tmp / split / "docs.tsv", coll.docs, ("docid", "text"))
            trec.write_qrels(tmp / split / "qrels.txt", coll.qrels)
        written = []
        for attr, (out, rel_path, columns) in FILES.items():
            rows = getattr(prepared, attr)
            if rows:
                write_tsv(dirs[out] / rel_path, rows, columns)
                written.append(attr)
        write_json(
            tmp / "manifest.json",
            {
                "lang": prepared.lang,
                "splits": sorted(prepared.collections),
                "unavailable": prepared.unavailable,
                "files": sorted(written),
            },
        )


def manifest(root: Path = DATA_ROOT) -> dict:
    path = Path(root) / "prepared" / "manifest.json"
    if not path.exists():
        raise DataFileError(f"{path} not found: run the prepare stage first (dvc repro prepare)")
    return read_json(path)


def read_file(name: str, root: Path = DATA_ROOT) -> pd.DataFrame:
    """One of :data:`FILES` as a DataFrame; a clear error if this language has none (UDHR-only)."""
    out, rel_path, columns = FILES[name]
    path = Path(root) / out / rel_path
    if not path.exists():
        lang = manifest(root).get("lang")
        raise DataFileError(
            f"{path} does not exist: lang {lang!r} has no {name} (UDHR-only languages have no Bible text)"
        )
    return read_tsv(path, columns)


@dataclass
class TestCollection:
    name: str
    queries: pd.DataFrame  # qid, text
    docs: pd.DataFrame  # docid, text
    qrels_path: Path


def read_collection(split: str, root: Path = DATA_ROOT) -> TestCollection:
    """Read one split; checks that every judged document and query exists in the collection."""
    info = manifest(root)
    if split not in info["splits"]:
        reason = info["unavailable"].get(split, f"split {split!r} was not prepared")
        raise DataFileError(reason)
    base = Path(root) / "prepared" / split
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


def test_texts(root: Path = DATA_ROOT) -> set[str]:
    """Normalised text of every query and document of every prepared test split (for leakage checks)."""
    texts: set[str] = set()
    for split in manifest(root)["splits"]:
        coll = read_collection(split, root)
        texts.update(coll.docs["text"].map(normalise))
        texts.update(coll.queries["text"].map(normalise))
    return texts
