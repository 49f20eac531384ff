"""On-disk layout of the ``prepare`` stage's outputs and readers for the later stages.

Two DVC outs under a data root (default ``data/``), each written atomically as a whole::

    english/                        language-independent: the teacher depends on this only, so changing
      english_pairs.tsv             `lang` does not retrain it.   id, query (BBE), passage (WEB)
      english_dev.tsv               held-out source-domain dev    id, query, en
    prepared/                       everything that depends on `lang`
      manifest.json                 lang, available / unavailable splits (with reasons), query forms, files
      <split>/queries/<form>.tsv    qid, text         (English; a file per query form: title, desc)
      <split>/docs.tsv              docid, text       (target language)
      <split>/docs_en.tsv           docid, text       (the documents' English originals, where the source has
                                                       them: the English–English ceiling only)
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

from pipeline.config.paths import QUERY_FORMS
from pipeline.data.splits import BITEXT_COLUMNS, Prepared, normalise
from pipeline.io import (
    DataFileError,
    atomic_path,
    read_json,
    read_tsv,
    write_json,
    write_tsv,
)
from pipeline.retrieval import trec

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
            for form, rows in coll.queries.items():
                write_tsv(tmp / split / "queries" / f"{form}.tsv", rows, ("qid", "text"))
            write_tsv(tmp / split / "docs.tsv", coll.docs, ("docid", "text"))
            if coll.docs_en is not None:
                write_tsv(tmp / split / "docs_en.tsv", coll.docs_en, ("docid", "text"))
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
                "query_forms": {
                    split: [f for f in QUERY_FORMS if f in coll.queries] for split, coll in prepared.collections.items()
                },
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
    queries: dict[str, pd.DataFrame]  # query form -> qid, text
    docs: pd.DataFrame  # docid, text
    qrels_path: Path
    docs_en: pd.DataFrame | None = None  # docid, text: the documents' English, where the source has it


def read_collection(split: str, root: Path = DATA_ROOT) -> TestCollection:
    """Read one split; checks that every judged document and query exists in the collection, in every form."""
    info = manifest(root)
    if split not in info["splits"]:
        reason = info["unavailable"].get(split, f"split {split!r} was not prepared")
        raise DataFileError(reason)
    base = Path(root) / "prepared" / split
    queries = {form: read_tsv(base / "queries" / f"{form}.tsv", ("qid", "text")) for form in info["query_forms"][split]}
    docs = read_tsv(base / "docs.tsv", ("docid", "text"))
    docs_en = read_tsv(base / "docs_en.tsv", ("docid", "text")) if (base / "docs_en.tsv").exists() else None
    if docs_en is not None and list(docs_en["docid"]) != list(docs["docid"]):
        raise DataFileError(f"{base / 'docs_en.tsv'}: document ids differ from {base / 'docs.tsv'}")
    qrels_path = base / "qrels.txt"
    qrels = trec.read_qrels(qrels_path)
    doc_ids = set(docs["docid"])
    for judged in qrels.values():
        missing = sorted(set(judged) - doc_ids)
        if missing:
            raise DataFileError(f"{qrels_path}: document {missing[0]!r} is not in {base / 'docs.tsv'}")
    for form, rows in queries.items():
        absent = sorted(set(qrels) - set(rows["qid"]))
        if absent:
            raise DataFileError(f"{qrels_path}: query {absent[0]!r} is not in {base / 'queries' / f'{form}.tsv'}")
    return TestCollection(split, queries, docs, qrels_path, docs_en)


def test_texts(root: Path = DATA_ROOT) -> set[str]:
    """Normalised text of every query and document of every prepared test split (for leakage checks)."""
    texts: set[str] = set()
    for split in manifest(root)["splits"]:
        coll = read_collection(split, root)
        texts.update(coll.docs["text"].map(normalise))
        for rows in coll.queries.values():
            texts.update(rows["text"].map(normalise))
    return texts
