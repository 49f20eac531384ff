"""A language's corpora from files, for a registry entry with ``corpus: files``.

A user with their own corpora (OPUS bitext, news text, a CIRAL-style test collection) puts them under
``data/external/corpora/<code>/`` (:data:`pipeline.config.paths.CORPORA_DIR`) and the same DAG runs on them::

    bitext.tsv          id, en, xx     source-domain seed bitext: the bitext pool and the MT training data
    mono.tsv            id, xx         target-genre monolingual pool (augmentation: back-translation, prompts)
    genre_dev.tsv       id, en, xx     target-genre dev bitext (MT scoring; never in the pool)
    in_domain/          test collections in the TREC layout of :mod:`pipeline.data.external`
    shifted_genre/      (queries.tsv, docs.jsonl, qrels); each is optional: a split without a directory
    shifted_register/   is unavailable, except shifted_register, which falls back to the UDHR if the
                        entry names a UDHR file

The TSV files are UTF-8 with a header line; other columns are ignored; ids must be unique per file. Ids are
written as ``<file>:<id>`` (``bitext:17``, ``mono:17``, ``genre_dev:17``) so that they never look like the
ids of a test item (``bible:…``, ``udhr:…``). A test collection is used whole, as ``prepare.external`` ones
are (``queries_*`` and ``collection`` apply to the Bible and UDHR splits only; their queries are the ``desc`` form).

How :func:`pipeline.data.splits.prepare` turns this into the prepared files:

* ``source_dev`` (id, query, en, xx): a seeded sample of ``prepare.source_dev_size`` pairs of the checked
  bitext (at most half of it), held out of the bitext; its English side is also its query. The English
  teacher data (``english_pairs``, ``english_dev``) stay the English Bible's whatever the language.
* ``genre_dev``: ``genre_dev.tsv`` after the pair check, a seeded sample of ``prepare.genre_dev_size`` pairs
  if it has more.

The alignment check of file bitext (Bible text has the chapter versification check of
:func:`pipeline.data.bible.check_chapter` instead) is per pair, see :func:`check_pairs`; then the leakage
guard of :mod:`pipeline.data.splits` drops every row whose text equals a test query or document.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.config.paths import CORPORA_DIR, SPLITS
from pipeline.data.collection import Collection
from pipeline.data.external import read_trec_collection
from pipeline.io import DataFileError, read_tsv

BITEXT_FILE = "bitext.tsv"
MONO_FILE = "mono.tsv"
GENRE_DEV_FILE = "genre_dev.tsv"
PAIR_COLUMNS = ("id", "en", "xx")
MONO_COLUMNS = ("id", "xx")


@dataclass
class FileCorpus:
    """The checked contents of ``data/external/corpora/<code>/``."""

    code: str
    root: Path
    bitext: list[tuple[str, str, str]]  # id, en, xx
    genre_dev: list[tuple[str, str, str]]  # id, en, xx
    mono: list[tuple[str, str]]  # id, xx
    collections: dict[str, Collection] = field(default_factory=dict)
    missing_splits: dict[str, str] = field(default_factory=dict)  # split -> why it has no directory here
    report: dict = field(default_factory=dict)  # what the checks dropped, per file


def _clean(text: str) -> str:
    return " ".join(text.split())


def _rows(path: Path, columns: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The rows of a headed TSV (one :class:`DataFileError` naming the file if it is missing or malformed)."""
    df = read_tsv(path, columns)
    rows = []
    for lineno, row in enumerate(df.itertuples(index=False, name=None), start=2):
        if not row[0].strip():
            raise DataFileError(f"{path}:{lineno}: empty id")
        rows.append((f"{path.stem}:{row[0].strip()}", *(_clean(t) for t in row[1:])))
    return rows


def check_pairs(
    pairs: list[tuple[str, str, str]], *, min_chars: int, max_ratio: float
) -> tuple[list[tuple[str, str, str]], dict]:
    """The pairs of an arbitrary bitext that look aligned, and what was dropped.

    In order: pairs with an empty side, pairs with a side shorter than ``min_chars`` characters, and pairs
    whose log character-length ratio (target / English) is more than ``log(max_ratio)`` away from the
    median over the remaining pairs. The median is the language's global length ratio, the centre that
    :func:`pipeline.data.bible.check_chapter` removes before comparing verses; a pair far from it holds a
    sentence that is not the other's translation (a misaligned line, a truncated or merged sentence).
    """
    report = {"read": len(pairs), "dropped_empty": 0, "dropped_short": 0, "dropped_ratio": 0}
    candidates = []
    for pair in pairs:
        _, en, xx = pair
        if not en or not xx:
            report["dropped_empty"] += 1
        elif len(en) < min_chars or len(xx) < min_chars:
            report["dropped_short"] += 1
        else:
            candidates.append(pair)
    ratios = [math.log(len(xx) / len(en)) for _, en, xx in candidates]
    centre = statistics.median(ratios) if ratios else 0.0
    limit = math.log(max_ratio)
    kept = [pair for pair, r in zip(candidates, ratios, strict=True) if abs(r - centre) <= limit]
    report["dropped_ratio"] = len(candidates) - len(kept)
    report["kept"] = len(kept)
    report["length_ratio_centre"] = round(centre, 4)
    return kept, report


def check_lines(lines: list[tuple[str, str]], *, min_chars: int) -> tuple[list[tuple[str, str]], dict]:
    """Monolingual lines without the empty ones and those shorter than ``min_chars``, and the counts."""
    kept = [row for row in lines if len(row[1]) >= min_chars]
    dropped_empty = sum(1 for row in lines if not row[1])
    return kept, {
        "read": len(lines),
        "dropped_empty": dropped_empty,
        "dropped_short": len(lines) - len(kept) - dropped_empty,
        "kept": len(kept),
    }


def read_file_corpus(code: str, root: Path | None = None, *, min_chars: int, max_ratio: float) -> FileCorpus:
    """Read and check ``<root>/<code>/`` (root: ``data/external/corpora``)."""
    base = Path(root if root is not None else CORPORA_DIR) / code
    if not base.is_dir():
        raise DataFileError(
            f"lang {code!r} reads its corpus from files, but {base} does not exist "
            f"(expected {BITEXT_FILE}, {MONO_FILE}, {GENRE_DEV_FILE}; see docs/data.md)"
        )
    report: dict = {}
    checked = {}
    for name in (BITEXT_FILE, GENRE_DEV_FILE):
        path = base / name
        pairs, report[path.stem] = check_pairs(_rows(path, PAIR_COLUMNS), min_chars=min_chars, max_ratio=max_ratio)
        if not pairs:
            raise DataFileError(f"{path}: no pair passed the alignment check ({report[path.stem]})")
        checked[name] = pairs
    mono_path = base / MONO_FILE
    mono, report[mono_path.stem] = check_lines(_rows(mono_path, MONO_COLUMNS), min_chars=min_chars)
    if not mono:
        raise DataFileError(f"{mono_path}: no line of at least {min_chars} characters")
    corpus = FileCorpus(code, base, checked[BITEXT_FILE], checked[GENRE_DEV_FILE], mono, report=report)
    for split in SPLITS:
        if (base / split).is_dir():
            corpus.collections[split] = read_trec_collection(split, base / split)
        else:
            corpus.missing_splits[split] = (
                f"lang {code!r} has a file corpus without a {split} collection ({base / split}/)"
            )
    return corpus
