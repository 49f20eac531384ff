"""Where synthesis throws its lines away (``benchmarks/synth_waste.py``): the filters on real text, and the
generated lines per setting, one table per language."""

from __future__ import annotations

from pathlib import Path

from pipeline.experiments.render import BENCHMARK_RESULTS, source, stage_metrics
from pipeline.io import read_json

PATTERN = "synth_waste_*.json"


def _removed(counts: dict, total: int) -> str:
    """The filters that removed lines, largest first, as shares of ``total``."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"`{name}` {_share(n / total)}" for name, n in ranked if n) or "–"


def _share(x: float) -> str:
    return f"{x:.0%}" if x >= 0.005 else "<1%"


def _spread(summary: dict) -> str:
    """Seconds per kept line over all repeats, with the range of the repeats."""
    by = summary["seconds_per_kept_line_by_repeat"]
    return f"{summary['seconds_per_kept_line']:.2f} ({min(by):.2f}–{max(by):.2f})"


def _setting(changes: dict, base: dict, keys: list[str]) -> str:
    """What a setting ran with: its changes, or the run's params for the keys any setting changes."""
    if changes:
        return ", ".join(f"{k} {v}" for k, v in changes.items())
    return "params as run: " + ", ".join(f"{k} {base[k]}" for k in keys)


def _language(path: Path) -> list[str]:
    data = read_json(path)
    real = data["real_text"]
    first = next(iter(real.values()))
    lines = [
        f"**`{data['lang']}`** ({data['cpu']}, {data['dtype']}; {data['rows_per_setting_and_repeat']} continuations "
        f"per setting and repeat, settings interleaved, the same seeded prompts; pool {data['pool_lines']:,} lines). "
        f"Real held-out target-genre verses: {first['pass_rate']:.0%} of {first['lines']} pass the filters "
        f"(rejected: {_removed(first['removed'], first['lines'])}).",
        "",
        "| setting | changes | generated | kept | pass | s per kept line (repeats) | 3,000 kept lines | word validity "
        "generated → kept | distinct-2 / 4-gram novelty, kept | removed (share of generated) |",
        "|---" * 10 + "|",
    ]
    keys = list(dict.fromkeys(k for changes in data["settings"].values() for k in changes))
    for s in data["summary"]:
        setting = _setting(data["settings"][s["config"]], data["synth"], keys)
        lines.append(
            f"| {s['config']} | {setting} | {s['generated']} | {s['kept']} | {s['pass_rate']:.2f} "
            f"| {_spread(s)} | {s['seconds_for_3000_kept'] / 60:.0f} min | "
            f"{s['word_validity_generated']:.2f} → {s['word_validity_kept']:.2f} | {s['distinct_2_kept']:.2f} / "
            f"{s['novelty_4gram_kept']:.2f} | {_removed(s['removed'], s['generated'])} |"
        )
    return [*lines, ""]


def synth_waste() -> str:
    """One table per language measured: false rejections on real text, then per setting what was generated and
    kept, the time per kept line (and for 3,000), the kept lines' quality and which filters removed the rest."""
    files = sorted(BENCHMARK_RESULTS.glob(PATTERN))
    if not files:
        return f"No results yet: `python -m benchmarks.synth_waste` writes `{BENCHMARK_RESULTS / PATTERN}`."
    body = [line for path in files for line in _language(path)]
    return "\n".join([*body, source(*files)])


def synthesis() -> str:
    """The default run's LLM synthesis: lines generated and kept, what each filter removed, quality."""
    s = stage_metrics("synthesize")
    removed = ", ".join(f"`{k}` {v}" for k, v in sorted(s["removed"].items(), key=lambda kv: -kv[1]) if v)
    gen, kept = s["quality_generated"], s["quality_kept"]
    rows = [
        ("model / backend", f"`{s['model']}` / {s['backend']}"),
        (
            "prompts / lines generated / kept",
            f"{s['prompts']} / {s['generated']:,} / {s['kept']} (pass rate {s['pass_rate']:.2f})",
        ),
        ("removed, by first failing filter", removed or "none"),
    ]
    for key, label in (
        ("word_validity", "word validity"),
        ("lid_pass_rate", "LID pass rate"),
        ("novelty_4gram", "4-gram novelty"),
    ):
        if key in gen:
            rows.append((f"{label}: generated → kept", f"{gen[key]:.2f} → {kept[key]:.2f}"))
    bt = s["translation"]
    rows.append(("back-translations of the kept lines", f"{bt['degenerate_rate']:.0%} degenerate (n-gram loop)"))
    lines = ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]
    return "\n".join([*lines, "", source("metrics/synthesize.json")])
