"""The MT models' tables: the default run's dev scores and pool translations (both directions), and the MT
benchmarks."""

from __future__ import annotations

from pipeline.config.params import load_params
from pipeline.experiments.render import BENCHMARK_RESULTS, source, stage_metrics
from pipeline.io import read_json


def mt() -> str:
    """The default run's MT models, both directions: dev BLEU/chrF and what their pool translations look like."""
    models = {"xx-en": (stage_metrics("mt"), stage_metrics("backtranslate"))}
    models["en-xx"] = (stage_metrics("mt_forward"), stage_metrics("forward_translate"))

    def cells(label: str, cell) -> str:
        return f"| {label} | " + " | ".join(cell(m, pool) for m, pool in models.values()) + " |"

    def dev(split: str):
        return lambda m, _: f"{m[split]['bleu']:.2f} / {m[split]['chrf']:.2f} ({m[split]['sentences']} sentences)"

    pool = next(iter(models.values()))[1]
    lines = [
        "| | target → English | English → target |",
        "|---|---|---|",
        cells("training pairs / epochs", lambda m, _: f"{m.get('train_pairs', '–'):,} / {m.get('epochs', '–')}"),
        cells("BLEU / chrF, source-domain dev", dev("dev_source")),
        cells("BLEU / chrF, target-genre dev", dev("dev_target_genre")),
        cells(
            f"pool translations ({pool['sentences']} verses, {pool['method']} {pool['beam']})",
            lambda _, p: (
                f"{p['degenerate_rate']:.0%} degenerate (n-gram loop), {p['empty_outputs']} empty, "
                f"length ratio en/xx p50 {p['length_ratio_quantiles'].get('p50', '–')}"
            ),
        ),
        cells("sacreBLEU signature", lambda m, _: "`" + m["dev_source"]["bleu_signature"].replace("|", "\\|") + "`"),
    ]
    files = [f"metrics/{name}.json" for name in ("mt", "mt_forward", "backtranslate", "forward_translate")]
    return "\n".join([*lines, "", source(*files)])


def mt_decoding() -> str:
    """``benchmarks/mt_decoding.py``: the loop rate and BLEU/chrF of the MT model per ``no_repeat_ngram_size``."""
    path = BENCHMARK_RESULTS / "mt_decoding.json"
    d = read_json(path)
    lines = [
        "| no_repeat_ngram_size | BLEU / chrF source dev | BLEU / chrF genre dev "
        "| loops: source dev / genre dev / pool |",
        "|---|---|---|---|",
    ]
    for r in d["rows"]:
        loops = " / ".join(
            f"{r[k]:.0%}" for k in ("source_dev_degenerate_rate", "genre_dev_degenerate_rate", "pool_degenerate_rate")
        )
        lines.append(
            f"| {r['no_repeat_ngram_size'] or 'off'} | {r['source_dev_bleu']:.2f} / {r['source_dev_chrf']:.2f} "
            f"| {r['genre_dev_bleu']:.2f} / {r['genre_dev_chrf']:.2f} | {loops} |"
        )
    note = f"`lang: {d['lang']}`, beam {d['rows'][0]['beam']}; a decoding setting only (training is the same)."
    return "\n".join([*lines, "", note + " " + source(path)])


def mt_tradeoff() -> str:
    """``benchmarks/mt_tradeoff.py``: training time and quality of MT training settings; marks params.yaml's."""
    path = BENCHMARK_RESULTS / "mt_tradeoff.json"
    d = read_json(path)
    mt = load_params().mt
    lines = [
        "| setting | max_tokens / warmup | dropout | epochs | train s | BLEU / chrF source dev "
        "| BLEU / chrF genre dev | loops source / genre |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in d["rows"]:
        default = (r["max_tokens"], r["warmup_updates"], r["dropout"], r["epochs"]) == (
            mt.max_tokens,
            mt.warmup_updates,
            mt.dropout,
            mt.epochs,
        ) and (r["layers"], r["dim"], r["vocab"]) == (mt.layers, mt.embed_dim, mt.vocab_size)
        name = f"**{r['setting']}** (params.yaml)" if default else r["setting"]
        lines.append(
            f"| {name} | {r['max_tokens']} / {r['warmup_updates']} | {r['dropout']} | {r['epochs']} "
            f"| {r['train_s']:.0f} | {r['bleu_source']:.2f} / {r['chrf_source']:.2f} "
            f"| {r['bleu_genre']:.2f} / {r['chrf_genre']:.2f} "
            f"| {r['degenerate_source']:.1%} / {r['degenerate_genre']:.1%} |"
        )
    note = (
        f"`lang: {d['lang']}`, {d['train_pairs']:,} training pairs, {d['dev_sentences']} dev sentences each, "
        f"beam {d['beam']}, no_repeat_ngram_size {d['no_repeat_ngram_size']}; {d['machine']}, nothing else running."
    )
    return "\n".join([*lines, "", note + " " + source(path)])


def mt_side_by_side(name: str) -> str:
    """``benchmarks/mt_budget.py`` (``benchmarks/results/<name>.json``): both MT directions trained one after the
    other or side by side, with the ``mt`` params a row changed (the generator-quality levels); per row the pair's
    wall time and each direction's time and dev scores."""
    path = BENCHMARK_RESULTS / f"{name}.json"
    rows = read_json(path)["rows"]
    machines = sorted({f"{r['cpu']}, {r['cores']} cores" for r in rows})
    lines = [
        f"Measured on {'; '.join(machines)}, float32, one setting after the other.",
        "",
        "| setting | threads per model | both models s | direction | train + convert s (CPU s) "
        "| BLEU / chrF source dev | BLEU / chrF genre dev |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        label = " ".join([r["setting"], *(f"mt.{k}={v}" for k, v in r.get("mt", {}).items())])
        for i, d in enumerate(r["directions"]):
            head = f"| {label} | {r['threads']} | {r['pair_wall_s']:.0f} |" if i == 0 else "| | | |"
            lines.append(
                f"{head} {d['direction']} | {d['train_mt_wall_s']:.0f} ({d['train_mt_cpu_s']:.0f}) | "
                f"{d['bleu_source_dev']:.2f} / {d['chrf_source_dev']:.2f} | "
                f"{d['bleu_genre_dev']:.2f} / {d['chrf_genre_dev']:.2f} |"
            )
    notes = [f"- `{r['setting']}` ({r['date']}): {r['note']}." for r in rows]
    return "\n".join([*lines, "", *notes, "", source(path)])
