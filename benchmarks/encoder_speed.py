"""Encoder throughput: documents per second of dense (mean-pooled) and token-level (maxsim) encoding.

Encodes the first ``--docs`` documents of a prepared split with a model directory of the pipeline
(``models/encoder`` by default: the 6-layer default), at several batch sizes, and prints docs/s, tokens/s
and the process's peak RSS. Needs ``dvc repro prepare encoder`` first.

Usage::

    python -m benchmarks.encoder_speed [--model models/encoder --split in_domain --docs 512 --batch 16,64]
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from pipeline.data import store
from pipeline.retrieval.embed import PASSAGE_PREFIX, encode, encode_tokens
from pipeline.retrieval.encoders import load_encoder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/encoder")
    ap.add_argument("--split", default="in_domain")
    ap.add_argument("--docs", type=int, default=512)
    ap.add_argument("--batch", default="16,64")
    ap.add_argument("--max-length", type=int, default=128)
    args = ap.parse_args()
    model, tokenizer = load_encoder(args.model)
    texts = list(store.read_collection(args.split).docs["text"])[: args.docs]
    n_tokens = sum(
        min(len(ids), args.max_length) for ids in tokenizer([PASSAGE_PREFIX + t for t in texts])["input_ids"]
    )
    print(
        f"{args.model}: {model.config.num_hidden_layers} layers, "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.0f}M "
        f"params; {len(texts)} {args.split} docs, {n_tokens} tokens; torch threads {torch.get_num_threads()}"
    )
    warm_up = {"batch_size": int(args.batch.split(",")[0]), "max_length": args.max_length}
    encode(model, tokenizer, texts[:32], prefix=PASSAGE_PREFIX, **warm_up, progress=False)  # warm-up
    for batch in (int(b) for b in args.batch.split(",")):
        for name, fn in (("dense", encode), ("tokens", encode_tokens)):
            started = time.perf_counter()
            fn(
                model,
                tokenizer,
                texts,
                prefix=PASSAGE_PREFIX,
                batch_size=batch,
                max_length=args.max_length,
                progress=False,
            )
            seconds = time.perf_counter() - started
            print(
                f"  {name:<6s} batch {batch:>3d}: {len(texts) / seconds:7.1f} docs/s  "
                f"{n_tokens / seconds:8.0f} tokens/s"
            )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB")


if __name__ == "__main__":
    main()
