"""Augmentation, in one place: the pools, their filters, the draw into the training bitext, the tag and the metrics.

The training bitext is a seeded sample of the source-domain seed bitext (:func:`sample`, :func:`filter_bitext`)
plus the rows that ``aug`` draws from the augmentation pools (:data:`pipeline.config.AUG_ORIGINS`; ``both``: half
of ``augment.size`` from each). Rows are ``id, en, xx, origin, domain``; ``origin`` is ``seed`` or a pool's name.

Each augmentation stage writes a *pool* larger than what is used (:func:`write_pools`; :data:`POOL_COLUMNS`:
``lid`` is the language ID's label for the pool's machine-written side). ``bitext`` runs the filters below on the
pool, in this order, and samples ``augment.size`` of the rows that pass (:func:`draw_augmentation`, seeded by
``seed`` and ``distill.seed``): a removed row is replaced from the pool, so every ``aug`` trains on the same number
of augmentation rows and every replicate seed on a different sample. The filters are the same for every origin;
those that look for MT failures look at the side a machine wrote (:data:`MT_SIDE`: the English side of
back-translation and synthesis, the target side of forward translation; the parallel control, written by no
machine, is checked like back-translation, whose verses it shares). The first that rejects a row is counted:

- ``empty`` (always on): an empty side.
- ``test_text`` (always on): either side equals a test query or document (normalised).
- ``degenerate``: the machine-written side has a repeated n-gram loop (:func:`pipeline.mt.is_degenerate`), the
  commonest failure of a weak MT model; a looping side teaches the student to align real text with filler.
- ``length_ratio``: the sides' word-count ratio, either way, is above ``max_len_ratio`` (a truncated or
  hallucinated translation; the length-ratio rule of Moses' ``clean-corpus-n``).
- ``copy``: at least :data:`COPY_SHARE` of the machine-written side's words occur in the other side: the MT model
  copied its input instead of translating it (copies in training data hurt NMT, Ott et al., 2018).
- ``language``: the language ID does not give the machine-written side its language (English, or the target
  language for forward translation): untranslated or mixed output.
- ``duplicate``: the target side equals a seed-bitext row's or an earlier kept pool row's: a repeat adds nothing.
- ``round_trip`` (``augment.round_trip_keep`` < 1, the remedy for noisy pairs): the row is outside the share of its
  machine-made pool's kept rows with the best round-trip chrF (:mod:`pipeline.augment.round_trip`).

``empty`` and ``test_text`` are always on: an empty side cannot be trained on and test text must never be.
The others are ``augment.filters``. Every check here costs milliseconds, so changing a filter re-runs only
``bitext``; the language ID (:func:`pipeline.augment.lid.train_bible_lid`, ``augment.lid_verses`` verses per language),
which takes seconds to train, labels the machine-written side once, in the stage that writes the pool, with the
same seed in every pool stage, so every origin is judged by the same model.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.augment.lid import train_bible_lid
from pipeline.augment.round_trip import BACK, keep_best
from pipeline.augment.round_trip import VERDICT as ROUND_TRIP
from pipeline.config import languages, paths, seeds
from pipeline.config.conditions import AUG_FILTERS, AUG_FILTERS_ALWAYS, AUG_ORIGINS
from pipeline.config.params import ParamsError
from pipeline.data.splits import BITEXT_COLUMNS, is_test_id, normalise
from pipeline.io import DataFileError, read_tsv, write_tsv
from pipeline.mt.backtranslate import backtranslation_metrics
from pipeline.mt.text import is_degenerate

#: Columns of an augmentation pool file.
POOL_COLUMNS = (*BITEXT_COLUMNS, "lid")
#: The pools (origins), in the order of :data:`pipeline.config.AUG_ORIGINS`; ``both`` enters them in this order.
ORIGINS = tuple(dict.fromkeys(o for picks in AUG_ORIGINS.values() for o in picks))
#: The stage that writes each pool (to :data:`pipeline.config.paths.AUG_FILES`).
POOL_STAGE = {
    "backtranslation": "backtranslate",
    "synthetic": "synthesize",
    "parallel": "backtranslate",
    "forward": "forward_translate",
}
#: The side of each pool's rows that a machine wrote (``en`` or ``xx``): what the MT filters and the language ID
#: look at. ``parallel`` has none; it is checked like the back-translation pool whose verses it shares.
MT_SIDE = {"backtranslation": "en", "synthetic": "en", "parallel": "en", "forward": "xx"}
#: Why a pool built from the pool verses' real English has no rows: a file corpus has no such English.
NO_ENGLISH = (
    "the language's monolingual pool has no English side (a file corpus: mono.tsv has no en column), "
    "so {origin} exists only for Bible languages"
)
#: What each pool's rows are made from: the target-genre pool's own text (``pool``), LLM lines (``llm``), or the pool
#: verses' real (WEB) English (``english``, which only Bible languages have).
POOL_SOURCE = {"backtranslation": "pool", "synthetic": "llm", "parallel": "english", "forward": "english"}
#: ``copy``: share of the English side's words found in the target side.
COPY_SHARE = 0.5
#: Tagged back-translation (Caswell et al., 2019): prefixed to the target side of augmentation rows in training only.
#: Not a special token of the XLM-R tokenizer: it becomes three ordinary sub-words (``▁<``, ``BT``, ``>``).
TAG = "<BT>"
ENGLISH = languages.english().code

_WORD = re.compile(r"\w+", re.UNICODE)


# -- the pool stages --------------------------------------------------------------------------------------------


def write_pools(
    pools: Mapping[str, Sequence[tuple]], stats: dict[str, Any], decoding: Any, *, lid_verses: int, seed: int
) -> dict[str, dict]:
    """Write each pool (``origin -> rows`` of ``BITEXT_COLUMNS``) to its file with the ``lid`` label.

    One language ID (``lid_verses`` Bible verses per language, seeded by ``seed`` alone: every pool stage trains
    the same model) labels every machine-written side (:data:`MT_SIDE`). The first pool is the one the MT model
    translated (``stats``, ``decoding``). Returns ``translation`` (its
    :func:`pipeline.mt.backtranslation_metrics`) and ``lid`` (the
    language ID's languages and held-out accuracy).
    """
    lid, lid_info = train_bible_lid(lid_verses, seeds.rng(seed, "augment", "lid"))
    for origin, rows in pools.items():
        side = BITEXT_COLUMNS.index(MT_SIDE[origin])
        labels = lid.predict([r[side] for r in rows])
        write_tsv(paths.AUG_FILES[origin], [(*r, label) for r, label in zip(rows, labels, strict=True)], POOL_COLUMNS)
    translated = next(iter(pools.values()))
    return {"translation": backtranslation_metrics(decoding, translated, stats), "lid": lid_info}


def has_rows(origin: str) -> bool:
    """The pool of ``origin`` exists and has at least one row (a header line, then more)."""
    path = paths.AUG_FILES[origin]
    if not path.exists():
        return False
    with open(path, encoding="utf-8") as fh:
        return bool(fh.readline()) and bool(fh.readline().strip())


def read_augmentation(origin: str) -> pd.DataFrame:
    """The pool of ``origin`` (:data:`POOL_COLUMNS`); an error naming the stage that writes it if missing or empty."""
    path, stage = paths.AUG_FILES[origin], POOL_STAGE[origin]
    if not path.exists():
        raise DataFileError(f"aug needs {path}, which the `{stage}` stage writes (dvc repro {stage})")
    df = read_tsv(path, POOL_COLUMNS, allow_empty=True)
    if df.empty:
        why = NO_ENGLISH if POOL_SOURCE[origin] == "english" else "see metrics/{stage}.json"
        why = why.format(origin=origin, stage=stage)
        raise DataFileError(f"aug {origin}: {path} has no rows: {why}")
    return df


def pool_verses(pool: pd.DataFrame, size: int, seed: int, lang: str) -> pd.DataFrame:
    """The ``size`` target-genre pool verses that back-translation, the parallel control and forward translation
    share (one seed stream, so every stage picks the same verses); an error naming ``augment.pool.backtranslation``
    if the pool is smaller."""
    if size > len(pool):
        raise ParamsError(
            f"augment.pool.backtranslation={size} but the target-genre pool of {lang!r} has only {len(pool)} verses"
        )
    picked = sample(pool, size, seeds.rng(seed, "backtranslate", "sample"), "augment.pool.backtranslation")
    assert not picked["id"].map(is_test_id).any(), "test verse in the monolingual pool"
    return picked


# -- the seed bitext --------------------------------------------------------------------------------------------


def sample(df: pd.DataFrame, n: int, rng: np.random.Generator, what: str) -> pd.DataFrame:
    """``n`` rows of ``df`` drawn (``rng``) without replacement, in order; an error naming ``what`` if too few."""
    if n > len(df):
        raise DataFileError(f"{what}: asked for {n} rows but only {len(df)} are available")
    idx = np.sort(rng.choice(len(df), size=n, replace=False))
    return df.iloc[idx].reset_index(drop=True)


def filter_bitext(df: pd.DataFrame, test_texts: set[str], max_len_ratio: float) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop empty sides, extreme length ratios, duplicates and any row carrying test text; count each."""
    counts: dict[str, int] = {}

    def drop(mask: pd.Series, name: str) -> None:
        nonlocal df
        counts[name] = int(mask.sum())
        df = df[~mask]

    en_words = df["en"].str.split().str.len().fillna(0)
    xx_words = df["xx"].str.split().str.len().fillna(0)
    drop((en_words == 0) | (xx_words == 0), "empty_side")
    en_words, xx_words = en_words[df.index], xx_words[df.index]
    ratio = np.maximum(en_words / xx_words, xx_words / en_words)
    drop(ratio > max_len_ratio, "length_ratio")
    drop(df.duplicated(subset=["en", "xx"]) | df["id"].duplicated(), "duplicate")
    drop(df["xx"].map(normalise).isin(test_texts), "test_text")  # target side: the stage asserts this is 0
    drop(df["en"].map(normalise).isin(test_texts), "test_text_en")  # a translation that happens to equal a query
    return df.reset_index(drop=True), counts


# -- the pool filters and the draw ------------------------------------------------------------------------------


def copy_share(written: str, source: str) -> float:
    """Share of the machine-written side's words (lowercased) that also occur in the side it was made from."""
    written_words = _WORD.findall(written.lower())
    source_words = set(_WORD.findall(source.lower()))
    return sum(w in source_words for w in written_words) / len(written_words) if written_words else 0.0


@dataclass(frozen=True)
class AugmentFilter:
    """The filter chain; ``active`` names the optional filters that are on (see the module docstring)."""

    active: frozenset[str]
    max_len_ratio: float
    target: str  # the target language's code: what the language ID should say for a machine-written target side
    round_trip_keep: float  # the remedy: share of a machine-made pool's kept rows kept, the best by round-trip chrF
    blocked: frozenset[str] = frozenset()  # normalised test queries and documents
    seed_targets: frozenset[str] = frozenset()  # normalised target sides of the seed bitext

    def __post_init__(self) -> None:
        unknown = set(self.active) - set(AUG_FILTERS)
        if unknown:
            raise ValueError(f"unknown augmentation filter(s) {sorted(unknown)}; expected some of {AUG_FILTERS}")

    def reason(self, en: str, xx: str, lid: str, seen: set[str], mt_side: str) -> str | None:
        """The first filter that rejects the row, or None; ``seen`` holds the target sides already kept, ``mt_side``
        is the side a machine wrote (:data:`MT_SIDE`) and ``lid`` the language ID's label for it."""
        on = self.active
        en_n, xx_n = len(en.split()), len(xx.split())
        if not en_n or not xx_n:
            return "empty"
        if normalise(en) in self.blocked or normalise(xx) in self.blocked:
            return "test_text"
        written, other = (en, xx) if mt_side == "en" else (xx, en)
        if "degenerate" in on and is_degenerate(written):
            return "degenerate"
        if "length_ratio" in on and max(en_n / xx_n, xx_n / en_n) > self.max_len_ratio:
            return "length_ratio"
        if "copy" in on and copy_share(written, other) >= COPY_SHARE:
            return "copy"
        if "language" in on and lid != (ENGLISH if mt_side == "en" else self.target):
            return "language"
        if "duplicate" in on and (normalise(xx) in seen or normalise(xx) in self.seed_targets):
            return "duplicate"
        return None

    def verdicts(self, pool: pd.DataFrame, origin: str) -> list[str]:
        """``kept`` or the rejecting filter's name, per row of ``origin``'s ``pool`` (in pool order: the first copy
        is kept)."""
        seen: set[str] = set()
        out = []
        for en, xx, lid in zip(pool["en"], pool["xx"], pool["lid"], strict=True):
            verdict = self.reason(en, xx, lid, seen, MT_SIDE[origin])
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


def draw_augmentation(
    aug: str,
    filters: AugmentFilter,
    size: int,
    *,
    seed: int,
    replicate: int,
    round_trip: dict[tuple[str, str], float] | None,
) -> tuple[list[pd.DataFrame], dict[str, dict]]:
    """The rows ``aug`` adds to the bitext and the metrics of every pool.

    ``size // len(origins)`` rows from each of ``aug``'s origins (one frame of ``BITEXT_COLUMNS`` each, in
    :data:`ORIGINS` order), drawn among the rows ``filters`` keep with the seed stream ``(seed, "bitext", origin,
    replicate)``. Every pool that has rows is counted (:func:`pool_metrics`), whichever ``aug`` is. With
    ``filters.round_trip_keep`` < 1, ``round_trip`` (``(origin, id) -> chrF``,
    :func:`pipeline.augment.round_trip.read_scores`) ranks the kept rows of each machine-made pool.
    """
    origins = AUG_ORIGINS[aug]
    parts, metrics = [], {}
    for origin in ORIGINS:
        if origin not in origins and not has_rows(origin):
            continue
        pool = read_augmentation(origin)
        if pool["xx"].map(normalise).isin(filters.blocked).any():
            raise AssertionError(f"the {origin} pool carries test-split target text: an upstream filter failed")
        verdicts = filters.verdicts(pool, origin)
        if filters.round_trip_keep < 1 and origin in BACK:
            scores = [round_trip[(origin, i)] for i in pool["id"]]
            verdicts = keep_best(verdicts, scores, filters.round_trip_keep)
        entered = pool.iloc[:0]
        if origin in origins:
            rng = seeds.rng(seed, "bitext", origin, str(replicate))
            entered = sample_kept(pool, verdicts, size // len(origins), rng, origin)
            parts.append(entered[list(BITEXT_COLUMNS)])
        metrics[origin] = pool_metrics(filters, verdicts, entered, MT_SIDE[origin])
    return parts, metrics


def tag_augmentation(df: pd.DataFrame, tag: str = TAG) -> pd.DataFrame:
    """Prefix ``tag`` to the target side of every row whose origin is not ``seed``."""
    aug = df["origin"] != "seed"
    return df.assign(xx=df["xx"].where(~aug, tag + " " + df["xx"]))


def pool_metrics(filters: AugmentFilter, verdicts: Sequence[str], entered: pd.DataFrame, mt_side: str) -> dict:
    """Pool size, rows removed per filter (those that are on), rows kept, rows entered and the loop rate of their
    machine-written side (``mt_side``)."""
    counts = Counter(verdicts)
    on = [f for f in AUG_FILTERS if f in AUG_FILTERS_ALWAYS or f in filters.active]
    on += [ROUND_TRIP] if filters.round_trip_keep < 1 else []
    return {
        "pool": len(verdicts),
        "removed": {f: counts.get(f, 0) for f in on},
        "kept_in_pool": counts.get("kept", 0),
        "entered": len(entered),
        "degenerate_rate_entered": round(float(np.mean([is_degenerate(e) for e in entered[mt_side]])), 4)
        if len(entered)
        else None,
    }
