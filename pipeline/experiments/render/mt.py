"""The MT model's tables: the default run's dev scores and back-translations, and the MT benchmarks."""

from __future__ import annotations

from pipeline.config.params import load_params
from pipeline.experiments.render import BENCHMARK_RESULTS, source, stage_metrics
from pipeline.io import read_json


def mt() -> str:
    """The default run's MT model: dev BLEU/chrF and what its back-translations look like."""
    m, bt = stage_metrics("mt"), stage_metrics("backtranslate")
    src, genre = m["dev_source"], m["dev_target_genre"]
    rows = [
        ("training pairs / epochs", f"{m.get('train_pairs', '–'):,} / {m.get('epochs', '–')}"),
        ("BLEU / chrF, source-domain dev", f"{src['bleu']:.2f} / {src['chrf']:.2f} ({src['sentences']} sentences)"),
        (
            "BLEU / chrF, target-genre dev",
            f"{genre['bleu']:.2f} / {genre['chrf']:.2f} ({genre['sentences']} sentences)",
        ),
        ("sacreBLEU signature", "`" + src["bleu_signature"].replace("|", "\\|") + "`"),
        (
            f"back-translations ({bt['sentences']} pool verses, {bt['method']} {bt['beam']})",
            f"{bt['degenerate_rate']:.0%} degenerate (n-gram loop), {bt['empty_outputs']} empty, "
            f"length ratio en/xx p50 {bt['length_ratio_quantiles'].get('p50', '–')}",
        ),
    ]
    lines = ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]
    return "\n".join([*lines, "", source("metrics/mt.json", "metrics/backtranslate.json")])


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
