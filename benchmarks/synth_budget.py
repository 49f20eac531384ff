"""Where the ``synthesize`` stage's time goes, and generation settings old against new, on the default data.

Times the parts of the stage apart (language-ID training, loading and trimming the LM), then runs the stage's
generation loop (:func:`pipeline.augment.synthesis.synthesize`, the stage's filters with the test texts blocked)
under each setting ``name=BATCHxSAMPLES`` (prompts per batch x ``synth.samples_per_prompt``; every other setting from
params.yaml's ``synth`` section, ``synth.dtype`` resolved for this CPU). Every setting generates the same number
of continuations (``--rows``) from the same seeded prompts, so they do the same decoding work and differ in how
many prompts they encode. Settings are interleaved (A B A B, ``--repeats``) so that other work on a shared
machine slows them alike. Per setting: seconds, tokens/s, prompts, continuations, lines generated, lines kept,
pass rate, seconds per kept line (and the generation time of the stage's ``augment.pool.synthetic`` lines at that
rate), word validity, language-ID pass rate, distinct-2 and novelty of the kept lines. Run
``dvc repro prepare llm`` first. Usage::

    python -m benchmarks.synth_budget [--configs old=16x1,new=8x2] [--rows 64] [--repeats 2] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from pipeline.augment.lid import train_bible_lid
from pipeline.augment.synthesis import FilterConfig, LineFilter, build_prompt, quality, synthesize
from pipeline.config import hardware, paths
from pipeline.config.hardware import cpu_model
from pipeline.config.params import load_params
from pipeline.data import store
from pipeline.llm.generate import LocalLM

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "synth_budget.json"
#: The ``synth`` params that steer sampling (:func:`pipeline.augment.synthesis.synthesize`'s decoding settings).
DECODING = ("max_new_tokens", "temperature", "top_p", "repetition_penalty", "no_repeat_ngram_size")


def parse_configs(text: str) -> list[tuple[str, int, int]]:
    """``old=16x1,new=8x2`` -> [(name, prompts per batch, samples per prompt), ...]."""
    out = []
    for item in text.split(","):
        name, shape = item.split("=")
        batch, samples = (int(x) for x in shape.lower().split("x"))
        out.append((name, batch, samples))
    return out


def measure(lm, name, pool, line_filter, lid, params, *, rows, repeat, batch, samples, shots, decoding):
    """Generate ``rows`` continuations with the stage's loop (no early stop, no checkpoint; the same seeded prompts
    for every setting of a repeat) and count them: returns the row every synthesis benchmark records and the
    :class:`pipeline.augment.synthesis.SynthesisResult`."""
    started_cpu = time.process_time()
    res = synthesize(
        lm,
        pool,
        params.lang,
        target=10**9,  # no early stop: every setting generates `rows` continuations
        max_prompts=rows // samples,
        shots=shots,
        batch_size=batch,
        samples_per_prompt=samples,
        line_filter=line_filter,
        rng=np.random.default_rng(repeat),  # the same prompts for every setting of a repeat
        seed=1000 * repeat,
        checkpoint=None,  # a measurement generates every batch
        domain=params.synth.domain,
        **decoding,
    )
    cpu = time.process_time() - started_cpu
    lines = [r.text for r in res.records]
    kept = [r.text for r in res.kept]
    q = quality(kept, line_filter, lid, params.lang)
    row = {
        "config": name,
        "batch_size": batch,
        "samples_per_prompt": samples,
        "repeat": repeat,
        "seconds": round(res.seconds, 1),
        "cpu_seconds": round(cpu, 1),
        "tokens_per_second": round(res.tokens / res.seconds, 2),
        "prompts": res.prompts,
        "continuations": res.prompts * samples,
        "new_tokens": res.tokens,
        "generated": len(lines),
        "kept": len(kept),
        "pass_rate": round(len(kept) / max(1, len(lines)), 4),
        "seconds_per_kept_line": round(res.seconds / max(1, len(kept)), 3),
        "word_validity_kept": q.get("word_validity", 0.0),
        "lid_pass_rate_kept": q.get("lid_pass_rate", 0.0),
        "distinct_2_kept": q.get("distinct_2", 0.0),
        "novelty_4gram_kept": q.get("novelty_4gram", 0.0),
        "removed": {k: v for k, v in sorted(line_filter.counts.items()) if k != "passed"},
    }
    return row, res


def run(lm, name, batch, samples, rows, repeat, params, pool, test, lid) -> dict:
    cfg = params.synth
    line_filter = LineFilter(pool, params.lang, FilterConfig.from_params(cfg), lid, blocked=test)
    load = os.getloadavg()[0]
    decoding = {k: getattr(cfg, k) for k in DECODING}
    row, res = measure(
        lm,
        name,
        pool,
        line_filter,
        lid,
        params,
        rows=rows,
        repeat=repeat,
        batch=batch,
        samples=samples,
        shots=cfg.shots,
        decoding=decoding,
    )
    row["load_average_1min_at_start"] = round(load, 2)
    per_kept = res.seconds / max(1, row["kept"])
    row["stage_generation_seconds_at_this_rate"] = round(per_kept * params.augment.pool.synthetic, 1)
    print(json.dumps(row), flush=True)
    return row


def summarise(rows: list[dict]) -> list[dict]:
    """Per setting: the sums over repeats (seconds, counts) and the rates recomputed from them."""
    out = []
    for name in dict.fromkeys(r["config"] for r in rows):
        mine = [r for r in rows if r["config"] == name]
        tot = {k: sum(r[k] for r in mine) for k in ("seconds", "cpu_seconds", "new_tokens", "generated", "kept")}
        tot.update(prompts=sum(r["prompts"] for r in mine), continuations=sum(r["continuations"] for r in mine))
        weights = [r["kept"] for r in mine]

        def kept_mean(key: str, mine=mine, weights=weights) -> float:  # the mean over every kept line
            return round(float(np.average([r[key] for r in mine], weights=weights)), 4) if sum(weights) else 0.0

        out.append(
            {
                "config": name,
                "batch_size": mine[0]["batch_size"],
                "samples_per_prompt": mine[0]["samples_per_prompt"],
                "repeats": len(mine),
                **{k: round(v, 1) if isinstance(v, float) else v for k, v in tot.items()},
                "tokens_per_second": round(tot["new_tokens"] / tot["seconds"], 2),
                "pass_rate": round(tot["kept"] / max(1, tot["generated"]), 4),
                "lines_per_continuation": round(tot["generated"] / tot["continuations"], 3),
                "seconds_per_kept_line": round(tot["seconds"] / max(1, tot["kept"]), 3),
                "seconds_per_kept_line_by_repeat": [r["seconds_per_kept_line"] for r in mine],
                "word_validity_kept": kept_mean("word_validity_kept"),
                "lid_pass_rate_kept": kept_mean("lid_pass_rate_kept"),
                "distinct_2_kept": kept_mean("distinct_2_kept"),
                "novelty_4gram_kept": kept_mean("novelty_4gram_kept"),
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="old=16x1,new=8x2", help="name=PROMPTSxSAMPLES, comma-separated")
    ap.add_argument("--rows", type=int, default=64, help="continuations per setting and repeat")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", default=str(OUT))
    args = ap.parse_args()
    configs = parse_configs(args.configs)
    params = load_params()
    cfg = params.synth
    pool = list(store.read_file("mono")["xx"])
    test = store.test_texts()
    parts = {}
    started = time.perf_counter()
    lid, lid_info = train_bible_lid(cfg.lid_verses, np.random.default_rng(0)) if cfg.lid else (None, {})
    parts["lid_training_seconds"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    lm = LocalLM(paths.LLM_DIR)
    parts["lm_load_seconds"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    if cfg.trim_vocab:
        lm.trim([*pool, build_prompt([], params.lang, cfg.domain)])
    dtype = hardware.resolve("synth.dtype", cfg.dtype)
    lm.cast(dtype)
    parts["lm_trim_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(parts), flush=True)
    rows = [
        run(lm, name, batch, samples, args.rows, repeat, params, pool, test, lid)
        for repeat in range(args.repeats)
        for name, batch, samples in configs
    ]
    result = {
        "cpu": cpu_model(),
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "dtype": dtype,
        "lang": params.lang,
        "lid": lid_info,
        "synth": {k: getattr(cfg, k) for k in ("shots", "max_new_tokens", "temperature", "top_p", "lid_verses")},
        "rows_per_setting_and_repeat": args.rows,
        "note": (
            "Shared machine: other work ran beside every measurement (1-minute load average at the start of each "
            "run below; the machine has 2 cores). Settings were interleaved (A B A B) so that contention hit them "
            "alike; absolute seconds are inflated by it, the ratios between settings are the result."
        ),
        "parts": parts,
        "summary": summarise(rows),
        "runs": rows,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    for s in result["summary"]:
        print(json.dumps(s))


if __name__ == "__main__":
    main()
