"""Training-time / quality trade-off of the fairseq xx→en back-translation model on CPU.

Trains each named setting (params.yaml's ``mt`` section with the setting's and ``--set``'s overrides, and
the ``train_mt`` stage's seed) on the prepared source-domain bitext (all of it, or a fraction), then
translates ``dev/source.tsv`` and ``dev/target_genre.tsv`` as the stage does (``mt.beam``,
``mt.no_repeat_ngram_size``) and prints one row per setting: parameters, training seconds, BLEU/chrF and
the loop (degenerate) rate on both dev sets. The rows go to ``benchmarks/results/mt_tradeoff.json``
(rendered in docs/mt-and-llm.md by ``python -m pipeline.experiments.docs``). ``default`` is params.yaml as it is.

Usage, from the repository root (nothing else running: the seconds are the point)::

    python -m benchmarks.mt_tradeoff [--settings default,previous] [--fraction 1.0] [--epochs N]
        [--set vocab_size=8000] [--json PATH] [--keep-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path

import torch

from pipeline.config import seeds
from pipeline.config.params import load_params
from pipeline.io import read_tsv, write_text
from pipeline.mt import FairseqTranslator, MTConfig, score_translations, train_mt

PREPARED = Path("data/prepared")

RESULTS = Path("benchmarks/results/mt_tradeoff.json")

#: Named settings: MTConfig overrides on top of params.yaml's ``mt`` section.
SETTINGS: dict[str, dict] = {
    "default": {},
    "previous": {"max_tokens": 2048, "warmup_updates": 200, "dropout": 0.2},  # the default before issue 13
    "tuned": {"max_tokens": 1024, "warmup_updates": 300, "dropout": 0.0},
    "tuned-2ep": {"max_tokens": 1024, "warmup_updates": 300, "dropout": 0.0, "epochs": 2},
    "small": {"layers": 3, "embed_dim": 256, "ffn_dim": 1024, "heads": 4, "epochs": 1},
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
    ap.add_argument("--settings", default="default,previous", help=f"comma-separated names from {list(SETTINGS)}")
    ap.add_argument("--fraction", type=float, default=1.0, help="fraction of the source bitext to train on")
    ap.add_argument("--epochs", type=int, default=None, help="override every setting's epochs")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="MTConfig override, every setting")
    ap.add_argument("--dev-limit", type=int, default=300, help="sentences per dev set to translate")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    ap.add_argument("--json", type=Path, default=RESULTS, help="write the rows as JSON here")
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
    cfg_params = params.mt
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
        for name in args.settings.split(","):
            if name not in SETTINGS:
                ap.error(f"--settings: {name!r} is not one of {list(SETTINGS)}")
            overrides = {**SETTINGS[name], **common}
            if args.epochs is not None:
                overrides["epochs"] = args.epochs
            cfg = replace(base, **overrides)
            print(f"\n== {name}: {cfg}", flush=True)
            out = root / name
            cpu0 = time.process_time()
            res = train_mt(train, valid, out, cfg, "xx-en", log=_print_epoch)
            cpu_s = time.process_time() - cpu0
            tr = FairseqTranslator.load(out, "xx-en")
            n_params = sum(p.numel() for p in tr.hub.models[0].parameters())
            row = {
                "setting": name,
                "max_tokens": cfg.max_tokens,
                "warmup_updates": cfg.warmup_updates,
                "dropout": cfg.dropout,
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
                hyps, stats = tr.translate(
                    list(df["xx"]),
                    "beam",
                    beam=cfg_params.beam,
                    no_repeat_ngram_size=cfg_params.no_repeat_ngram_size,
                    batch_size=cfg_params.batch_size,
                    progress=False,
                )
                secs = time.perf_counter() - t0
                sc = score_translations(hyps, list(df["en"]))
                row[f"bleu_{label}"] = round(sc["bleu"], 2)
                row[f"chrf_{label}"] = round(sc["chrf"], 2)
                row[f"degenerate_{label}"] = round(stats["degenerate_rate"], 3)
                row[f"sent_per_s_{label}"] = round(len(df) / secs, 1)
                print(f"  {label}: BLEU {sc['bleu']:.2f} chrF {sc['chrf']:.2f}  ({len(df) / secs:.1f} sent/s)")
                print(f"    e.g. {df['xx'].iloc[0]!r}\n      -> {hyps[0]!r}\n      ref {df['en'].iloc[0]!r}")
            row["signature"] = sc["bleu_signature"]
            rows.append(row)
            print(json.dumps(row), flush=True)

    cols = ["setting", "max_tokens", "warmup_updates", "dropout", "epochs", "params_M", "train_s", "valid_loss",
            "bleu_source", "chrf_source", "degenerate_source",
            "bleu_genre", "chrf_genre", "degenerate_genre"]  # fmt: skip
    print("\n| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for row in rows:
        print("| " + " | ".join(str(row[c]) for c in cols) + " |")
    if rows:
        print(f"\nBLEU signature: {rows[0]['signature']}")
    if rows:
        record = {
            "lang": params.lang,
            "machine": f"{os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}",
            "beam": cfg_params.beam,
            "no_repeat_ngram_size": cfg_params.no_repeat_ngram_size,
            "train_pairs": len(train),
            "dev_sentences": len(dev_source),
            "rows": rows,
        }
        write_text(args.json, json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
