"""The round trip of the machine-made pools, and the remedy it feeds: keep the best-translated share of a pool.

Every pool whose rows a machine made is translated back with the other MT model (:data:`BACK`): the English side of
back-translation and synthesis into the target language with the en→xx model, the target side of forward translation
into English with the xx→en model. Sentence chrF between the round trip and the side the machine translated from
scores how much of the meaning survived (Imankulova et al., 2017, filter back-translated pairs by round-trip BLEU).
The ``parallel`` control, made by no machine, is not scored. Only the pipeline's own two MT models are used, so the
score exists offline for every language and is the same kind of number for every arm, forward translation included.

``augment.round_trip_keep`` < 1 turns the remedy on in ``bitext``: of the rows the filters keep, a pool keeps that
share with the highest scores (:func:`keep_best`); the others are counted as ``round_trip``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from pipeline.config import paths
from pipeline.io import DataFileError, read_tsv
from pipeline.mt.base import Translator
from pipeline.mt.config import direction_langs
from pipeline.mt.score import sentence_chrf

#: The machine-made pools and the direction that translates their machine-written side back.
BACK = {"backtranslation": "en-xx", "synthetic": "en-xx", "forward": "xx-en"}
#: Columns of each pool's file in :data:`pipeline.config.paths.AUG_ROUND_TRIP` (``<origin>.tsv``).
COLUMNS = ("id", "chrf")
#: A verdict of :func:`keep_best`: a row the filters kept, below the pool's share by round-trip chrF.
VERDICT = "round_trip"


def score_pool(model: Translator, pool: pd.DataFrame, origin: str, *, beam: int, batch_size: int, ngram: int):
    """``(id, chrf)`` per row of ``origin``'s ``pool``: its machine-written side translated back (beam search) and
    scored against the side it was translated from."""
    made, source = direction_langs(BACK[origin])  # the pool's columns are the direction's language codes
    back, _ = model.translate(
        list(pool[made]), "beam", beam=beam, batch_size=batch_size, no_repeat_ngram_size=ngram, progress=False
    )
    return list(zip(pool["id"], sentence_chrf(back, list(pool[source])), strict=True))


def read_scores() -> dict[tuple[str, str], float]:
    """``(origin, id) -> chrf`` from the ``round_trip`` stage's files; an error naming the stage if they are
    missing."""
    folder = paths.AUG_ROUND_TRIP
    if not folder.is_dir():
        raise DataFileError(f"augment.round_trip_keep needs {folder}, which the `round_trip` stage writes")
    scores = {}
    for path in sorted(folder.glob("*.tsv")):
        df = read_tsv(path, COLUMNS, allow_empty=True)
        scores |= {(path.stem, i): float(c) for i, c in df.itertuples(index=False, name=None)}
    return scores


def keep_best(verdicts: Sequence[str], scores: Sequence[float], share: float) -> list[str]:
    """``verdicts`` with every ``kept`` row outside the ``ceil(share * kept)`` best by score (ties: pool order)
    turned into :data:`VERDICT`."""
    kept = [i for i, v in enumerate(verdicts) if v == "kept"]
    best = set(sorted(kept, key=lambda i: (-scores[i], i))[: math.ceil(share * len(kept))])
    return [VERDICT if v == "kept" and i not in best else v for i, v in enumerate(verdicts)]
