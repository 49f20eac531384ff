"""The training bitext: a seeded sample of the source-domain seed bitext plus the augmentation ``aug`` picks.

Rows are ``id, en, xx, origin, domain``. ``origin`` is ``seed``, ``backtranslation``, ``synthetic`` or
``parallel``; every filter is counted so the metrics say what was removed and why. The augmentation pools and
their filters: :mod:`pipeline.augment`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline import paths
from pipeline.augment import POOL_COLUMNS
from pipeline.data.splits import normalise
from pipeline.io import DataFileError, read_tsv

#: Where each augmentation pool comes from, and the stage that writes it.
AUG_SOURCES = {
    "backtranslation": (paths.AUG_FILES["backtranslation"], "backtranslate"),
    "synthetic": (paths.AUG_FILES["synthetic"], "synthesize"),
    "parallel": (paths.AUG_FILES["parallel"], "backtranslate"),
}


def aug_origins(aug: str) -> list[str]:
    """The pools ``aug`` draws from (``both``: half of ``augment.size`` from each)."""
    return {
        "none": [],
        "backtranslation": ["backtranslation"],
        "synthetic": ["synthetic"],
        "both": ["backtranslation", "synthetic"],
        "parallel": ["parallel"],
    }[aug]


def has_rows(origin: str) -> bool:
    """The pool of ``origin`` exists and has at least one row (a header line, then more)."""
    path = AUG_SOURCES[origin][0]
    if not path.exists():
        return False
    with open(path, encoding="utf-8") as fh:
        return bool(fh.readline()) and bool(fh.readline().strip())


def read_augmentation(origin: str) -> pd.DataFrame:
    """The pool of ``origin`` (:data:`pipeline.augment.POOL_COLUMNS`); an error naming the stage if missing or empty."""
    path, stage = AUG_SOURCES[origin]
    if not path.exists():
        raise DataFileError(f"aug needs {path}, which the `{stage}` stage writes (dvc repro {stage})")
    df = read_tsv(path, POOL_COLUMNS, allow_empty=True)
    if df.empty:
        why = (
            "the language's monolingual pool has no English side (a file corpus: mono.tsv has no en column), "
            "so the parallel control exists only for Bible languages"
            if origin == "parallel"
            else f"see metrics/{stage}.json"
        )
        raise DataFileError(f"aug {origin}: {path} has no rows: {why}")
    return df


def sample(df: pd.DataFrame, n: int, rng: np.random.Generator, what: str) -> pd.DataFrame:
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
