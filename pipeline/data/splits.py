"""Domains, splits and test collections (the data contract of the whole pipeline).

Domains (book numbers 1–66, Protestant order):

=====================  ==============================  ===============================================
part                   books                           used for
=====================  ==============================  ===============================================
source domain          1–17, 40–44 minus test books    seed bitext, MT training, teacher pairs, dev sets
in_domain test         Ruth 8, Esther 17, John 43      test collection only
shifted_genre test     Proverbs 20, Ecclesiastes 21    test collection only
target-genre pool      18, 19, 22–39                   target-language monolingual text (augmentation)
shifted_register test  the UDHR                        test collection only (+ in_domain-test distractors)
unused                 45–66                           nothing
=====================  ==============================  ===============================================

Queries are English from the Bible in Basic English (BBE); the English side of bitext and teacher
passages is the World English Bible (WEB), so a query is never the same string as aligned English text.

That is the layout for a language whose registry entry (:mod:`pipeline.data.languages`) has
``corpus: bible``. With ``corpus: files`` the seed bitext, the pool, the dev sets and any test collections
come from ``data/external/corpora/<code>/`` instead (:mod:`pipeline.data.corpora`); with no corpus (UDHR
only) only ``shifted_register`` exists. The English teacher data is the English Bible's in every case, and
the leakage guard (:func:`drop_test_duplicates`, :func:`check_no_leakage`) runs on every language.

:func:`prepare` takes the ``prepare`` params section (any object with the attributes of
:class:`PrepareSettings`), the root seed and the registry entry: this module does not read params.
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pipeline import seeds
from pipeline.data import bible, corpora, udhr
from pipeline.data.bible import VerseKey, verse_id
from pipeline.data.collection import Collection
from pipeline.data.external import load_external
from pipeline.data.languages import Language
from pipeline.io import DataFileError
from pipeline.paths import CORPORA_DIR

SOURCE_BOOKS = frozenset(range(1, 18)) | frozenset(range(40, 45))
IN_DOMAIN_TEST_BOOKS = frozenset({8, 17, 43})
SHIFTED_GENRE_TEST_BOOKS = frozenset({20, 21})
TARGET_GENRE_POOL_BOOKS = frozenset({18, 19}) | frozenset(range(22, 40))
TEST_BOOKS = IN_DOMAIN_TEST_BOOKS | SHIFTED_GENRE_TEST_BOOKS
SOURCE_TRAIN_BOOKS = SOURCE_BOOKS - TEST_BOOKS
USED_BOOKS = SOURCE_BOOKS | SHIFTED_GENRE_TEST_BOOKS | TARGET_GENRE_POOL_BOOKS

BITEXT_COLUMNS = ("id", "en", "xx", "origin", "domain")
#: Attributes of :class:`Prepared` that hold non-test text (id first, then text columns).
NON_TEST_FILES = ("bitext", "english_pairs", "english_dev", "source_dev", "genre_dev", "mono", "mono_en")
MIN_QUERY_WORDS = 3


class SplitUnavailable(ValueError):
    """The target language has no text for this split (e.g. a UDHR-only language and a Bible split)."""


class PrepareSettings(Protocol):
    """What :func:`prepare` reads of the ``prepare`` params section (``pipeline.params.PrepareParams``)."""

    query_form: str
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


def title_query(text: str, n_words: int, rng) -> str:
    """A few content words of ``text``, in their original order (a TREC-'title'-like short query)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS  # here: sklearn takes a second to import

    words = [w.strip(".,;:!?\"'()[]") for w in text.split()]
    content = [i for i, w in enumerate(words) if w and w.lower() not in ENGLISH_STOP_WORDS and len(w) > 2]
    if len(content) <= n_words:
        return " ".join(words[i] for i in content) or text
    chosen = sorted(rng.choice(content, size=n_words, replace=False).tolist())
    return " ".join(words[i] for i in chosen)


def _make_query(text: str, cfg: PrepareSettings, rng) -> str:
    if cfg.query_form == "title":
        return title_query(text, cfg.title_words, rng)
    return text


