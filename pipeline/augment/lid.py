"""Language identification for filtering LLM output: a character n-gram classifier trained here.

No maintained offline detector covers Swahili, Tagalog and Chichewa together with a licence-free model in a
registry package, so the pipeline trains one: TF-IDF over character 1–4-grams (within word boundaries) and a
multinomial naive Bayes classifier, on Bible verses of every language whose registry entry has ``lid: true``
(labelled with its code) plus English (WEB). Only
non-test books are read (:data:`~pipeline.data.books.TEST_BOOKS` never are), and a held-out slice of those
verses gives the accuracy reported in the metrics.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import make_pipeline

from pipeline.config import languages
from pipeline.data import bible
from pipeline.data.books import SOURCE_TRAIN_BOOKS, TARGET_GENRE_POOL_BOOKS, TEST_BOOKS

ENGLISH = languages.english().code
LID_BOOKS = (SOURCE_TRAIN_BOOKS | TARGET_GENRE_POOL_BOOKS) - TEST_BOOKS
assert not LID_BOOKS & TEST_BOOKS


class LanguageID:
    """``predict(texts) -> labels`` over the languages it was fitted on."""

    def __init__(self) -> None:
        self.model = make_pipeline(
            TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True, min_df=2, lowercase=True),
            MultinomialNB(alpha=0.01),
        )
        self.labels: list[str] = []

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> LanguageID:
        if len(set(labels)) < 2:
            raise ValueError("language ID needs text of at least two languages")
        self.model.fit(list(texts), list(labels))
        self.labels = sorted(set(labels))
        return self

    def predict(self, texts: Sequence[str]) -> list[str]:
        return [str(x) for x in self.model.predict(list(texts))] if len(texts) else []

    def accuracy(self, texts: Sequence[str], labels: Sequence[str]) -> float:
        return float(np.mean(np.array(self.predict(texts)) == np.array(labels)))


def bible_lid_data(per_lang: int, rng: np.random.Generator, langs: Sequence[str] | None = None):
    """``per_lang`` verses of each language (default: the registry's ``lid: true`` ones) from non-test books.

    Returns (texts, labels); English (WEB) is always one of the languages.
    """
    langs = sorted(langs or languages.lid_codes())
    texts, labels = [], []
    for lang in [*langs, ENGLISH]:
        verses = bible.read_bible(f"{ENGLISH}_web" if lang == ENGLISH else lang, set(LID_BOOKS))
        keys = sorted(k for k, v in verses.items() if v.strip() and k[0] not in TEST_BOOKS)
        pick = rng.choice(len(keys), size=min(per_lang, len(keys)), replace=False)
        texts.extend(verses[keys[i]] for i in sorted(pick))
        labels.extend([lang] * len(pick))
    return texts, labels


def train_bible_lid(per_lang: int, rng: np.random.Generator, heldout: float = 0.1) -> tuple[LanguageID, dict]:
    """Fit on Bible verses of every language; report accuracy on a held-out share of them."""
    texts, labels = bible_lid_data(per_lang, rng)
    order = rng.permutation(len(texts))
    n_test = int(len(texts) * heldout)
    test, train = order[:n_test], order[n_test:]
    lid = LanguageID().fit([texts[i] for i in train], [labels[i] for i in train])
    acc = lid.accuracy([texts[i] for i in test], [labels[i] for i in test]) if n_test else float("nan")
    return lid, {"languages": lid.labels, "train_verses": len(train), "heldout_accuracy": round(acc, 4)}
