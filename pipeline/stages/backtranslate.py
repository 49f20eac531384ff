"""Stage ``backtranslate``: real target-genre text → synthetic English, the back-translation pool.

Samples ``augment.pool.backtranslation`` verses (seeded) from the target-genre monolingual pool (books 18, 19,
22–39; never the test books 20 and 21), translates them into English with the MT model and
``backtranslate.method``, and writes ``data/aug/backtranslation.tsv`` (real target side, synthetic English side).
The same verses with their real (WEB) English side are the ``parallel`` control, ``data/aug/parallel.tsv``: what
back-translation would give with a perfect MT model (no rows for a file corpus, which has no English for its
pool). Both files have the columns of :data:`pipeline.augment.pools.POOL_COLUMNS`: ``lid`` is the language ID's
label for the English side, trained here with ``augment.lid_verses`` verses per language. ``bitext`` filters the
pools and samples ``augment.size`` rows, so a change of ``augment.size`` does not re-run this stage. Also writes
``metrics/backtranslate.json``.
"""

from __future__ import annotations

from pipeline.augment.pools import POOL_COLUMNS, pool_verses, write_pools
from pipeline.config import paths, seeds
from pipeline.config.params import load_params
from pipeline.data import store
from pipeline.io import write_metrics
from pipeline.mt import backtranslate_rows, load_translator
from pipeline.stages import run_stage, skipped_without_bitext

OUT_PATH = paths.AUG_FILES["backtranslation"]
PARALLEL_PATH = paths.AUG_FILES["parallel"]


def main() -> None:
    params = load_params()
    tables = {OUT_PATH: POOL_COLUMNS, PARALLEL_PATH: POOL_COLUMNS}
    if skipped_without_bitext(params, paths.metrics_file("backtranslate"), tables=tables):
        return
    picked = pool_verses(store.read_file("mono"), params.augment.pool.backtranslation, params.lang_seed, params.lang)
    model = load_translator(params.mt, paths.MT_DIR, "xx-en")
    rows, stats = backtranslate_rows(
        model,
        params.backtranslate,
        list(picked["id"]),
        list(picked["xx"]),
        "backtranslation",
        "target_genre",
        batch_size=params.mt.batch_size,
        seed=seeds.derive(params.lang_seed, "backtranslate"),
        no_repeat_ngram_size=params.mt.no_repeat_ngram_size,
    )
    has_english = "mono_en" in store.manifest()["files"]  # a Bible language: the pool verses' WEB English
    english = dict(store.read_file("mono_en").itertuples(index=False, name=None)) if has_english else {}
    parallel = [(i, english[i], x, "parallel", domain) for i, _, x, _, domain in rows if i in english]
    written = write_pools(
        {"backtranslation": rows, "parallel": parallel},
        stats,
        params.backtranslate,
        lid_verses=params.augment.lid_verses,
        seed=params.lang_seed,
    )
    write_metrics(
        paths.metrics_file("backtranslate"),
        {**written["translation"], "parallel_rows": len(parallel), "lid": written["lid"]},
    )


if __name__ == "__main__":
    run_stage(main)
