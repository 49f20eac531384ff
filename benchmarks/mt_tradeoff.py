"""Size / training-time / BLEU trade-off of the fairseq xx→en back-translation model on CPU.

Trains each model size (params.yaml's ``mt`` settings with the preset's and ``--set``'s overrides, and the
``train_mt`` stage's seed) on the prepared source-domain bitext (all of it, or a fraction), then
translates ``dev/source.tsv`` and ``dev/target_genre.tsv`` (xx→en, beam 5) and prints one row
per size: parameters, training seconds, seconds per epoch, BLEU/chrF on both dev sets and beam-5
translation speed. The MT stage's budget is about 5–6 minutes of training on two cores.

Usage, from the repository root::

    python -m benchmarks.mt_tradeoff [--sizes tiny,small] [--fraction 1.0] [--epochs N] [--threads 1]
        [--set vocab_size=8000 --set max_tokens=2048] [--json results.json] [--keep-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path

import torch

from pipeline import seeds
from pipeline.io import read_tsv
from pipeline.mt import FairseqTranslator, MTConfig, score_translations, train_mt
from pipeline.params import load_params

PREPARED = Path("data/prepared")

#: Model sizes: MTConfig overrides on top of params.yaml's ``mt`` section;
#: epochs chosen so each trains in about 5 minutes on one core.
PRESETS: dict[str, dict] = {
    "tiny": {"layers": 2, "embed_dim": 128, "ffn_dim": 512, "heads": 4, "epochs": 3, "dropout": 0.0},
    "small": {"layers": 3, "embed_dim": 256, "ffn_dim": 1024, "heads": 4, "epochs": 1, "dropout": 0.2},
}


def _parse_value(text: str, like):
    if isinstance(like, bool):
        return text.lower() in ("1", "true", "yes")
    return type(like)(text)


def _print_epoch(epoch: int, stats: dict) -> None:
    print(f"  epoch {epoch}: train {stats['train_loss']:.3f}  valid {stats['valid_loss']:.3f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prepared", type=Path, default=PREPARED)
    ap.add_argument("--sizes", default="tiny,small", help=f"comma-separated presets from {list(PRESETS)}")
    ap.add_argument("--fraction", type=float, default=1.0, help="fraction of the source bitext to train on")
    ap.add_argument("--epochs", type=int, default=None, help="override every preset's epochs")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="MTConfig override for all sizes")
    ap.add_argument("--dev-limit", type=int, default=300, help="sentences per dev set to translate")
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    ap.add_argument("--keep-dir", type=Path, default=None, help="keep the trained models under this directory")
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    train_df = read_tsv(args.prepared / "train/bitext_source.tsv", ["id", "en", "xx"])
    n = max(1, int(round(len(train_df) * args.fraction)))
    train = list(zip(train_df["xx"][:n], train_df["en"][:n], strict=True))
    dev_source = read_tsv(args.prepared / "dev/source.tsv", ["id", "en", "xx"]).head(args.dev_limit)
    dev_genre = read_tsv(args.prepared / "dev/target_genre.tsv", ["id", "en", "xx"]).head(args.dev_limit)
    valid = list(zip(dev_source["xx"], dev_source["en"], strict=True))
    params = load_params()
    base = MTConfig.from_params(params.mt, seeds.derive(params.seed, "train_mt"))  # as the train_mt stage
    common = {}
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in {f.name for f in fields(MTConfig)}:
            ap.error(f"--set {item}: {key!r} is not an MTConfig field")
        common[key] = _parse_value(value, getattr(base, key))

    print(f"torch threads: {torch.get_num_threads()}")
    print(f"training pairs: {len(train)} of {len(train_df)}; dev: {len(dev_source)} source, {len(dev_genre)} genre")
    rows = []
    with tempfile.TemporaryDirectory(prefix="mt-tradeoff-") as scratch:
        root = args.keep_dir or Path(scratch)
        for name in args.sizes.split(","):
            overrides = {**PRESETS[name], **common}
            if args.epochs is not None:
                overrides["epochs"] = args.epochs
            cfg = replace(base, **overrides)
            print(f"\n== {name}: {cfg}", flush=True)
            out = root / name
            cpu0 = time.process_time()
            res = train_mt(train, valid, out, cfg, log=_print_epoch)
            cpu_s = time.process_time() - cpu0
            tr = FairseqTranslator.load(out)
            n_params = sum(p.numel() for p in tr.hub.models[0].parameters())
            row = {
                "size": name,
                "layers": cfg.layers,
                "dim": cfg.embed_dim,
                "vocab": cfg.vocab_size,
                "params_M": round(n_params / 1e6, 2),
                "epochs": res["epochs"],
                "train_s": res["train_seconds"],
                "s_per_epoch": round(res["train_seconds"] / max(res["epochs"], 1), 1),
                "cpu_s": round(cpu_s, 1),  # all of train_mt (spm + preprocess + training), all threads
                "valid_loss": round(res["valid_loss"][-1], 3),
                "dropped_long": res["dropped_long"],
            }
            for label, df in (("source", dev_source), ("genre", dev_genre)):
                t0 = time.perf_counter()
                hyps, stats = tr.translate(list(df["xx"]), "beam", beam=args.beam, progress=False)
                secs = time.perf_counter() - t0
                sc = score_translations(hyps, list(df["en"]))
                row[f"bleu_{label}"] = round(sc["bleu"], 2)
                row[f"chrf_{label}"] = round(sc["chrf"], 2)
                row[f"degenerate_{label}"] = round(stats["degenerate_rate"], 3)
                row[f"beam{args.beam}_sent_per_s_{label}"] = round(len(df) / secs, 1)
                print(f"  {label}: BLEU {sc['bleu']:.2f} chrF {sc['chrf']:.2f}  ({len(df) / secs:.1f} sent/s)")
                print(f"    e.g. {df['xx'].iloc[0]!r}\n      -> {hyps[0]!r}\n      ref {df['en'].iloc[0]!r}")
            row["signature"] = sc["bleu_signature"]
            rows.append(row)
            print(json.dumps(row), flush=True)

    cols = ["size", "layers", "dim", "vocab", "params_M", "epochs", "train_s", "s_per_epoch", "cpu_s", "valid_loss",
            "bleu_source", "chrf_source", "bleu_genre", "chrf_genre", f"beam{args.beam}_sent_per_s_source"]  # fmt: skip
    print("\n| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for row in rows:
        print("| " + " | ".join(str(row[c]) for c in cols) + " |")
    if rows:
        print(f"\nBLEU signature: {rows[0]['signature']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
