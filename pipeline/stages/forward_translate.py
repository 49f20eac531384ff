"""Stage ``forward_translate``: real English → machine-translated target text, the forward-translation pool.

The same ``augment.pool.backtranslation`` target-genre verses as ``backtranslate``
(:func:`pipeline.augment.pools.pool_verses`): their real (WEB) English is translated into the target language by the
en→xx model of ``train_mt``, decoded with the ``backtranslate`` settings. Against back-translation only the
direction differs, so the two pools separate where the MT noise sits: on the English side that the teacher reads
(back-translation) or on the target side that the student reads (forward translation, as in Translate-Distill).
Writes ``data/aug/forward.tsv`` (:data:`pipeline.augment.pools.POOL_COLUMNS`, ``origin=forward``; ``lid`` is the
language ID's label for the machine-written target side) and ``metrics/forward_translate.json``. A file corpus has
no English for its pool: the pool has no rows and ``aug: forward`` is an error saying so, as for ``parallel``.
"""

from __future__ import annotations

from pipeline.augment.pools import NO_ENGLISH, POOL_COLUMNS, pool_verses, write_pools
from pipeline.config import paths, seeds
from pipeline.config.params import load_params
from pipeline.data import store
from pipeline.io import write_metrics, write_tsv
from pipeline.mt import load_translator, translate_pool
from pipeline.stages import run_stage, skipped_without_bitext

OUT_PATH = paths.AUG_FILES["forward"]


def main() -> None:
    params = load_params()
    metrics_file = paths.metrics_file("forward_translate")
    if skipped_without_bitext(params, metrics_file, tables={OUT_PATH: POOL_COLUMNS}):
        return
    if "mono_en" not in store.manifest()["files"]:  # a file corpus: no English for the pool verses
        write_tsv(OUT_PATH, [], POOL_COLUMNS)
        write_metrics(metrics_file, {"sentences": 0, "reason": NO_ENGLISH.format(origin="forward")})
        return
    picked = pool_verses(store.read_file("mono"), params.augment.pool.backtranslation, params.lang_seed, params.lang)
    english = dict(store.read_file("mono_en").itertuples(index=False, name=None))
    ids = [i for i in picked["id"] if i in english]
    model = load_translator(params.mt, paths.MT_DIRS["en-xx"], "en-xx")
    target, stats = translate_pool(
        model,
        params.backtranslate,
        [english[i] for i in ids],
        batch_size=params.mt.batch_size,
        seed=seeds.derive(params.lang_seed, "forward_translate"),
        no_repeat_ngram_size=params.mt.no_repeat_ngram_size,
    )
    rows = [(i, english[i], x, "forward", "target_genre") for i, x in zip(ids, target, strict=True)]
    written = write_pools(
        {"forward": rows}, stats, params.backtranslate, lid_verses=params.augment.lid_verses, seed=params.lang_seed
    )
    write_metrics(metrics_file, {**written["translation"], "lid": written["lid"]})


if __name__ == "__main__":
    run_stage(main)
