"""Stage ``translate_docs``: every split's target-language documents translated into English (beam ``mt.beam``).

The input of the NMT baselines (``nmt_bm25``, ``nmt_teacher``) in ``evaluate_baselines``; a DVC out, so it is done
once per language and MT model. Each distinct document text is translated once, however many splits hold it (the
topical test's splits share the distractor books). Writes ``data/nmt/<split>.tsv`` (``docid, text``) and
``metrics/translate_docs.json``.
"""

from __future__ import annotations

from pipeline.config import paths
from pipeline.config.params import load_params
from pipeline.data import store
from pipeline.io import atomic_path, write_metrics, write_tsv
from pipeline.mt import load_translator, translation_stats
from pipeline.stages import run_stage, skipped_without_bitext


def main() -> None:
    params = load_params()
    metrics_file = paths.metrics_file("translate_docs")
    if skipped_without_bitext(params, metrics_file, dirs=(paths.NMT_DIR,), splits={}):
        return
    model = load_translator(params.mt, paths.MT_DIR, "xx-en")
    docs = {split: store.read_collection(split).docs for split in store.manifest()["splits"]}
    unique = list(dict.fromkeys(text for d in docs.values() for text in d["text"]))
    english, stats = model.translate(
        unique,
        "beam",
        beam=params.mt.beam,
        batch_size=params.mt.batch_size,
        no_repeat_ngram_size=params.mt.no_repeat_ngram_size,
    )
    translation = dict(zip(unique, english, strict=True))
    metrics: dict = {}
    with atomic_path(paths.NMT_DIR, is_dir=True) as tmp:
        for split, d in docs.items():
            texts = list(d["text"])
            out = [translation[t] for t in texts]
            write_tsv(tmp / f"{split}.tsv", zip(d["docid"], out, strict=True), ("docid", "text"))
            metrics[split] = {
                "docs": len(texts),
                "empty_outputs": sum(1 for e in out if not e.strip()),
                "degenerate_rate": round(translation_stats(texts, out)["degenerate_rate"], 4),
            }
    write_metrics(
        metrics_file,
        {"available": True, "distinct_docs": len(unique), "truncated": stats["truncated"], "splits": metrics},
    )


if __name__ == "__main__":
    run_stage(main)
