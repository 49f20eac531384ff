"""Stage ``prepare``: corpora → test collections, source-domain training files, monolingual pool.

Writes ``data/prepared/`` (see :mod:`pipeline.data.store`) and ``metrics/prepare.json``.
"""

from __future__ import annotations

import logging

from pipeline.config import paths
from pipeline.config.params import load_params
from pipeline.data import splits, store
from pipeline.data.collection import Collection
from pipeline.data.splits import mean_words
from pipeline.io import write_metrics
from pipeline.stages import run_stage

log = logging.getLogger(__name__)


def judgments(coll: Collection) -> dict:
    """How many documents are relevant per query (mean), and how many queries have a rel-1 document (a verse
    cross-referenced with the query's, another paragraph of its UDHR article, a topic's listed verse)."""
    relevant: dict[str, int] = {}
    rel1: set[str] = set()
    for qid, _, rel in coll.qrels:
        if rel > 0:
            relevant[qid] = relevant.get(qid, 0) + 1
        if rel == 1:
            rel1.add(qid)
    n = len(coll.query_ids())
    return {"relevant_per_query_mean": round(sum(relevant.values()) / n, 3), "queries_with_rel1": len(rel1)}


def metrics(prepared: splits.Prepared, collection: str) -> dict:
    out: dict = {
        "lang": prepared.lang,
        "collection": collection,
        "splits": {},
        "unavailable": sorted(prepared.unavailable),
    }
    for name, coll in prepared.collections.items():
        out["splits"][name] = {
            "queries": len(coll.query_ids()),
            "docs": len(coll.docs),
            "qrels": len(coll.qrels),
            **judgments(coll),
            "query_words_mean": {form: mean_words(t for _, t in rows) for form, rows in coll.queries.items()},
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
    prepared = splits.prepare(params.prepare, params.seed, params.lang_seed, params.language)
    for split, reason in prepared.unavailable.items():
        log.warning("split %s not built: %s", split, reason)
    store.write_prepared(prepared)
    write_metrics(paths.metrics_file("prepare"), metrics(prepared, params.prepare.collection))


if __name__ == "__main__":
    run_stage(main)
