"""MT decoding engines side by side: fairseq's Python beam search against CTranslate2, on the same inputs.

With the committed MT model (``models/mt``, converted by ``train_mt``) and the default run's prepared data, each
engine translates the source-domain dev set, the target-genre dev set (BLEU / chrF, sacreBLEU, against their real
English) and the first ``--pool`` verses of the target-genre monolingual pool (what back-translation translates), with
the stages' own settings: beam ``mt.beam``, ``mt.no_repeat_ngram_size``, batches of ``mt.batch_size`` sorted by length.
Each engine runs in a process of its own (its load time and peak memory are its own), ``--repeats`` times in turn
(engine order alternating); a row keeps the median wall time. ``--isa avx2`` also runs every engine with the
libraries capped at AVX2 (``ONEDNN_MAX_CPU_ISA``, ``ATEN_CPU_CAPABILITY``, ``CT2_FORCE_CPU_ISA``): the budget
machine's instruction set on a CPU that has more. Records per engine and input: seconds, sentences/s and output
words/s, scores, and the lines identical to fairseq's; with the CPU model and compute type. Writes
``benchmarks/results/mt_engines.json``, from which docs/performance.md's table is generated.

Usage (repository root, venv active, after ``dvc repro train_mt``)::

    python -m benchmarks.mt_engines [--engines fairseq,ctranslate2:float32,ctranslate2:int8] [--pool 1200]
                                    [--repeats 3] [--isa native,avx2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from benchmarks.isa import ISA_ENV
from pipeline.config import paths
from pipeline.config.hardware import cpu_model
from pipeline.config.params import load_params

RESULTS = Path("benchmarks/results/mt_engines.json")
INPUTS = ("source_dev", "genre_dev", "pool")


def worker(engine: str, compute_type: str, pool: int, out: Path) -> None:
    """Load one engine, translate every input, write its translations and timings to ``out``."""
    from pipeline.data import store
    from pipeline.mt import load_translator

    params = load_params()
    started = time.perf_counter()
    mt = SimpleNamespace(name=params.mt.name, engine=engine, compute_type=compute_type, src_lang=None, tgt_lang=None)
    model = load_translator(mt, paths.MT_DIR, "xx-en")
    result: dict = {"load_seconds": round(time.perf_counter() - started, 2), "inputs": {}}
    for name in INPUTS:
        df = store.read_file("mono").iloc[:pool] if name == "pool" else store.read_file(name)
        started = time.perf_counter()
        hyps, _ = model.translate(
            list(df["xx"]),
            "beam",
            beam=params.mt.beam,
            batch_size=params.mt.batch_size,
            no_repeat_ngram_size=params.mt.no_repeat_ngram_size,
            progress=False,
        )
        result["inputs"][name] = {"seconds": time.perf_counter() - started, "hyps": hyps}
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    out.write_text(json.dumps(result), encoding="utf-8")


def _run(engine: str, compute_type: str, isa: str, pool: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        cmd = [sys.executable, "-m", "benchmarks.mt_engines", "--worker", engine, compute_type, str(pool), str(out)]
        subprocess.run(cmd, check=True, env={**os.environ, **ISA_ENV[isa]})
        return json.loads(out.read_text(encoding="utf-8"))


def _row(label: str, runs: list[dict], reference: dict[str, list[str]] | None, refs: dict) -> dict:
    from pipeline.mt import score_translations

    row: dict = {"engine": label, "load_seconds": statistics.median(r["load_seconds"] for r in runs)}
    row["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    for name in INPUTS:
        hyps = runs[0]["inputs"][name]["hyps"]
        if any(r["inputs"][name]["hyps"] != hyps for r in runs[1:]):
            raise SystemExit(f"{label}: {name} translations differ between repeats (decoding is not deterministic)")
        seconds = statistics.median(r["inputs"][name]["seconds"] for r in runs)
        cell = {
            "sentences": len(hyps),
            "seconds": round(seconds, 2),
            "sentences_per_second": round(len(hyps) / seconds, 1),
            "words_per_second": round(sum(len(h.split()) for h in hyps) / seconds, 1),
        }
        if name in refs:
            scores = score_translations(hyps, refs[name])
            cell |= {"bleu": round(scores["bleu"], 2), "chrf": round(scores["chrf"], 2)}
        if reference is not None:
            cell["identical_to_fairseq"] = sum(a == b for a, b in zip(hyps, reference[name], strict=True))
        row[name] = cell
    return row


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        engine, compute_type, pool, out = sys.argv[2:6]
        worker(engine, compute_type, int(pool), Path(out))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", default="fairseq,ctranslate2:float32,ctranslate2:int8")
    ap.add_argument("--pool", type=int, default=1200, help="pool verses to translate (augment.pool.backtranslation)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--isa", default="native,avx2", help=f"comma-separated, of {sorted(ISA_ENV)}")
    args = ap.parse_args()
    from pipeline.data import store

    engines = [(e.split(":") + ["float32"])[:2] for e in args.engines.split(",")]
    refs = {name: list(store.read_file(name)["en"]) for name in ("source_dev", "genre_dev")}
    params = load_params()
    rows = []
    for isa in args.isa.split(","):
        runs: dict[int, list[dict]] = {i: [] for i in range(len(engines))}
        for rep in range(args.repeats):
            order = range(len(engines)) if rep % 2 == 0 else reversed(range(len(engines)))
            for i in order:
                runs[i].append(_run(*engines[i], isa, args.pool))
                print(f"{isa} repeat {rep + 1}: {engines[i]} done", flush=True)
        fairseq = next((runs[i][0] for i, (e, _) in enumerate(engines) if e == "fairseq"), None)
        reference = {n: fairseq["inputs"][n]["hyps"] for n in INPUTS} if fairseq else None
        for i, (engine, compute_type) in enumerate(engines):
            label = engine if engine == "fairseq" else f"{engine} {compute_type}"
            rows.append({"isa": isa, **_row(label, runs[i], reference, refs)})
            print(json.dumps(rows[-1]), flush=True)
    import ctranslate2

    settings = {"beam": params.mt.beam, "no_repeat_ngram_size": params.mt.no_repeat_ngram_size}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": cpu_model(),
                "cores": len(os.sched_getaffinity(0)),
                "lang": params.lang,
                "ctranslate2": ctranslate2.__version__,
                "settings": {**settings, "batch_size": params.mt.batch_size, "pool": args.pool},
                "repeats": args.repeats,
                "rows": rows,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
