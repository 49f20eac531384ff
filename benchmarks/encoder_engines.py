"""Encoder inference engines side by side: PyTorch (what the evaluation stages run) against CTranslate2.

The evaluation stages spend most of their time encoding the test collections' documents (``evaluate_baselines``:
the teacher three times, the zero-shot encoder once; ``evaluate``: the student). This benchmark encodes every
distinct target-language document of the prepared splits with the committed teacher (``models/teacher``, a
BERT-style encoder like the student and the zero-shot encoder), ``passage:`` prefix, ``encoder.max_length`` and
``encoder.batch_size``, batches sorted by length, mean-pooled and L2-normalised:

* ``torch``: :func:`pipeline.retrieval.embed.encode`, the stages' own code;
* ``ctranslate2``: the same model converted by ``ctranslate2.converters.TransformersConverter`` (into a temporary
  folder; this benchmark only), batches run side by side on one core each like the MT decoder.

Each engine runs in a process of its own, ``--repeats`` times in turn, per instruction set (``--isa``, see
``benchmarks/isa.py``); a row keeps the median wall time and the smallest cosine between an engine's document
vectors and PyTorch's (1.0: the same vectors). Writes ``benchmarks/results/encoder_engines.json``.

Usage (repository root, venv active, after ``dvc repro teacher``)::

    python -m benchmarks.encoder_engines [--engines torch,ctranslate2:float32] [--repeats 2] [--isa native,avx2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks.isa import ISA_ENV
from pipeline.config import paths
from pipeline.config.hardware import cpu_model
from pipeline.config.params import load_params

RESULTS = Path("benchmarks/results/encoder_engines.json")


def documents() -> list[str]:
    """Every distinct target-language document of the prepared splits (what an evaluation stage encodes per model)."""
    from pipeline.data import store

    info = store.manifest()
    return sorted(
        {t for split in paths.SPLITS if split in info["splits"] for t in store.read_collection(split).docs["text"]}
    )


def convert(model_dir: Path, out: Path) -> None:
    """CTranslate2 conversion of a saved BERT-style encoder. transformers 5 no longer writes
    ``position_embedding_type`` (absolute), which the converter asserts on: a copy of the folder gets it back."""
    from ctranslate2.converters import TransformersConverter

    copy = out.parent / "hf"
    shutil.copytree(model_dir, copy)
    config = json.loads((copy / "config.json").read_text())
    config.setdefault("position_embedding_type", "absolute")
    (copy / "config.json").write_text(json.dumps(config))
    TransformersConverter(str(copy)).convert(str(out), force=True)


def ct2_load(converted: Path):
    """The converted encoder, batches side by side on one core each, and the saved model's tokenizer (what
    :func:`pipeline.retrieval.encoders.load_encoder` loads, without the PyTorch weights)."""
    import ctranslate2
    from transformers import AutoTokenizer

    cores = os.cpu_count() or 1
    encoder = ctranslate2.Encoder(
        str(converted), device="cpu", compute_type="float32", inter_threads=cores, intra_threads=1
    )
    return encoder, AutoTokenizer.from_pretrained(paths.TEACHER_DIR, local_files_only=True)


def ct2_encode(encoder, tokenizer, texts: list[str], prefix: str, batch_size: int, max_length: int):
    cores = os.cpu_count() or 1  # the inter_threads ct2_load gave the encoder
    ids = tokenizer([prefix + t for t in texts], truncation=True, max_length=max_length)["input_ids"]
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    with ThreadPoolExecutor(cores) as pool:
        outputs = list(pool.map(lambda b: encoder.forward_batch([ids[i] for i in b]), batches))
    rows = []
    for batch, result in zip(batches, outputs, strict=True):
        hidden = np.asarray(result.last_hidden_state)
        rows += [(i, hidden[j, : len(ids[i])].mean(0)) for j, i in enumerate(batch)]
    out = np.zeros((len(texts), rows[0][1].shape[0]), dtype=np.float32)
    for i, vec in rows:
        out[i] = vec / np.linalg.norm(vec)
    return out


def worker(engine: str, converted: Path, out: Path) -> None:
    """Load one engine, encode every document, save the vectors and the timings under ``out``."""
    from pipeline.retrieval.embed import PASSAGE_PREFIX, encode
    from pipeline.retrieval.encoders import load_encoder

    params = load_params()
    texts = documents()
    started = time.perf_counter()
    model, tokenizer = load_encoder(paths.TEACHER_DIR) if engine == "torch" else ct2_load(converted)
    load = time.perf_counter() - started
    started = time.perf_counter()
    settings = dict(prefix=PASSAGE_PREFIX, batch_size=params.encoder.batch_size, max_length=params.encoder.max_length)
    if engine == "torch":
        vectors = encode(model, tokenizer, texts, progress=False, **settings)
    else:
        vectors = ct2_encode(model, tokenizer, texts, **settings)
    seconds = time.perf_counter() - started
    np.save(out / f"{engine}.npy", vectors)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    (out / f"{engine}.json").write_text(json.dumps({"seconds": seconds, "load_seconds": load, "peak_rss_mb": peak}))


def _run(engine: str, isa: str, converted: Path, out: Path) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.encoder_engines",
        "--worker",
        engine,
        "--converted",
        str(converted),
        "--out",
        str(out),
    ]
    subprocess.run(cmd, check=True, env={**os.environ, **ISA_ENV[isa]})
    return json.loads((out / f"{engine}.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", default="torch,ctranslate2")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--isa", default="native,avx2", help=f"comma-separated, of {sorted(ISA_ENV)}")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--converted", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, Path(args.converted), Path(args.out))
        return
    engines = args.engines.split(",")
    params = load_params()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        converted = Path(tmp) / "ct2" / "model"
        started = time.perf_counter()
        convert(paths.TEACHER_DIR, converted)
        convert_seconds = round(time.perf_counter() - started, 1)
        for isa in args.isa.split(","):
            runs: dict[str, list[dict]] = {e: [] for e in engines}
            for repeat in range(args.repeats):
                for engine in engines if repeat % 2 == 0 else engines[::-1]:
                    runs[engine].append(_run(engine, isa, converted, Path(tmp)))
                    if repeat == 0:
                        shutil.copy(Path(tmp) / f"{engine}.npy", Path(tmp) / f"{engine}-{isa}.npy")
                    print(f"{isa} repeat {repeat}: {engine} {runs[engine][-1]['seconds']:.1f} s", flush=True)
            reference = np.load(Path(tmp) / f"torch-{isa}.npy")
            for engine in engines:
                vectors = np.load(Path(tmp) / f"{engine}-{isa}.npy")
                rows.append(
                    {
                        "isa": isa,
                        "engine": engine,
                        "documents": len(vectors),
                        "seconds": round(statistics.median(r["seconds"] for r in runs[engine]), 1),
                        "seconds_by_repeat": [round(r["seconds"], 1) for r in runs[engine]],
                        "load_seconds": round(statistics.median(r["load_seconds"] for r in runs[engine]), 2),
                        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs[engine]),
                        "min_cosine_to_torch": round(float((vectors * reference).sum(1).min()), 7),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    import ctranslate2

    result = {
        "machine": cpu_model(),
        "cores": os.cpu_count(),
        "lang": params.lang,
        "model": str(paths.TEACHER_DIR),
        "ctranslate2": ctranslate2.__version__,
        "compute_type": "float32",
        "batch_size": params.encoder.batch_size,
        "max_length": params.encoder.max_length,
        "repeats": args.repeats,
        "convert_seconds": convert_seconds,
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
