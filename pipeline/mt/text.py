"""Text heuristics of the MT model: whitespace cleaning, noise for back-translation, degenerate-output checks."""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

#: Filler token of :func:`add_noise`.
BLANK = "<BLANK>"


def clean(text: str) -> str:
    """Collapse all whitespace (tabs and newlines would break fairseq's line-aligned files)."""
    return " ".join(str(text).split())


def _draw(rng: random.Random | np.random.Generator) -> float:
    """One uniform draw in [0, 1) from either kind of generator."""
    return float(rng.random())


def add_noise(
    sentence: str,
    rng: random.Random | np.random.Generator,
    *,
    p_drop: float,
    p_blank: float,
    max_shuffle: int,
    filler: str = BLANK,
) -> str:
    """Noise a (back-)translation as in Edunov et al. (2018) / Lample et al. (2018).

    On whitespace-separated words, in this order (that of Lample et al.'s implementation):

    1. **local shuffle**: word ``i`` gets the key ``i + u_i`` with ``u_i ~ Uniform(0, max_shuffle + 1)``
       and words are sorted by key. A word can only be overtaken by words fewer than
       ``max_shuffle + 1`` positions away, so no word moves more than ``max_shuffle`` positions;
       ``max_shuffle = 0`` keeps the order;
    2. **deletion**: each word is dropped with probability ``p_drop`` (if every word would be
       dropped, one of them, chosen at random, is kept, so a non-empty sentence stays non-empty);
    3. **blanking**: each remaining word is replaced by ``filler`` with probability ``p_blank``.

    All randomness comes from ``rng`` (a ``random.Random`` or a numpy ``Generator``), so the same
    generator state gives the same output. Whitespace is normalised; an empty sentence stays empty.
    """
    if not 0.0 <= p_drop <= 1.0 or not 0.0 <= p_blank <= 1.0:
        raise ValueError(f"p_drop and p_blank must be probabilities, got {p_drop}, {p_blank}")
    if max_shuffle < 0:
        raise ValueError(f"max_shuffle must be >= 0, got {max_shuffle}")
    words = sentence.split()
    if not words:
        return ""
    if max_shuffle > 0:
        keys = [i + _draw(rng) * (max_shuffle + 1) for i in range(len(words))]
        words = [words[i] for i in sorted(range(len(words)), key=keys.__getitem__)]
    kept = [w for w in words if _draw(rng) >= p_drop]
    if not kept:
        kept = [words[min(int(_draw(rng) * len(words)), len(words) - 1)]]
    return " ".join(filler if _draw(rng) < p_blank else w for w in kept)


def is_degenerate(text: str, *, min_repeats: int = 3, max_n: int = 4) -> bool:
    """True if some word n-gram (n ≤ ``max_n``) repeats ``min_repeats``+ times in a row (a decoding loop).

    Words are compared case-insensitively without surrounding punctuation, so
    ``"and the the the"`` and ``"of God, of God, of God"`` are degenerate. This is a heuristic:
    a genuine triple repetition (``"Holy, holy, holy"``) is flagged too, which is rare in prose.
    """
    words = [w.strip(".,;:!?\"'`()[]").lower() for w in text.split()]
    words = [w for w in words if w]
    for n in range(1, max_n + 1):
        span = n * min_repeats
        for i in range(len(words) - span + 1):
            gram = words[i : i + n]
            if all(words[i + k * n : i + (k + 1) * n] == gram for k in range(1, min_repeats)):
                return True
    return False


def length_ratio(src: str, hyp: str) -> float:
    """Words in ``hyp`` per word in ``src`` (``src`` counts as at least one word)."""
    return len(hyp.split()) / max(len(src.split()), 1)


def translation_stats(sources: Sequence[str], hyps: Sequence[str]) -> dict[str, float]:
    """Degenerate-output rate and mean hypothesis/source length ratio over non-empty sources."""
    pairs = [(s, h) for s, h in zip(sources, hyps, strict=True) if s.strip()]
    if not pairs:
        return {"degenerate_rate": 0.0, "length_ratio": 0.0}
    return {
        "degenerate_rate": sum(is_degenerate(h) for _, h in pairs) / len(pairs),
        "length_ratio": float(np.mean([length_ratio(s, h) for s, h in pairs])),
    }