class EnglishBible:
    """WEB (document-side English) and BBE (query-side English) verses of every used book."""

    def __init__(self) -> None:
        self.web = bible.read_bible("eng_web", USED_BOOKS)
        self.bbe = bible.read_bible("eng_bbe", USED_BOOKS)

    def source_split(self, cfg: PrepareSettings, seed: int) -> tuple[list[VerseKey], list[VerseKey]]:
        """Source-domain training / dev verses, independent of the target language.

        The teacher trains on the same English pairs whatever ``lang`` is; a target language only
        restricts the bitext to the verses it aligns.
        """
        keys = sorted(
            k
            for k in self.web
            if k[0] in SOURCE_TRAIN_BOOKS
            and len(self.bbe.get(k, "").split()) >= MIN_QUERY_WORDS
            and len(self.web[k]) >= cfg.min_chars
        )
        return _split_off(keys, cfg.source_dev_size, seeds.rng(seed, "prepare", "source_dev"))


class BibleCorpus:
    """Aligned WEB / BBE / target-language verses of every book the pipeline uses."""

    def __init__(self, language: Language, cfg: PrepareSettings, english: EnglishBible | None = None):
        if not language.has_bible:
            raise SplitUnavailable(
                f"lang {language.code!r} has no Bible text (Bible languages: {sorted(bible.BIBLE_LANGS)})"
            )
        self.lang = language.code
        english = english or EnglishBible()
        self.web, self.bbe = english.web, english.bbe
        self.xx = bible.read_bible(language.code, USED_BOOKS)
        keys, self.report = bible.align(
            self.web,
            self.xx,
            shift_margin=cfg.shift_margin,
            min_dev=cfg.min_shift_dev,
            min_chars=cfg.min_chars,
        )
        self.keys = sorted(keys)

    def in_books(self, books: frozenset[int]) -> list[VerseKey]:
        return [k for k in self.keys if k[0] in books]

    def has_query(self, key: VerseKey) -> bool:
        return len(self.bbe.get(key, "").split()) >= MIN_QUERY_WORDS


def bible_collection(
    name: str, corpus: BibleCorpus, books: frozenset[int], n_queries: int, cfg: PrepareSettings, seed: int
) -> Collection:
    """Documents = every aligned target verse of ``books``; queries = BBE text of sampled verses (rel 1)."""
    keys = corpus.in_books(books)
    candidates = [k for k in keys if corpus.has_query(k)]
    rng = seeds.rng(seed, "prepare", name, "queries")
    n = min(n_queries, len(candidates))
    picked = sorted(candidates[i] for i in rng.choice(len(candidates), size=n, replace=False))
    queries = [(verse_id(k), _make_query(corpus.bbe[k], cfg, rng)) for k in picked]
    docs = [(verse_id(k), corpus.xx[k]) for k in keys]
    qrels = [(verse_id(k), verse_id(k), 1) for k in picked]
    coll = Collection(name, queries, docs, qrels, {"books": sorted(books), "sampled_from": len(candidates)})
    coll.validate()
    return coll


def udhr_collection(
    lang: str, distractor_pool: list[tuple[str, str]], cfg: PrepareSettings, seed: int, udhr_root: Path
) -> Collection:
    """UDHR paragraphs as documents (+ in_domain-test distractor documents); English paragraphs as queries.

    Graded qrels: the aligned paragraph is rel 2, the other paragraphs of the same article rel 1. The
    distractors are a seeded sample of ``distractor_pool`` (the in_domain test documents, in their order).
    """
    pairs, skipped = udhr.align_declaration(lang, udhr_root)
    rng = seeds.rng(seed, "prepare", "shifted_register", "queries")
    queries = [(p.doc_id, _make_query(p.en, cfg, rng)) for p in pairs]
    docs = [(p.doc_id, p.xx) for p in pairs]
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
    coll = Collection(
        "shifted_register",
        queries,
        docs,
        qrels,
        {"udhr_articles_skipped": skipped, "udhr_paragraphs": len(pairs), "distractors": n_distractors},
    )
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


