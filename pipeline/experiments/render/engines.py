"""The inference engines in the docs: MT decoding on fairseq against CTranslate2 (``benchmarks/mt_engines.py``)."""

from __future__ import annotations

from pipeline.experiments.render import BENCHMARK_RESULTS, source
from pipeline.io import read_json

MT_ENGINES = BENCHMARK_RESULTS / "mt_engines.json"
#: The inputs of the benchmark, in the order the table gives them.
INPUTS = {"source_dev": "source dev", "genre_dev": "genre dev", "pool": "pool"}


def _speed(cell: dict) -> str:
    return f"{cell['seconds']:.1f} s ({cell['sentences_per_second']:.0f}/s)"


def _scores(cell: dict) -> str:
    return f"{cell['bleu']:.2f} / {cell['chrf']:.2f}"


def _same(cell: dict) -> str:
    return f"{cell['identical_to_fairseq']}/{cell['sentences']}" if "identical_to_fairseq" in cell else "–"


def speedups(data: dict) -> dict[tuple[str, str], float]:
    """(ISA, engine) → fairseq's seconds over the engine's, summed over the inputs, on the same ISA."""
    total = {(r["isa"], r["engine"]): sum(r[n]["seconds"] for n in INPUTS) for r in data["rows"]}
    return {(isa, e): total[(isa, "fairseq")] / s for (isa, e), s in total.items() if (isa, "fairseq") in total}


def mt_engines() -> str:
    """Per instruction set and engine: time (sentences/s) per input, BLEU / chrF on both dev sets, lines identical
    to fairseq's, and the speed-up over fairseq."""
    data = read_json(MT_ENGINES)
    s = data["settings"]
    ratio = speedups(data)
    lines = [
        f"Measured on {data['machine']}, {data['cores']} cores; `{data['lang']}`, CTranslate2 {data['ctranslate2']}; "
        f"beam {s['beam']}, no-repeat {s['no_repeat_ngram_size']}-gram, batches of {s['batch_size']}; median of "
        f"{data['repeats']} runs per engine, engines in turn. `avx2`: the same CPU with oneDNN, PyTorch and "
        "CTranslate2 capped at AVX2.",
        "",
        "| ISA | engine | "
        + " | ".join(f"{label} s" for label in INPUTS.values())
        + " | speed-up | source dev BLEU / chrF | genre dev BLEU / chrF | identical to fairseq (source, genre, pool) "
        "| load s | peak MB |",
        "|---" * 11 + "|",
    ]
    for r in data["rows"]:
        same = ", ".join(_same(r[n]) for n in INPUTS)
        lines.append(
            f"| {r['isa']} | {r['engine']} | "
            + " | ".join(_speed(r[n]) for n in INPUTS)
            + f" | {ratio.get((r['isa'], r['engine']), float('nan')):.2f}x | {_scores(r['source_dev'])} | "
            f"{_scores(r['genre_dev'])} | {same} | {r['load_seconds']:.1f} | {r['peak_rss_mb']} |"
        )
    return "\n".join([*lines, "", source(MT_ENGINES)])


def front_door() -> str:
    """A sentence for the README's time line: what CTranslate2 saves on the MT decoding against fairseq."""
    data = read_json(MT_ENGINES)
    ratio = speedups(data)
    native = {r["engine"]: r for r in data["rows"] if r["isa"] == "native"}
    ct2, fairseq = native["ctranslate2 float32"], native["fairseq"]
    seconds = {e: sum(r[n]["seconds"] for n in INPUTS) for e, r in (("ct2", ct2), ("fairseq", fairseq))}
    bleu = ct2["genre_dev"]["bleu"] - fairseq["genre_dev"]["bleu"]
    capped = f", {ratio[('avx2', 'ctranslate2 float32')]:.1f}x capped at AVX2" if ("avx2", "fairseq") in ratio else ""
    return (
        f"MT decoding runs on CTranslate2: {ratio[('native', 'ctranslate2 float32')]:.1f}x as fast as fairseq's beam "
        f"search ({seconds['ct2']:.0f} s against {seconds['fairseq']:.0f} s for both dev sets and the back-translation "
        f"pool{capped}; genre-dev BLEU {bleu:+.2f}; `{MT_ENGINES}`)."
    )


ENCODER_ENGINES = BENCHMARK_RESULTS / "encoder_engines.json"


def encoder_engines() -> str:
    """Per instruction set and engine: the seconds to encode the test collections' documents with the teacher, the
    speed-up over PyTorch and the smallest cosine to PyTorch's vectors."""
    data = read_json(ENCODER_ENGINES)
    torch_seconds = {r["isa"]: r["seconds"] for r in data["rows"] if r["engine"] == "torch"}
    lines = [
        f"Measured on {data['machine']}, {data['cores']} cores; `{data['lang']}`, {data['rows'][0]['documents']:,} "
        f"documents, `{data['model']}`, CTranslate2 {data['ctranslate2']} {data['compute_type']}; batches of "
        f"{data['batch_size']}, at most {data['max_length']} tokens; median of {data['repeats']} runs per engine, "
        "engines in turn.",
        "",
        "| ISA | engine | seconds (runs) | documents/s | speed-up | smallest cosine to PyTorch | load s | peak MB |",
        "|---" * 8 + "|",
    ]
    for r in data["rows"]:
        runs = ", ".join(f"{s:.1f}" for s in r["seconds_by_repeat"])
        lines.append(
            f"| {r['isa']} | {r['engine']} | {r['seconds']:.1f} ({runs}) | {r['documents'] / r['seconds']:.0f} | "
            f"{torch_seconds[r['isa']] / r['seconds']:.2f}x | {r['min_cosine_to_torch']:.6f} | "
            f"{r['load_seconds']:.1f} | {r['peak_rss_mb']} |"
        )
    return "\n".join([*lines, "", source(ENCODER_ENGINES)])
