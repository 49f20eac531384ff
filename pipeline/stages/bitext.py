"""Stage ``bitext``: the training bitext = seeded seed-bitext sample + the augmentation chosen by ``aug``.

Writes ``data/bitext/train.tsv`` (``id, en, xx, origin, domain``) and ``metrics/bitext.json``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline import seeds
from pipeline.bitext import aug_origins, filter_bitext, read_augmentation, sample
from pipeline.data import splits, store
from pipeline.data.splits import BITEXT_COLUMNS, mean_words, normalise
from pipeline.io import write_json, write_tsv
from pipeline.params import load_params
from pipeline.stages import run_stage

BITEXT_PATH = Path("data/bitext/train.tsv")
MAX_LEN_RATIO = 3.0


def test_texts() -> set[str]:
    """Normalised text of every query and document of every prepared split."""
    texts: set[str] = set()
    for split in store.manifest()["splits"]:
        coll = store.read_collection(split)
        texts.update(coll.docs["text"].map(normalise))
        texts.update(coll.queries["text"].map(normalise))
    return texts


def main() -> None:
    params = load_params()
    if not params.has_bible:
        reason = f"lang {params.lang!r} is UDHR-only: no bitext, so no student (skipped by design)"
        write_tsv(BITEXT_PATH, [], BITEXT_COLUMNS)
        write_json("metrics/bitext.json", {"aug": params.aug, "available": False, "reason": reason, "rows": 0})
        return
    rng = seeds.rng(params.seed, "bitext", str(params.distill.seed))
    parts = [sample(store.read_file("bitext"), params.bitext.seed_size, rng, "bitext.seed_size")]
    for origin in aug_origins(params.aug):
        parts.append(read_augmentation(origin))
    df, filtered = filter_bitext(pd.concat(parts, ignore_index=True), test_texts(), MAX_LEN_RATIO)
    if df.empty:
        raise ValueError(f"bitext is empty after filtering: {filtered}")
    leaked = df["id"].map(splits.is_test_id)
    assert not leaked.any(), f"test ids in bitext: {df.loc[leaked, 'id'].tolist()[:5]}"
    write_tsv(BITEXT_PATH, df[list(BITEXT_COLUMNS)].itertuples(index=False, name=None), BITEXT_COLUMNS)
    write_json(
        "metrics/bitext.json",
        {
            "aug": params.aug,
            "rows": len(df),
            "rows_by_origin": {k: int(v) for k, v in df["origin"].value_counts().sort_index().items()},
            "filtered": filtered,
            "en_words_mean": mean_words(df["en"]),
            "xx_words_mean": mean_words(df["xx"]),
        },
    )


if __name__ == "__main__":
    run_stage(main)
