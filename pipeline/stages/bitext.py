"""Stage ``bitext``: the training bitext = seeded seed-bitext sample + the augmentation chosen by ``aug``.

``aug``: ``none`` · ``backtranslation`` · ``synthetic`` · ``both`` (half of ``augment.size`` from each of those
two) · ``forward`` (the back-translation pool's verses: their real English with its machine translation into the
target language, the noise on the student's side) · ``parallel`` (the same verses with their real English: the
oracle control). Each pool
goes through the filters of :mod:`pipeline.augment.pools`; ``augment.size`` rows are drawn from those that pass, seeded
by ``seed`` and ``distill.seed``, so replicate seeds resample the augmentation. The pools are always built and
cached, so switching ``aug``, ``augment.size`` (within the pool) or a filter re-runs only this stage and the ones
after it. ``bitext.tag`` prefixes :data:`pipeline.augment.pools.TAG` to the target side of augmentation rows (tagged
back-translation); only ``distill`` reads this file, so the tag never reaches evaluation.

Writes ``data/bitext/train.tsv`` (``id, en, xx, origin, domain``) and ``metrics/bitext.json``: the seed rows'
filter counts and, for every pool that has rows (whichever ``aug`` is), the pool size, the rows each filter
removed, the rows kept and the rows that entered (0 for a pool ``aug`` does not use).
"""

from __future__ import annotations

import pandas as pd

from pipeline.augment.pools import AugmentFilter, draw_augmentation, filter_bitext, sample, tag_augmentation
from pipeline.augment.round_trip import read_scores
from pipeline.config import paths, seeds
from pipeline.config.params import load_params
from pipeline.data import splits, store
from pipeline.data.splits import BITEXT_COLUMNS, mean_words, normalise
from pipeline.io import DataFileError, write_metrics, write_tsv
from pipeline.stages import run_stage, skipped_without_bitext

BITEXT_PATH = paths.BITEXT_FILE


def main() -> None:
    params = load_params()
    if skipped_without_bitext(
        params, paths.metrics_file("bitext"), tables={BITEXT_PATH: BITEXT_COLUMNS}, aug=params.aug, rows=0
    ):
        return
    test_texts = store.test_texts()
    seed_bitext = store.read_file("bitext")
    rng = seeds.rng(params.lang_seed, "bitext", str(params.distill.seed))
    seed_rows, seed_filtered = filter_bitext(
        sample(seed_bitext, params.bitext.seed_size, rng, "bitext.seed_size"), test_texts, params.bitext.max_len_ratio
    )
    if seed_filtered["test_text"]:
        raise AssertionError(
            f"{seed_filtered['test_text']} seed rows carry test-split target text: an upstream filter failed"
        )
    aug = params.augment
    filters = AugmentFilter(
        frozenset(aug.filters),
        aug.max_len_ratio,
        target=params.lang,
        round_trip_keep=aug.round_trip_keep,
        blocked=frozenset(test_texts),
        seed_targets=frozenset(seed_bitext["xx"].map(normalise)),
    )
    parts, augmentation = draw_augmentation(
        params.aug,
        filters,
        aug.size,
        seed=params.lang_seed,
        replicate=params.distill.seed,
        round_trip=read_scores() if aug.round_trip_keep < 1 else None,
    )
    df = pd.concat([seed_rows, *parts], ignore_index=True)
    if df.empty:
        raise DataFileError(f"bitext is empty after filtering: {seed_filtered}")
    leaked = df["id"].map(splits.is_test_id)
    assert not leaked.any(), f"test ids in bitext: {df.loc[leaked, 'id'].tolist()[:5]}"
    assert not df["id"].duplicated().any(), "duplicate ids in bitext"
    if params.bitext.tag:
        df = tag_augmentation(df)
    write_tsv(BITEXT_PATH, df[list(BITEXT_COLUMNS)].itertuples(index=False, name=None), BITEXT_COLUMNS)
    write_metrics(
        paths.metrics_file("bitext"),
        {
            "aug": params.aug,
            "tag": params.bitext.tag,
            "rows": len(df),
            "rows_by_origin": {k: int(v) for k, v in df["origin"].value_counts().sort_index().items()},
            "seed_filtered": seed_filtered,
            "augmentation": augmentation,
            "en_words_mean": mean_words(df["en"]),
            "xx_words_mean": mean_words(df["xx"]),
        },
    )


if __name__ == "__main__":
    run_stage(main)
