"""Quality and speed of LLM-synthesised target-language text under each generation setting, on CPU.

Runs the same seeded few-shot prompts (from the prepared target-genre pool; run ``dvc repro prepare llm``
first) through each configuration and prints, per configuration: tokens/s, lines generated, the share that
passes every filter, word validity, language-ID pass rate, novelty (4-grams not in the pool), distinct-1/2,
and the count each filter removed. Configurations, cumulative:

  base        full 262k vocabulary, plain sampling (no repetition control)
  +rep        + repetition penalty and no-repeat n-grams
  +trim       + vocabulary trimmed to the pool's sub-words
  +ft         + causal-LM fine-tuning on the pool (``--ft-steps``), top layers only
  trim-norep  trimmed vocabulary without repetition control (isolates the trimming)
  +int8       trimmed vocabulary, linear layers in int8 (torch dynamic quantisation): speed against quality
  +bf16       trimmed vocabulary, generation in bfloat16 (``synth.dtype``): speed against quality

Also prints batch-1 vs batch-N generation speed (``--speed``), and with ``--real`` the same filters applied to
real held-out target-genre verses (the MT dev verses: never in the pool, never test text), which says how much
of real text in this language the filters would keep (a calibration of ``synth.min_word_validity`` per language).
Usage::

    python -m benchmarks.synth_quality [--model models/llm] [--prompts 32] [--batch 16] [--ft-steps 40]
        [--configs base,+rep,+trim,+ft] [--speed] [--real] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from pipeline.augment.lid import train_bible_lid
from pipeline.augment.synthesis import FilterConfig, LineFilter, build_prompt, finetune_documents, quality, synthesize
from pipeline.config.params import load_params
from pipeline.data import store
from pipeline.llm.generate import LocalLM

ROOT = Path(__file__).resolve().parents[1]


def run(cfg: str, args, pool, lang, lid) -> dict:
    lm = LocalLM(args.model)
    rep = cfg not in ("base", "trim-norep")
    ft_seconds = 0.0
    if cfg in ("+trim", "+ft", "trim-norep", "+int8", "+bf16"):
        lm.trim([*pool, build_prompt([], lang)])
    if cfg == "+bf16":
        lm.cast("bfloat16")
    if cfg == "+int8":  # not a pipeline option: measured, and rejected for quality (docs/performance.md)
        with warnings.catch_warnings():  # torch.ao's eager quantisation warns that it moves to torchao
            warnings.simplefilter("ignore")
            lm.model = torch.ao.quantization.quantize_dynamic(lm.model, {torch.nn.Linear}, dtype=torch.qint8)
    if cfg == "+ft":
        started = time.perf_counter()
        docs = finetune_documents(pool, lang, 5, np.random.default_rng(0))
        losses = lm.finetune(docs, args.ft_steps, lr=1e-4, batch_size=8, max_length=128, train_layers=4, seed=0)
        ft_seconds = time.perf_counter() - started
        print(f"  fine-tune {args.ft_steps} steps in {ft_seconds:.0f} s, loss {losses[0]:.2f} -> {losses[-1]:.2f}")
    filt = LineFilter(pool, lang, FilterConfig.from_params(load_params().synth), lid)
    res = synthesize(
        lm,
        pool,
        lang,
        target=10**9,
        max_prompts=args.prompts,
        shots=5,
        batch_size=args.batch,
        samples_per_prompt=1,  # one continuation per prompt: what these measurements compared
        line_filter=filt,
        rng=np.random.default_rng(0),
        seed=0,
        checkpoint=None,
        max_new_tokens=args.max_new_tokens,
        temperature=0.8,
        top_p=0.95,
        repetition_penalty=args.penalty if rep else 1.0,
        no_repeat_ngram_size=args.no_repeat if rep else 0,
    )
    all_lines = [r.text for r in res.records]
    row = {
        "config": cfg,
        "tok_s": round(res.tokens / res.seconds, 1),
        "finetune_s": round(ft_seconds, 1),
        "lines": len(all_lines),
        "pass_rate": round(filt.counts["passed"] / max(1, len(all_lines)), 3),
        **{k: v for k, v in quality(all_lines, filt, lid, lang).items() if k != "lines"},
        "removed": {k: v for k, v in filt.counts.items() if k != "passed"},
    }
    print(json.dumps(row), flush=True)
    return row


def real_text(pool, lang, lid) -> dict:
    """The filter chain (default thresholds, with LID) on real held-out verses instead of generated lines."""
    dev = list(store.read_file("genre_dev")["xx"])
    filt = LineFilter(pool, lang, FilterConfig.from_params(load_params().synth), lid)
    filt.apply(dev, [[] for _ in dev])
    validity = np.array([filt.word_validity(x) for x in dev])
    row = {
        "config": "real held-out verses",
        "lines": len(dev),
        "pass_rate": round(filt.counts["passed"] / max(1, len(dev)), 3),
        "word_validity": round(float(validity.mean()), 3),
        "word_validity_p10": round(float(np.percentile(validity, 10)), 3),
        "removed": {k: v for k, v in filt.counts.items() if k != "passed"},
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/llm")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--ft-steps", type=int, default=40)
    ap.add_argument("--penalty", type=float, default=1.2, help="repetition penalty of the +rep configs")
    ap.add_argument("--no-repeat", type=int, default=3, help="no-repeat n-gram size of the +rep configs")
    ap.add_argument("--configs", default="base,+rep,+trim,+ft")
    ap.add_argument("--speed", action="store_true", help="also time batch 1 vs --batch")
    ap.add_argument("--real", action="store_true", help="also run the filters on real held-out verses")
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(2)
    lang = store.manifest()["lang"]
    pool = list(store.read_file("mono")["xx"])
    lid, info = train_bible_lid(2000, np.random.default_rng(0))
    print(f"lang {lang}, pool {len(pool)} lines, LID held-out accuracy {info['heldout_accuracy']}")
    rows = [run(c, args, pool, lang, lid) for c in args.configs.split(",") if c]  # --configs "": none
    if args.real:
        rows.append(real_text(pool, lang, lid))
    if args.speed:
        lm = LocalLM(args.model)
        lm.trim([*pool, build_prompt([], lang)])
        prompts = ["\n".join(pool[:5]) + "\n"] * args.batch
        kw = dict(
            samples=1, max_new_tokens=32, temperature=0.8, top_p=0.95, repetition_penalty=1.2, no_repeat_ngram_size=3
        )
        for bs in (1, args.batch):
            started = time.perf_counter()
            gens = [g for i in range(0, len(prompts), bs) for g in lm.generate(prompts[i : i + bs], seed=0, **kw)]
            tok_s = sum(g.new_tokens for g in gens) / (time.perf_counter() - started)
            print(f"speed (trimmed vocab): batch {bs}: {tok_s:.1f} tokens/s")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
