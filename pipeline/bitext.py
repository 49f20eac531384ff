"""The training bitext: a seeded sample of the source-domain seed bitext plus the augmentation ``aug`` picks.

Rows are ``id, en, xx, origin, domain``. ``origin`` is ``seed``, ``backtranslation`` or ``synthetic``; every
filter is counted so the metrics say what was removed and why.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline import paths
from pipeline.data.splits import BITEXT_COLUMNS, normalise
from pipeline.io import DataFileError, read_tsv

#: Where each augmentation comes from, and the stage that writes it.
AUG_SOURCES = {
    "backtranslation": (paths.AUG_FILES["backtranslation"], "backtranslate"),
    "synthetic": (paths.AUG_FILES["synthetic"], "synthesize"),
}


def aug_origins(aug: str) -> list[str]:
    return {
        "none": [],
        "backtranslation": ["backtranslation"],
        "synthetic": ["synthetic"],
        "both": ["backtranslation", "synthetic"],
    }[aug]


def read_augmentation(origin: str) -> pd.DataFrame:
    path, stage = AUG_SOURCES[origin]
    if not path.exists():
        raise DataFileError(f"aug needs {path}, which the `{stage}` stage writes (dvc repro {stage})")
    return read_tsv(path, BITEXT_COLUMNS, allow_empty=True)


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