def _split_off(keys: list[VerseKey], n: int, rng) -> tuple[list[VerseKey], list[VerseKey]]:
    """Seeded held-out sample of ``n`` keys → (rest, held_out), both sorted."""
    n = min(n, len(keys) // 2)
    held = set(rng.choice(len(keys), size=n, replace=False).tolist())
    return [k for i, k in enumerate(keys) if i not in held], [k for i, k in enumerate(keys) if i in held]


def prepare(
    cfg: PrepareSettings,
    seed: int,
    language: Language,
    udhr_root: Path = udhr.DEFAULT_UDHR_DIR,
    corpora_root: Path = CORPORA_DIR,
) -> Prepared:
    """Build every split, training file and pool for ``language`` (pure: no files written).

    ``cfg`` is the ``prepare`` params section, ``seed`` the root seed, ``language`` the registry entry.
    """
    lang = language.code
    english = EnglishBible()
    train, dev = english.source_split(cfg, seed)
    english_pairs = [(verse_id(k), english.bbe[k], english.web[k]) for k in train]
    english_dev = [(verse_id(k), english.bbe[k], english.web[k]) for k in dev]
    if language.corpus == "bible":
        prepared = _bible_part(language, cfg, seed, english, train, dev)
    elif language.corpus == "files":
        prepared = _files_part(language, cfg, seed, corpora_root)
    else:
        reason = f"lang {lang!r} is UDHR-only: it has no Bible text, so only shifted_register exists"
        prepared = Prepared(lang, {}, {"in_domain": reason, "shifted_genre": reason}, [], [], [], [], [], [])
    prepared.english_pairs, prepared.english_dev = english_pairs, english_dev
    if "shifted_register" not in prepared.collections:
        if language.has_udhr:
            distractors = prepared.collections["in_domain"].docs if "in_domain" in prepared.collections else []
            prepared.collections["shifted_register"] = udhr_collection(lang, distractors, cfg, seed, udhr_root)
            prepared.unavailable.pop("shifted_register", None)
        else:
            prepared.unavailable.setdefault("shifted_register", f"lang {lang!r} has no UDHR text")
    for split, source in cfg.external.items():
        prepared.collections[split] = load_external(split, source)
        prepared.unavailable.pop(split, None)
    if not prepared.collections:
        raise DataFileError(f"lang {lang!r} has no test collection: {prepared.unavailable}")
    prepared.alignment["dropped_test_duplicates"] = drop_test_duplicates(prepared)
    check_no_leakage(prepared)
    return prepared


def _bible_part(
    language: Language, cfg: PrepareSettings, seed: int, english: EnglishBible, train: list, dev: list
) -> Prepared:
    """Bible splits, seed bitext, dev sets and target-genre pool of a ``corpus: bible`` language."""
    corpus = BibleCorpus(language, cfg, english)
    aligned = set(corpus.keys)
    collections = {
        "in_domain": bible_collection("in_domain", corpus, IN_DOMAIN_TEST_BOOKS, cfg.queries_in_domain, cfg, seed),
        "shifted_genre": bible_collection(
            "shifted_genre", corpus, SHIFTED_GENRE_TEST_BOOKS, cfg.queries_shifted_genre, cfg, seed
        ),
    }
    bitext = [(verse_id(k), corpus.web[k], corpus.xx[k], "seed", "source") for k in train if k in aligned]
    pool, gdev = _split_off(
        corpus.in_books(TARGET_GENRE_POOL_BOOKS), cfg.genre_dev_size, seeds.rng(seed, "prepare", "genre_dev")
    )
    mono = [(verse_id(k), corpus.xx[k]) for k in pool]
    mono_en = [(verse_id(k), corpus.web[k]) for k in pool]
    genre_dev = [(verse_id(k), corpus.web[k], corpus.xx[k]) for k in gdev]
    source_dev = [(verse_id(k), corpus.bbe[k], corpus.web[k], corpus.xx[k]) for k in dev if k in aligned]
    return Prepared(
        language.code,
        collections,
        {},
        bitext,
        [],
        [],
        source_dev,
        genre_dev,
        mono,
        corpus.report.as_dict(),
        mono_en=mono_en,
    )


def _files_part(language: Language, cfg: PrepareSettings, seed: int, corpora_root: Path) -> Prepared:
    """Seed bitext, dev sets, pool and test collections of a ``corpus: files`` language (module corpora)."""
    corpus = corpora.read_file_corpus(
        language.code, corpora_root, min_chars=cfg.min_chars, max_ratio=cfg.pair_length_ratio
    )
    rest, held = _split_off(corpus.bitext, cfg.source_dev_size, seeds.rng(seed, "prepare", "source_dev"))
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
        for qid, text in coll.queries:
            ids.add(qid)
            texts.add(normalise(text))
        for docid, text in coll.docs:
            ids.add(docid)
            texts.add(normalise(text))
    return ids, texts


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


def is_test_id(doc_id: str) -> bool:
    """True for ids of test books and UDHR paragraphs, whatever was sampled into a collection."""
    if doc_id.startswith("udhr:"):
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
