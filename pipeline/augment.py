"""The augmentation pools: their filters, the replicate sample that enters the bitext, the tag and the metrics.

Each augmentation stage writes a *pool* larger than what is used (``id, en, xx, origin, domain, en_lang``;
``en_lang`` is the language ID's label for the English side). ``bitext`` runs the filters below on the pool, in
this order, and samples ``augment.size`` of the rows that pass (seeded by ``distill.seed``): a removed row is
replaced from the pool, so every ``aug`` trains on the same number of augmentation rows and every replicate seed
on a different sample. The filters are the same for every origin (back-translation, synthetic, parallel); the
first that rejects a row is counted:

- ``empty`` (always on): an empty side.
- ``test_text`` (always on): either side equals a test query or document (normalised).
- ``degenerate``: the English side has a repeated n-gram loop (:func:`pipeline.mt.is_degenerate`), the commonest
  failure of a weak MT model; a looping side teaches the student to align real text with filler.
- ``length_ratio``: the sides' word-count ratio, either way, is above ``max_len_ratio`` (a truncated or
  hallucinated translation; the length-ratio rule of Moses' ``clean-corpus-n``).
- ``copy``: at least :data:`COPY_SHARE` of the English side's words occur in the target side: the MT model copied
  its input instead of translating it (copies in training data hurt NMT, Ott et al., 2018).
- ``en_language``: the language ID does not say English for the English side (untranslated or mixed output).
- ``duplicate``: the target side equals a seed-bitext row's or an earlier kept pool row's: a repeat adds nothing.

``empty`` and ``test_text`` are always on: an empty side cannot be trained on and test text must never be.
The others are ``augment.filters``. Every check here costs milliseconds, so changing a filter re-runs only
``bitext``; the language ID (:func:`pipeline.lid.train_bible_lid`, ``augment.lid_verses`` verses per language),
which takes seconds to train, labels the English side once, in the stage that writes the pool, with the same
seed in every pool stage, so every origin is judged by the same model.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.data import languages
from pipeline.data.splits import BITEXT_COLUMNS, normalise
from pipeline.io import DataFileError
from pipeline.mt.text import is_degenerate

#: Columns of an augmentation pool file.
POOL_COLUMNS = (*BITEXT_COLUMNS, "en_lang")
ALWAYS = ("empty", "test_text")
FILTERS = ("empty", "test_text", "degenerate", "length_ratio", "copy", "en_language", "duplicate")
#: ``copy``: share of the English side's words found in the target side.
COPY_SHARE = 0.5
#: Tagged back-translation (Caswell et al., 2019): prefixed to the target side of augmentation rows in training only.
#: Not a special token of the XLM-R tokenizer: it becomes three ordinary sub-words (``▁<``, ``BT``, ``>``).
TAG = "<BT>"
ENGLISH = languages.english().code

_WORD = re.compile(r"\w+", re.UNICODE)


def copy_share(en: str, xx: str) -> float:
    """Share of the English side's words (lowercased) that also occur in the target side."""
    en_words = _WORD.findall(en.lower())
    xx_words = set(_WORD.findall(xx.lower()))
    return sum(w in xx_words for w in en_words) / len(en_words) if en_words else 0.0


@dataclass(frozen=True)
class AugmentFilter:
    """The filter chain; ``active`` names the optional filters that are on (see the module docstring)."""

    active: frozenset[str]
    max_len_ratio: float
    blocked: frozenset[str] = frozenset()  # normalised test queries and documents
    seed_targets: frozenset[str] = frozenset()  # normalised target sides of the seed bitext

    def __post_init__(self) -> None:
        unknown = set(self.active) - set(FILTERS)
        if unknown:
            raise ValueError(f"unknown augmentation filter(s) {sorted(unknown)}; expected some of {FILTERS}")

    def reason(self, en: str, xx: str, en_lang: str, seen: set[str]) -> str | None:
        """The first filter that rejects the row, or None; ``seen`` holds the target sides already kept."""
        on = self.active
        en_n, xx_n = len(en.split()), len(xx.split())
        if not en_n or not xx_n:
            return "empty"
        if normalise(en) in self.blocked or normalise(xx) in self.blocked:
            return "test_text"
        if "degenerate" in on and is_degenerate(en):
            return "degenerate"
        if "length_ratio" in on and max(en_n / xx_n, xx_n / en_n) > self.max_len_ratio:
            return "length_ratio"
        if "copy" in on and copy_share(en, xx) >= COPY_SHARE:
            return "copy"
        if "en_language" in on and en_lang != ENGLISH:
            return "en_language"
        if "duplicate" in on and (normalise(xx) in seen or normalise(xx) in self.seed_targets):
            return "duplicate"
        return None

    def verdicts(self, pool: pd.DataFrame) -> list[str]:
        """``kept`` or the rejecting filter's name, per row of ``pool`` (in pool order: the first copy is kept)."""
        seen: set[str] = set()
        out = []
        for en, xx, en_lang in zip(pool["en"], pool["xx"], pool["en_lang"], strict=True):
            verdict = self.reason(en, xx, en_lang, seen)
            if verdict is None:
                seen.add(normalise(xx))
            out.append(verdict or "kept")
        return out


def sample_kept(
    pool: pd.DataFrame, verdicts: Sequence[str], n: int, rng: np.random.Generator, origin: str
) -> pd.DataFrame:
    """``n`` rows drawn (``rng``) from the rows the filters kept, in pool order; an error naming the counts if short."""
    kept = pool[[v == "kept" for v in verdicts]]
    if n > len(kept):
        removed = {k: v for k, v in Counter(verdicts).items() if k != "kept"}
        raise DataFileError(
            f"aug {origin}: {n} rows asked for but only {len(kept)} of the pool's {len(pool)} pass the filters "
            f"(removed: {removed}); raise augment.pool or lower augment.size"
        )
    idx = np.sort(rng.choice(len(kept), size=n, replace=False))
    return kept.iloc[idx].reset_index(drop=True)


def tag_augmentation(df: pd.DataFrame, tag: str = TAG) -> pd.DataFrame:
    """Prefix ``tag`` to the target side of every row whose origin is not ``seed``."""
    aug = df["origin"] != "seed"
    return df.assign(xx=df["xx"].where(~aug, tag + " " + df["xx"]))


def pool_metrics(filters: AugmentFilter, verdicts: Sequence[str], entered: pd.DataFrame) -> dict:
    """Pool size, rows removed per filter (those that are on), rows kept, rows entered and their loop rate."""
    counts = Counter(verdicts)
    on = [f for f in FILTERS if f in ALWAYS or f in filters.active]
    return {
        "pool": len(verdicts),
        "removed": {f: counts.get(f, 0) for f in on},
        "kept_in_pool": counts.get("kept", 0),
        "entered": len(entered),
        "degenerate_rate_entered": round(float(np.mean([is_degenerate(e) for e in entered["en"]])), 4)
        if len(entered)
        else None,
    }
