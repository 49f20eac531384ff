"""Stage ``prepare``: corpora → test collections, source-domain training files, monolingual pool.

Writes ``data/prepared/`` (see :mod:`pipeline.data.store`) and ``metrics/prepare.json``.
"""

from __future__ import annotations

import logging

from pipeline.data import splits, store
from pipeline.data.splits import mean_words
from pipeline.io import write_metrics
from pipeline.params import load_params
from pipeline.stages import run_stage

log = logging.getLogger(__name__)


def metrics(prepared: splits.Prepared) -> dict:
    out: dict = {"lang": prepared.lang, "splits": {}, "unavailable": sorted(prepared.unavailable)}
    for name, coll in prepared.collections.items():
        out["splits"][name] = {
            "queries": len(coll.queries),
            "docs": len(coll.docs),
            "qrels": len(coll.qrels),
            "query_words_mean": mean_words(t for _, t in coll.queries),
            "doc_words_mean": mean_words(t for _, t in coll.docs),
            **{k: v for k, v in coll.info.items() if k != "books"},
        }
    out["train"] = {
        "bitext_source": len(prepared.bitext),
        "english_pairs": len(prepared.english_pairs),
        "english_dev": len(prepared.english_dev),
        "source_dev": len(prepared.source_dev),
        "genre_dev": len(prepared.genre_dev),
        "mono_target_genre": len(prepared.mono),
        "mono_target_genre_en": len(prepared.mono_en),
        "bitext_en_words_mean": mean_words(r[1] for r in prepared.bitext),
        "bitext_xx_words_mean": mean_words(r[2] for r in prepared.bitext),
    }
    out["alignment"] = prepared.alignment
    return out


def main() -> None:
    params = load_params()
    prepared = splits.prepare(params.prepare, params.seed, params.language)
    for split, reason in prepared.unavailable.items():
        log.warning("split %s not built: %s", split, reason)
    store.write_prepared(prepared)
    write_metrics("metrics/prepare.json", metrics(prepared))


if __name__ == "__main__":
    run_stage(main)
