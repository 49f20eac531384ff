"""Splits and test collections of a language, and the leakage guard (the data contract of the whole pipeline).

Which Bible books serve which purpose is :mod:`pipeline.data.books`; the Bible collections of each test
(``prepare.collection``: ``topical`` or ``known_item``) are built by :mod:`pipeline.data.bible_collections`.

Queries are English from the Bible in Basic English (BBE); the English side of bitext and teacher passages is the
World English Bible (WEB), so a query is never the same string as aligned English text. Every split is evaluated with
both query forms (:data:`pipeline.config.paths.QUERY_FORMS`): a collection from files has its queries as
``desc``, and its ``title`` form is drawn from them like the Bible's.

That is the layout for a language whose registry entry (:mod:`pipeline.config.languages`) has ``corpus: bible``. With
``corpus: files`` the seed bitext, the pool, the dev sets and any test collections come from
``data/external/corpora/<code>/`` instead (:mod:`pipeline.data.corpora`); with no corpus (UDHR only) only
``shifted_register`` exists. The English teacher data is the English Bible's in every case, and the leakage guard
(:func:`drop_test_duplicates`, :func:`check_no_leakage`) runs on every language.

:func:`prepare` takes the ``prepare`` params section (any object with the attributes of :class:`PrepareSettings`),
the root seed, the language's seed and the registry entry: this module does not read params.
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pipeline.config import seeds
from pipeline.config.languages import Language
from pipeline.config.paths import CORPORA_DIR
from pipeline.data import articles, bible, corpora, udhr
from pipeline.data.bible import verse_id
from pipeline.data.bible_collections import (
    BibleCorpus,
    EnglishBible,
    SplitUnavailable,
    known_item_collection,
    sample_queries,
    split_off,
    topical_collection,
    topics_collection,
)
from pipeline.data.books import DISTRACTOR_BOOKS, TARGET_GENRE_POOL_BOOKS, TEST_BOOKS
from pipeline.data.collection import Collection
from pipeline.data.external import load_external
from pipeline.data.queries import both_forms
from pipeline.io import DataFileError

__all__ = ["SplitUnavailable", "prepare", "check_no_leakage", "drop_test_duplicates", "is_test_id"]

BITEXT_COLUMNS = ("id", "en", "xx", "origin", "domain")
#: Attributes of :class:`Prepared` that hold non-test text (id first, then text columns).
NON_TEST_FILES = ("bitext", "english_pairs", "english_dev", "source_dev", "genre_dev", "mono", "mono_en")
#: Id prefixes of test items that are no Bible verse: UDHR paragraphs, topics.
TEST_ID_PREFIXES = ("udhr:", "topic:")


class PrepareSettings(Protocol):
    """What :func:`prepare` reads of the ``prepare`` params section (``pipeline.config.params.PrepareParams``)."""

    collection: str
    title_words: int
    queries_in_domain: int
    queries_shifted_genre: int
    udhr_distractors: int
    source_dev_size: int
    genre_dev_size: int
    shift_margin: float
    min_shift_dev: float
    min_chars: int
    pair_length_ratio: float
    external: Mapping[str, str]


#: A document that may serve as a distractor of the UDHR split: id, target text, English text (None if unknown).
Distractor = tuple[str, str, str | None]


def udhr_collection(
    lang: str,
    distractor_pool: list[Distractor],
    verse_distractors: list[Distractor],
    cfg: PrepareSettings,
    seed: int,
    udhr_root: Path,
) -> Collection:
    """UDHR paragraphs as documents, plus distractors; English paragraphs as queries (``desc``, and ``title``).

    Graded qrels: the aligned paragraph is rel 2, the other paragraphs of the same article rel 1. The distractors
    are a seeded sample of ``distractor_pool`` (the in_domain test books' documents, in their order) and every
    document of ``verse_distractors`` (the distractor books' verses, on the topical test).
    """
    pairs, skipped = udhr.align_declaration(lang, udhr_root)
    rng = seeds.rng(seed, "prepare", "shifted_register", "queries")
    queries = both_forms([(p.doc_id, p.en) for p in pairs], cfg.title_words, rng)
    docs: list[Distractor] = [(p.doc_id, p.xx, p.en) for p in pairs]
    by_article: dict[int, list[str]] = {}
    for p in pairs:
        by_article.setdefault(p.article, []).append(p.doc_id)
    qrels = [(p.doc_id, other, 2 if other == p.doc_id else 1) for p in pairs for other in by_article[p.article]]
    n_distractors = 0
    if distractor_pool and cfg.udhr_distractors:
        drng = seeds.rng(seed, "prepare", "shifted_register", "distractors")
        n_distractors = min(cfg.udhr_distractors, len(distractor_pool))
        picked = sorted(drng.choice(len(distractor_pool), size=n_distractors, replace=False).tolist())
        docs += [distractor_pool[i] for i in picked]
    docs += verse_distractors
    info = {"udhr_articles_skipped": skipped, "udhr_paragraphs": len(pairs), "distractors": n_distractors}
    if verse_distractors:
        info["verse_distractors"] = len(verse_distractors)
    docs_en = [(d, en) for d, _, en in docs] if all(en is not None for *_, en in docs) else None
    coll = Collection("shifted_register", queries, [(d, xx) for d, xx, _ in docs], qrels, info, docs_en)
    coll.validate()
    return coll


@dataclass
class Prepared:
    """Everything the ``prepare`` stage writes."""

    lang: str
    collections: dict[str, Collection]
    unavailable: dict[str, str]
    bitext: list[tuple[str, str, str, str, str]]  # id, en (WEB), xx, origin, domain
    english_pairs: list[tuple[str, str, str]]  # id, query (BBE), passage (WEB); language-independent
    english_dev: list[tuple[str, str, str]]  # id, query (BBE), en (WEB); language-independent
    source_dev: list[tuple[str, str, str, str]]  # id, query (BBE), en (WEB), xx
    genre_dev: list[tuple[str, str, str]]  # id, en (WEB, for scoring only), xx
    mono: list[tuple[str, str]]  # id, xx (target-genre monolingual pool)
    alignment: dict = field(default_factory=dict)
    # id, en (WEB) of the pool verses: read only by the `parallel` augmentation (never MT training or prompts);
    # empty for a file corpus, whose mono.tsv has no English
    mono_en: list[tuple[str, str]] = field(default_factory=list)


def prepare(
    cfg: PrepareSettings,
    seed: int,
    lang_seed: int,
    language: Language,
    udhr_root: Path = udhr.DEFAULT_UDHR_DIR,
    corpora_root: Path = CORPORA_DIR,
) -> Prepared:
    """Build every split, training file and pool for ``language`` (pure: no files written).

    ``cfg`` is the ``prepare`` params section, ``language`` the registry entry. The root ``seed`` splits the
    English source books into training and dev verses (the teacher's data, the same for every language); every
    draw of the language's own data (query samples, the genre dev set, the UDHR split, titles) uses ``lang_seed``
    (:attr:`pipeline.config.params.Params.lang_seed`), so no two languages share one.
    """
    lang = language.code
    english = EnglishBible()
    train, dev = english.source_split(cfg, seed)
    english_pairs = [(verse_id(k), english.bbe[k], english.web[k]) for k in train]
    english_dev = [(verse_id(k), english.bbe[k], english.web[k]) for k in dev]
    verse_distractors: list[Distractor] = []
    if language.corpus == "bible":
        prepared, verse_distractors = _bible_part(language, cfg, lang_seed, english, train, dev)
    elif language.corpus == "files":
        prepared = _files_part(language, cfg, lang_seed, corpora_root)
    else:
        reason = f"lang {lang!r} is UDHR-only: it has no Bible text, so only shifted_register exists"
        prepared = Prepared(lang, {}, {"in_domain": reason, "shifted_genre": reason}, [], [], [], [], [], [])
    if cfg.collection == "known_item":
        prepared.unavailable.setdefault("topics", "the known_item test (prepare.collection) has no topics split")
    elif "topics" not in prepared.collections:
        prepared.unavailable.setdefault("topics", f"lang {lang!r} has no Bible text: the topics are Bible verses")
    prepared.english_pairs, prepared.english_dev = english_pairs, english_dev
    if "shifted_register" not in prepared.collections:
        if language.has_udhr:
            pool = _register_distractor_pool(prepared.collections.get("in_domain"))
            prepared.collections["shifted_register"] = udhr_collection(
                lang, pool, verse_distractors, cfg, lang_seed, udhr_root
            )
            prepared.unavailable.pop("shifted_register", None)
        else:
            prepared.unavailable.setdefault("shifted_register", f"lang {lang!r} has no UDHR text")
    for split, source in cfg.external.items():
        prepared.collections[split] = load_external(split, source)
        prepared.unavailable.pop(split, None)
    if not prepared.collections:
        raise DataFileError(f"lang {lang!r} has no test collection: {prepared.unavailable}")
    for split, coll in prepared.collections.items():
        if "title" not in coll.queries:  # a collection from files: its queries are the desc form
            coll.queries = both_forms(
                coll.queries["desc"], cfg.title_words, seeds.rng(lang_seed, "prepare", split, "titles")
            )
    prepared.alignment["dropped_test_duplicates"] = drop_test_duplicates(prepared)
    check_no_leakage(prepared)
    return prepared


def _register_distractor_pool(in_domain: Collection | None) -> list[Distractor]:
    """The documents the UDHR split draws its ``prepare.udhr_distractors`` from: the in_domain collection's, less
    the distractor-book verses of the topical test (the UDHR split takes all of those)."""
    if in_domain is None:
        return []
    english = dict(in_domain.docs_en or [])
    return [(d, text, english.get(d)) for d, text in in_domain.docs if not _is_distractor_verse(d)]


def _is_distractor_verse(doc_id: str) -> bool:
    return doc_id.startswith("bible:") and bible.parse_verse_id(doc_id)[0] in DISTRACTOR_BOOKS


def _bible_part(
    language: Language, cfg: PrepareSettings, seed: int, english: EnglishBible, train: list, dev: list
) -> tuple[Prepared, list[Distractor]]:
    """Bible splits, seed bitext, dev sets and target-genre pool of a ``corpus: bible`` language, and the verses that
    are distractors of its UDHR split (the distractor books' on the topical test, none on the known-item test)."""
    topical = cfg.collection == "topical"
    corpus = BibleCorpus(language, cfg, english, distractors=topical)
    aligned = set(corpus.keys)
    links = bible.read_cross_references() if topical else {}
    collections = {}
    for split, n_queries in (("in_domain", cfg.queries_in_domain), ("shifted_genre", cfg.queries_shifted_genre)):
        sample = sample_queries(split, corpus, n_queries, cfg, seed)
        if topical:
            collections[split] = topical_collection(split, corpus, sample, links)
        else:
            collections[split] = known_item_collection(split, corpus, sample)
    if topical:
        collections["topics"] = topics_collection(corpus, articles.read_articles())
    bitext = [(verse_id(k), corpus.web[k], corpus.xx[k], "seed", "source") for k in train if k in aligned]
    pool, gdev = split_off(
        corpus.in_books(TARGET_GENRE_POOL_BOOKS), cfg.genre_dev_size, seeds.rng(seed, "prepare", "genre_dev")
    )
    mono = [(verse_id(k), corpus.xx[k]) for k in pool]
    mono_en = [(verse_id(k), corpus.web[k]) for k in pool]
    genre_dev = [(verse_id(k), corpus.web[k], corpus.xx[k]) for k in gdev]
    source_dev = [(verse_id(k), corpus.bbe[k], corpus.web[k], corpus.xx[k]) for k in dev if k in aligned]
    alignment = corpus.report.as_dict()
    if topical:
        alignment["distractor_books"] = corpus.distractor_report
    prepared = Prepared(
        language.code, collections, {}, bitext, [], [], source_dev, genre_dev, mono, alignment, mono_en=mono_en
    )
    return prepared, [(verse_id(k), corpus.xx[k], corpus.web[k]) for k in corpus.distractor_keys]


def _files_part(language: Language, cfg: PrepareSettings, seed: int, corpora_root: Path) -> Prepared:
    """Seed bitext, dev sets, pool and test collections of a ``corpus: files`` language (module corpora)."""
    corpus = corpora.read_file_corpus(
        language.code, corpora_root, min_chars=cfg.min_chars, max_ratio=cfg.pair_length_ratio
    )
    rest, held = split_off(corpus.bitext, cfg.source_dev_size, seeds.rng(seed, "prepare", "source_dev"))
    bitext = [(i, en, xx, "seed", "source") for i, en, xx in rest]
    source_dev = [(i, en, en, xx) for i, en, xx in held]  # the English side serves as the query
    genre_dev = corpus.genre_dev
    if len(genre_dev) > cfg.genre_dev_size:
        rng = seeds.rng(seed, "prepare", "genre_dev")
        genre_dev = [genre_dev[i] for i in sorted(rng.choice(len(genre_dev), size=cfg.genre_dev_size, replace=False))]
    unavailable = dict(corpus.missing_splits)
    if language.has_udhr:
        unavailable.pop("shifted_register", None)  # the UDHR serves it (see prepare)
    return Prepared(
        language.code,
        dict(corpus.collections),
        unavailable,
        bitext,
        [],
        [],
        source_dev,
        genre_dev,
        corpus.mono,
        {"corpus": "files", **corpus.report},
    )


def drop_test_duplicates(prepared: Prepared) -> dict[str, int]:
    """Remove non-test rows whose text (either side) equals a test query or document; count per file.

    Formulaic verses ("And the LORD spoke to Moses, saying") recur across books, so a source verse can be
    word-for-word a test document; keeping it would put test text into training.
    """
    _, test_text = test_texts(prepared)
    dropped = {}
    for name in NON_TEST_FILES:
        rows = getattr(prepared, name)
        kept = [r for r in rows if not any(normalise(t) in test_text for t in r[1:])]
        dropped[name] = len(rows) - len(kept)
        setattr(prepared, name, kept)
    return dropped


def test_texts(prepared: Prepared) -> tuple[set[str], set[str]]:
    """Ids and normalised texts (both languages) of every test document and query."""
    ids: set[str] = set()
    texts: set[str] = set()
    for coll in prepared.collections.values():
        for rows in coll.queries.values():
            for qid, text in rows:
                ids.add(qid)
                texts.add(normalise(text))
        for docid, text in coll.docs:
            ids.add(docid)
            texts.add(normalise(text))
    return ids, texts


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


def is_test_id(doc_id: str) -> bool:
    """True for ids of test books (distractor books included), UDHR paragraphs and topics, whatever was sampled
    into a collection."""
    if doc_id.startswith(TEST_ID_PREFIXES):
        return True
    if doc_id.startswith("bible:"):
        return bible.parse_verse_id(doc_id)[0] in TEST_BOOKS
    return False  # ids of generated text (e.g. LLM-synthesised lines) name no test item


def check_no_leakage(prepared: Prepared) -> None:
    """Raise if any test-book verse id or any test text reaches a training, dev, MT or pool file."""
    _, test_text = test_texts(prepared)
    for name in NON_TEST_FILES:
        for row in getattr(prepared, name):
            if is_test_id(row[0]):
                raise AssertionError(f"leakage: test id {row[0]} in {name}")
            for text in row[1:]:
                if normalise(text) in test_text:
                    raise AssertionError(f"leakage: test text of {row[0]} in {name}: {text[:60]!r}")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def mean_words(texts) -> float:
    texts = list(texts)
    return round(statistics.fmean(len(t.split()) for t in texts), 2) if texts else 0.0
