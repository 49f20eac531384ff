"""Stage ``translate_docs``: every split's target-language documents translated into English (beam ``mt.beam``).

The input of the NMT baselines (``nmt_bm25``, ``nmt_teacher``) in ``evaluate``; a DVC out, so it is done once
per language and MT model. Writes ``data/nmt/<split>.tsv`` (``docid, text``) and ``metrics/translate_docs.json``.
"""

from __future__ import annotations

from pipeline import paths
from pipeline.data import store
from pipeline.io import atomic_path, write_metrics, write_tsv
from pipeline.mt import load_translator
from pipeline.params import load_params
from pipeline.stages import run_stage, skipped_without_bitext


def main() -> None:
    params = load_params()
    metrics_file = paths.metrics_file("translate_docs")
    if skipped_without_bitext(params, metrics_file, dirs=(paths.NMT_DIR,), splits={}):
        return
    model = load_translator(params.mt, paths.MT_DIR)
    metrics: dict = {}
    with atomic_path(paths.NMT_DIR, is_dir=True) as tmp:
        for split in store.manifest()["splits"]:
            docs = store.read_collection(split).docs
            english, stats = model.translate(
                list(docs["text"]),
                "beam",
                beam=params.mt.beam,
                batch_size=params.mt.batch_size,
                no_repeat_ngram_size=params.mt.no_repeat_ngram_size,
            )
            write_tsv(tmp / f"{split}.tsv", zip(docs["docid"], english, strict=True), ("docid", "text"))
            metrics[split] = {
                "docs": len(docs),
                "truncated": stats["truncated"],
                "empty_outputs": sum(1 for e in english if not e.strip()),
                "degenerate_rate": round(stats["degenerate_rate"], 4),
            }
    write_metrics(metrics_file, {"available": True, "splits": metrics})


if __name__ == "__main__":
    run_stage(main)
