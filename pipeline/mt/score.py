"""MT scores (sacreBLEU): corpus BLEU and chrF with their signatures, and sentence chrF."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def score_translations(hyps: Sequence[str], refs: Sequence[str]) -> dict[str, Any]:
    """Corpus BLEU and chrF (sacreBLEU defaults, one reference) with their signatures."""
    from sacrebleu.metrics import BLEU, CHRF

    if len(hyps) != len(refs):
        raise ValueError(f"score_translations: {len(hyps)} hypotheses but {len(refs)} references")
    if not hyps:
        raise ValueError("score_translations: no sentences to score")
    hyps, refs = [str(h) for h in hyps], [str(r) for r in refs]
    bleu, chrf = BLEU(), CHRF()
    b = bleu.corpus_score(hyps, [refs])
    c = chrf.corpus_score(hyps, [refs])
    return {
        "bleu": float(b.score),
        "chrf": float(c.score),
        "bleu_bp": float(b.bp),
        "bleu_sys_ref_ratio": float(b.sys_len / max(b.ref_len, 1)),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
        "sentences": len(hyps),
    }


def sentence_chrf(hyps: Sequence[str], refs: Sequence[str]) -> list[float]:
    """chrF (sacreBLEU's defaults) of each hypothesis against its one reference, rounded to 2 decimals."""
    from sacrebleu.metrics import CHRF

    if len(hyps) != len(refs):
        raise ValueError(f"sentence_chrf: {len(hyps)} hypotheses but {len(refs)} references")
    chrf = CHRF()
    return [round(chrf.sentence_score(str(h), [str(r)]).score, 2) for h, r in zip(hyps, refs, strict=True)]
