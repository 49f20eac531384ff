"""Where synthesis throws its lines away, and what a setting changes: per filter, on generated and on real text.

The ``synthesize`` stage keeps a generated line only if it passes every filter (length, loops, test text, copies,
word validity against the pool's vocabulary, language ID). For one language's prepared data (run
``dvc repro prepare llm`` with its ``lang`` first), this script

1. passes **real** held-out target-genre verses (``genre_dev``, never in the pool) through the same filters: the share
   of real text each filter rejects is its false-rejection rate, the filter's own quality figure;
2. generates ``--rows`` continuations per setting and repeat with the stage's loop
   (:func:`pipeline.augment.synthesis.synthesize`, test texts blocked) and counts what each filter removed, the pass
   rate, seconds per kept line, the time 3,000 kept lines would take at that rate, and the kept lines' quality (word
   validity, language-ID pass rate, distinct-2, 4-gram novelty).

A setting is ``name`` or ``name:key=value;key=value`` over the ``synth`` params (decoding: ``temperature``,
``top_p``, ``max_new_tokens``, ``repetition_penalty``, ``no_repeat_ngram_size``; prompts: ``shots``; filters:
``min_word_validity``, ``min_words``, ``max_words``, ``max_copy_overlap``). Settings are interleaved per repeat, the
same seeded prompts for each. ``--isa avx2`` runs the process with its libraries capped at AVX2
(:mod:`benchmarks.isa`). Writes ``benchmarks/results/synth_waste_<lang>.json`` (``_<lang>_avx2.json`` capped).

Usage (repository root or a project copy with that language prepared, venv active)::

    python -m benchmarks.synth_waste [--settings "today,cool:temperature=0.6"] [--rows 128] [--repeats 2] [--isa avx2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.isa import ISA_ENV, describe
from benchmarks.synth_budget import DECODING, measure, summarise
from pipeline.augment.lid import train_bible_lid
from pipeline.augment.synthesis import FilterConfig, LineFilter, quality
from pipeline.config.hardware import cpu_model
from pipeline.config.params import load_params
from pipeline.data import store
from pipeline.stages.synthesize import make_backend

RESULTS = Path(__file__).resolve().parent / "results"
FILTERS = ("min_word_validity", "min_words", "max_words", "max_copy_overlap")
KEYS = (*DECODING, *FILTERS, "shots", "finetune_steps")
#: What 3,000 kept lines would take at a setting's rate (the size the issue's budget names).
LINES = 3000


def parse_settings(text: str) -> list[tuple[str, dict]]:
    """``today,cool:temperature=0.6;shots=8`` → [(name, {key: value})]; a key outside the known ones is an error."""
    out = []
    for item in text.split(","):
        name, _, spec = item.partition(":")
        changes = {}
        for pair in filter(None, spec.split(";")):
            key, _, value = pair.partition("=")
            if key not in KEYS:
                raise SystemExit(f"setting {name!r}: unknown key {key!r}; known: {list(KEYS)}")
            changes[key] = float(value) if "." in value else int(value)
        out.append((name, changes))
    return out


def steps(changes: dict, cfg) -> int:
    """The fine-tuning steps a setting runs with."""
    return int(changes.get("finetune_steps", cfg.finetune_steps))


def language_models(params, pool: list[str], settings) -> dict[int, tuple]:
    """One LM per fine-tuning length the settings ask for, set up by the stage's own ``make_backend`` (load, trim,
    fine-tune on the pool, cast): ``{steps: (lm, info, seconds)}``."""
    out = {}
    for n in dict.fromkeys(steps(changes, params.synth) for _, changes in settings):
        started = time.perf_counter()
        tuned = params.model_copy(update={"synth": params.synth.model_copy(update={"finetune_steps": n})})
        lm, info = make_backend(tuned, pool)
        out[n] = (lm, info, round(time.perf_counter() - started, 1))
    return out


def real_text(real: list[str], pool, lang, config: FilterConfig, lid, test) -> dict:
    """What the filters do to real target-genre verses: pass rate and rejections per filter."""
    line_filter = LineFilter(pool, lang, config, lid, blocked=test)
    verdicts = line_filter.apply(real, [()] * len(real))
    removed = {k: v for k, v in sorted(line_filter.counts.items()) if k != "passed"}
    return {"lines": len(real), "pass_rate": round(verdicts.count(None) / len(real), 4), "removed": removed}


def generate(lm, name, changes, rows, repeat, params, pool, test, lid) -> dict:
    cfg = params.synth
    config = replace(FilterConfig.from_params(cfg), **{k: v for k, v in changes.items() if k in FILTERS})
    line_filter = LineFilter(pool, params.lang, config, lid, blocked=test)
    row, res = measure(
        lm,
        name,
        pool,
        line_filter,
        lid,
        params,
        rows=rows,
        repeat=repeat,
        batch=cfg.batch_size,
        samples=cfg.samples_per_prompt,
        shots=changes.get("shots", cfg.shots),
        decoding={k: changes.get(k, getattr(cfg, k)) for k in DECODING},
    )
    row["word_validity_generated"] = quality([r.text for r in res.records], line_filter)["word_validity"]
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--settings", default="today")
    ap.add_argument("--rows", type=int, default=128, help="continuations per setting and repeat")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--isa", default="native", choices=sorted(ISA_ENV))
    args = ap.parse_args()
    if any(os.environ.get(k) != v for k, v in ISA_ENV[args.isa].items()):  # the caps act only from process start
        os.execve(sys.executable, [sys.executable, "-m", "benchmarks.synth_waste", *sys.argv[1:]],
                  {**os.environ, **ISA_ENV[args.isa]})  # fmt: skip
    settings = parse_settings(args.settings)
    params = load_params()
    cfg = params.synth
    pool = list(store.read_file("mono")["xx"])
    real = list(store.read_file("genre_dev")["xx"])
    test = store.test_texts()
    lid, lid_info = train_bible_lid(cfg.lid_verses, np.random.default_rng(0)) if cfg.lid else (None, {})
    models = language_models(params, pool, settings)
    filters = {
        name: real_text(
            real,
            pool,
            params.lang,
            replace(FilterConfig.from_params(cfg), **{k: v for k, v in ch.items() if k in FILTERS}),
            lid,
            test,
        )
        for name, ch in settings
    }
    print(json.dumps({"real_text": filters}), flush=True)
    rows = [
        generate(models[steps(changes, cfg)][0], name, changes, args.rows, repeat, params, pool, test, lid)
        for repeat in range(args.repeats)
        for name, changes in settings
    ]
    summary = summarise(rows)
    for s in summary:
        mine = [r for r in rows if r["config"] == s["config"]]
        s["removed"] = {
            k: sum(r["removed"].get(k, 0) for r in mine) for k in sorted({k for r in mine for k in r["removed"]})
        }
        s["word_validity_generated"] = round(float(np.mean([r["word_validity_generated"] for r in mine])), 4)
        setup = models[steps(dict(settings)[s["config"]], cfg)][1]
        s["finetune_seconds"] = setup.get("finetune_seconds", 0.0)
        s[f"seconds_for_{LINES}_kept"] = round(s["seconds_per_kept_line"] * LINES + s["finetune_seconds"])
    result = {
        "cpu": cpu_model() + describe(args.isa),
        "isa": args.isa,
        "dtype": next(iter(models.values()))[1]["dtype"],
        "lang": params.lang,
        "pool_lines": len(pool),
        "lid": lid_info,
        "lm_setup_seconds": {f"finetune_steps={k}": v[2] for k, v in models.items()},
        "synth": {k: getattr(cfg, k) for k in (*KEYS, "batch_size", "samples_per_prompt")},
        "settings": dict(settings),
        "rows_per_setting_and_repeat": args.rows,
        "real_text": filters,
        "summary": summary,
        "runs": rows,
    }
    out = RESULTS / f"synth_waste_{params.lang}{'' if args.isa == 'native' else '_' + args.isa}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    for s in summary:
        print(json.dumps(s))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
