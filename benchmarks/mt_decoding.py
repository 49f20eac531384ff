"""Decoding settings of the MT model against its loop rate: does banning repeated n-grams cure the loops?

Translates, with the committed MT model (``models/mt``) and the default run's prepared data, the source-domain dev
set and the target-genre dev set (BLEU / chrF, sacreBLEU) and the first ``--pool`` verses of the target-genre
monolingual pool (what back-translation translates), with beam ``backtranslate.beam`` and each
``no_repeat_ngram_size`` of ``--sizes`` (0 = no constraint). Reports per setting the scores, the share of outputs
that :func:`pipeline.mt.is_degenerate` calls a loop and the time, and writes
``benchmarks/results/mt_decoding.json``.

Usage (repository root, venv active, after ``dvc repro train_mt``)::

    python -m benchmarks.mt_decoding [--sizes 0,2,3,4] [--pool 400]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from pipeline.config import paths
from pipeline.config.params import load_params
from pipeline.data import store
from pipeline.mt import is_degenerate, load_translator, score_translations

RESULTS = Path("benchmarks/results/mt_decoding.json")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="0,2,3,4", help="no_repeat_ngram_size values (comma-separated)")
    ap.add_argument("--pool", type=int, default=400, help="pool verses to back-translate")
    args = ap.parse_args()
    params = load_params()
    model = load_translator(params.mt, paths.MT_DIR, "xx-en")
    sets = {
        "source_dev": store.read_file("source_dev"),
        "genre_dev": store.read_file("genre_dev"),
        "pool": store.read_file("mono").iloc[: args.pool],
    }
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        row: dict = {"no_repeat_ngram_size": size, "beam": params.backtranslate.beam}
        started = time.perf_counter()
        for name, df in sets.items():
            hyps, _ = model.translate(
                list(df["xx"]),
                "beam",
                beam=params.backtranslate.beam,
                batch_size=params.mt.batch_size,
                no_repeat_ngram_size=size,
                progress=False,
            )
            row[f"{name}_degenerate_rate"] = round(sum(map(is_degenerate, hyps)) / len(hyps), 4)
            if "en" in df:
                scores = score_translations(hyps, list(df["en"]))
                row[f"{name}_bleu"], row[f"{name}_chrf"] = round(scores["bleu"], 2), round(scores["chrf"], 2)
        row["seconds"] = round(time.perf_counter() - started, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"lang": params.lang, "model": params.mt.name, "rows": rows}, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
