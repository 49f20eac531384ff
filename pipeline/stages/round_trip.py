"""Stage ``round_trip``: every machine-made pool row translated back and scored (the remedy's ranking).

The English side of ``data/aug/backtranslation.tsv`` and ``data/aug/synthetic.tsv`` goes back into the target language
with the en→xx model, the target side of ``data/aug/forward.tsv`` back into English with the xx→en model (beam
``mt.beam``, as the dev sets are scored); sentence chrF against the side each was translated from
(:mod:`pipeline.augment.round_trip`). Writes ``data/aug/round_trip/<origin>.tsv`` (``id, chrf``) and
``metrics/round_trip.json`` (mean and quartiles per pool). ``bitext`` reads it when ``augment.round_trip_keep`` < 1.
"""

from __future__ import annotations

import numpy as np

from pipeline.augment.pools import POOL_COLUMNS
from pipeline.augment.round_trip import BACK, COLUMNS, score_pool
from pipeline.config import paths
from pipeline.config.params import load_params
from pipeline.io import atomic_path, read_tsv, write_metrics, write_tsv
from pipeline.mt import load_translator
from pipeline.stages import run_stage, skipped_without_bitext

OUT_PATH = paths.AUG_ROUND_TRIP


def main() -> None:
    params = load_params()
    metrics_file = paths.metrics_file("round_trip")
    if skipped_without_bitext(params, metrics_file, dirs=(OUT_PATH,)):
        return
    models = {d: load_translator(params.mt, paths.MT_DIRS[d], d) for d in sorted(set(BACK.values()))}
    tables, summary = {}, {}
    for origin, direction in BACK.items():
        pool = read_tsv(paths.AUG_FILES[origin], POOL_COLUMNS, allow_empty=True)
        if pool.empty:  # forward translation of a file corpus
            continue
        scored = score_pool(
            models[direction],
            pool,
            origin,
            beam=params.mt.beam,
            batch_size=params.mt.batch_size,
            ngram=params.mt.no_repeat_ngram_size,
        )
        tables[origin] = scored
        chrf = np.array([c for _, c in scored])
        quartiles = np.percentile(chrf, [25, 50, 75])
        summary[origin] = {
            "rows": len(chrf),
            "back": direction,
            "chrf_mean": round(float(chrf.mean()), 2),
            **{f"chrf_p{q}": round(float(v), 2) for q, v in zip((25, 50, 75), quartiles, strict=True)},
        }
    with atomic_path(OUT_PATH, is_dir=True) as tmp:
        for origin, scored in tables.items():
            write_tsv(tmp / f"{origin}.tsv", scored, COLUMNS)
    write_metrics(metrics_file, summary)


if __name__ == "__main__":
    run_stage(main)
