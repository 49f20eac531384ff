"""Stage ``bitext``: the training bitext = seeded seed-bitext sample + the augmentation chosen by ``aug``.

``aug``: ``none`` · ``backtranslation`` (``augment.size`` rows of data/aug/backtranslation.tsv) · ``synthetic``
(of data/aug/synthetic.tsv) · ``both`` (half of ``augment.size`` from each). Both augmentation files are always
built and cached, so switching ``aug`` re-runs only this stage and the ones after it.

Writes ``data/bitext/train.tsv`` (``id, en, xx, origin, domain``) and ``metrics/bitext.json``.
"""

from __future__ import annotations

import pandas as pd

from pipeline import paths, seeds
from pipeline.bitext import aug_origins, filter_bitext, read_augmentation, sample
from pipeline.data import splits, store
from pipeline.data.splits import BITEXT_COLUMNS, mean_words
from pipeline.io import DataFileError, write_json, write_tsv
from pipeline.params import load_params
from pipeline.stages import run_stage, skipped_without_bitext

BITEXT_PATH = paths.BITEXT_FILE


def main() -> None:
    params = load_params()
    if skipped_without_bitext(
        params, paths.metrics_file("bitext"), tables={BITEXT_PATH: BITEXT_COLUMNS}, aug=params.aug, rows=0
    ):
        return
    rng = seeds.rng(params.seed, "bitext", str(params.distill.seed))
    parts = [sample(store.read_file("bitext"), params.bitext.seed_size, rng, "bitext.seed_size")]
    origins = aug_origins(params.aug)
    for origin in origins:  # `both`: half of augment.size from each source
        aug_rng = seeds.rng(params.seed, "bitext", origin, str(params.distill.seed))
        parts.append(sample(read_augmentation(origin), params.augment.size // len(origins), aug_rng, f"aug {origin}"))
    df, filtered = filter_bitext(pd.concat(parts, ignore_index=True), store.test_texts(), params.bitext.max_len_ratio)
    if filtered["test_text"]:
        raise AssertionError(
            f"{filtered['test_text']} bitext rows carry test-split target text: an upstream filter failed"
        )
    if df.empty:
        raise DataFileError(f"bitext is empty after filtering: {filtered}")
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
