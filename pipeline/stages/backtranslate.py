"""Stage ``backtranslate``: real target-genre text → synthetic English, the back-translation augmentation.

Samples ``augment.size`` verses (seeded) from the target-genre monolingual pool (books 18, 19, 22–39; never
the test books 20 and 21), translates them into English with the MT model and ``backtranslate.method``,
and writes ``data/aug/backtranslation.tsv`` (``id, en, xx, origin, domain``: real target side, synthetic
English side) and ``metrics/backtranslate.json``.
"""

from __future__ import annotations

from pipeline import paths, seeds
from pipeline.bitext import AUG_SOURCES, sample
from pipeline.data import store
from pipeline.data.splits import BITEXT_COLUMNS, is_test_id
from pipeline.io import write_metrics, write_tsv
from pipeline.mt import backtranslate_rows, backtranslation_metrics, load_translator
from pipeline.params import ParamsError, load_params
from pipeline.stages import run_stage, skipped_without_bitext

OUT_PATH = AUG_SOURCES["backtranslation"][0]


def main() -> None:
    params = load_params()
    if skipped_without_bitext(params, paths.metrics_file("backtranslate"), tables={OUT_PATH: BITEXT_COLUMNS}):
        return
    pool = store.read_file("mono")
    if params.augment.size > len(pool):
        raise ParamsError(
            f"augment.size={params.augment.size} but the target-genre pool of {params.lang!r} "
            f"has only {len(pool)} verses"
        )
    picked = sample(pool, params.augment.size, seeds.rng(params.seed, "backtranslate", "sample"), "augment.size")
    assert not picked["id"].map(is_test_id).any(), "test verse in the monolingual pool"
    model = load_translator(params.mt, paths.MT_DIR)
    rows, stats = backtranslate_rows(
        model,
        params.backtranslate,
        list(picked["id"]),
        list(picked["xx"]),
        "backtranslation",
        "target_genre",
        batch_size=params.mt.batch_size,
        seed=seeds.derive(params.seed, "backtranslate"),
    )
    write_tsv(OUT_PATH, rows, BITEXT_COLUMNS)
    write_metrics("metrics/backtranslate.json", backtranslation_metrics(params.backtranslate, rows, stats))


if __name__ == "__main__":
    run_stage(main)
