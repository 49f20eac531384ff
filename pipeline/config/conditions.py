"""The conditions a run can be in: every allowed value of the study's design, written once.

The params schema (:mod:`pipeline.config.params`) builds its choices from these tuples, and the code that acts on a
value checks it against the same tuple.
"""

from __future__ import annotations

#: The values of ``aug``, in report order, and the augmentation pools (origins) each draws from: the one list
#: that the params schema, the bitext draw, the comparison and the docs read (``both``: half from each pool).
AUG_ORIGINS: dict[str, tuple[str, ...]] = {
    "none": (),
    "backtranslation": ("backtranslation",),
    "synthetic": ("synthetic",),
    "both": ("backtranslation", "synthetic"),
    "parallel": ("parallel",),  # the oracle control: the back-translation pool's verses with their real English
    "forward": ("forward",),  # the same verses' real English with its machine translation as the target side
}
#: The augmentation filters in the order they run (:mod:`pipeline.augment.pools`); the first two always run,
#: the others are ``augment.filters``.
AUG_FILTERS = ("empty", "test_text", "degenerate", "length_ratio", "copy", "language", "duplicate")
AUG_FILTERS_ALWAYS = ("empty", "test_text")
#: The MT directions the pipeline trains (stage ``train_mt``, side by side): ``xx-en`` translates
#: target-language text into English (back-translation, synthesis, the NMT baselines), ``en-xx`` English into the
#: target language (forward translation, ``aug: forward``).
MT_DIRECTIONS = ("xx-en", "en-xx")
#: ``distill.loss``: OPTICAL's OT token alignment, the pooled-embedding baseline, or both (:mod:`pipeline.losses`).
DISTILL_LOSSES = ("ot", "pooled", "ot+pooled")
#: ``evaluate.scoring``: cosine of pooled embeddings, or late interaction over token states
#: (:mod:`pipeline.retrieval.search`).
SCORINGS = ("dense", "maxsim")
#: The tests ``prepare`` builds (``prepare.collection``; docs/data.md): ``topical`` (distractor documents, graded
#: cross-reference judgments, the ``topics`` split) and ``known_item`` (one aligned verse per query, the earlier test).
COLLECTIONS = ("topical", "known_item")
