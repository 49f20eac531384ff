"""Pool text translated into bitext rows, and its metrics: shared by the ``backtranslate``, ``synthesize`` and
``forward_translate`` stages (one decoding, :func:`translate_pool`, whichever the direction).

``decoding`` is the ``backtranslate`` params section (duck-typed: ``.method``, ``.beam``, ``.topk``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.data.splits import mean_words
from pipeline.mt.base import Translator
from pipeline.mt.text import length_ratio

#: A bitext row: ``(id, en, xx, origin, domain)``.
Row = tuple[str, str, str, str, str]


def translate_pool(
    model: Translator, decoding: Any, texts: Sequence[str], *, batch_size: int, seed: int, no_repeat_ngram_size: int
) -> tuple[list[str], dict[str, Any]]:
    """``texts`` translated in the model's direction with the ``decoding`` settings (and the MT model's
    ``no_repeat_ngram_size``), and the translation stats."""
    return model.translate(
        texts,
        decoding.method,
        beam=decoding.beam,
        topk=decoding.topk,
        noise={"p_drop": decoding.p_drop, "p_blank": decoding.p_blank, "max_shuffle": decoding.max_shuffle},
        batch_size=batch_size,
        seed=seed,
        no_repeat_ngram_size=no_repeat_ngram_size,
    )


def backtranslate_rows(
    model: Translator,
    decoding: Any,
    ids: Sequence[str],
    xx: Sequence[str],
    origin: str,
    domain: str,
    *,
    batch_size: int,
    seed: int,
    no_repeat_ngram_size: int,
) -> tuple[list[Row], dict[str, Any]]:
    """Translate target-language text into English with the ``decoding`` settings (and the MT model's
    ``no_repeat_ngram_size``) → bitext rows and the stats."""
    english, stats = translate_pool(
        model, decoding, xx, batch_size=batch_size, seed=seed, no_repeat_ngram_size=no_repeat_ngram_size
    )
    return [(i, en, x, origin, domain) for i, en, x in zip(ids, english, xx, strict=True)], stats


def backtranslation_metrics(decoding: Any, rows: Sequence[Row], stats: dict[str, Any]) -> dict[str, Any]:
    """Length-ratio quantiles, decoding settings, word counts and the translation ``stats`` (floats rounded)."""
    ratios = [length_ratio(r[2], r[1]) for r in rows if r[2].strip()]
    quantiles = {}
    if ratios:
        values = np.percentile(ratios, [10, 50, 90])
        quantiles = {f"p{q}": round(float(v), 3) for q, v in zip((10, 50, 90), values, strict=True)}
    return {
        "length_ratio_quantiles": quantiles,
        "method": decoding.method,
        "beam": decoding.beam,
        "topk": decoding.topk if decoding.method == "sampling" else None,
        "sentences": len(rows),
        "empty_outputs": sum(1 for r in rows if not r[1].strip()),
        "en_words_mean": mean_words(r[1] for r in rows),
        "xx_words_mean": mean_words(r[2] for r in rows),
        **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in stats.items()},
    }
