"""Stage ``backtranslate``: real target-genre text → synthetic English, the back-translation augmentation.

Samples ``augment.size`` verses (seeded) from the target-genre monolingual pool (books 18, 19, 22–39; never
the test books 20 and 21), translates them into English with the MT model and ``backtranslate.method``,
and writes ``data/aug/backtranslation.tsv`` (``id, en, xx, origin, domain``: real target side, synthetic
English side) and ``metrics/backtranslate.json``.
"""

from __future__ import annotations

import numpy as np

from pipeline import seeds
from pipeline.bitext import AUG_SOURCES, sample
from pipeline.data import store
from pipeline.data.splits import BITEXT_COLUMNS, is_test_id, mean_words
from pipeline.io import write_json, write_metrics, write_tsv
from pipeline.mt import length_ratio
from pipeline.params import Params, load_params
from pipeline.stages import run_stage
from pipeline.stages.train_mt import translator

OUT_PATH = AUG_SOURCES["backtranslation"][0]


def translate_rows(params: Params, ids: list[str], xx: list[str], origin: str, domain: str, seed_name: str):
    """Translate target-language text to English with the backtranslate decoding settings → bitext rows."""
    cfg = params.backtranslate
    english, stats = translator(params).translate(
        xx,
        cfg.method,
        beam=cfg.beam,
        topk=cfg.topk,
        batch_size=params.mt.batch_size,
        seed=seeds.derive(params.seed, seed_name),
    )
    rows = [(i, en, x, origin, domain) for i, en, x in zip(ids, english, xx)]
    return rows, stats


def translation_metrics(params: Params, rows, stats: dict) -> dict:
    ratios = [length_ratio(r[2], r[1]) for r in rows if r[2].strip()]
    return {
        "length_ratio_quantiles": {
            f"p{q}": round(float(v), 3) for q, v in zip((10, 50, 90), np.percentile(ratios, [10, 50, 90]))
        }
        if ratios
        else {},
        "method": params.backtranslate.method,
        "beam": params.backtranslate.beam,
        "topk": params.backtranslate.topk if params.backtranslate.method == "sampling" else None,
        "sentences": len(rows),
        "empty_outputs": sum(1 for r in rows if not r[1].strip()),
        "en_words_mean": mean_words(r[1] for r in rows),
        "xx_words_mean": mean_words(r[2] for r in rows),
        **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in stats.items()},
    }


def main() -> None:
    params = load_params()
    if not params.has_bible:
        reason = f"lang {params.lang!r} is UDHR-only: no monolingual pool, no MT model (skipped by design)"
        write_tsv(OUT_PATH, [], BITEXT_COLUMNS)
        write_json("metrics/backtranslate.json", {"available": False, "reason": reason})
        return
    pool = store.read_file("mono")
    if params.augment.size > len(pool):
        raise ValueError(
            f"augment.size={params.augment.size} but the target-genre pool of {params.lang!r} has only {len(pool)} verses"
        )
    picked = sample(pool, params.augment.size, seeds.rng(params.seed, "backtranslate", "sample"), "augment.size")
    assert not picked["id"].map(is_test_id).any(), "test verse in the monolingual pool"
    rows, stats = translate_rows(params, list(picked["id"]), list(picked["xx"]), "backtranslation", "target_genre", "backtranslate")
    write_tsv(OUT_PATH, rows, BITEXT_COLUMNS)
    write_metrics("metrics/backtranslate.json", translation_metrics(params, rows, stats))


if __name__ == "__main__":
    run_stage(main)
