"""The condition columns of a cell: which params make an experiment's condition (as opposed to its stratum, a
language and root seed, and its replicate seed), and their values where an ``aug`` value does not use them.

:mod:`pipeline.experiments.grid` checks a design's contrasts against these columns; :mod:`pipeline.experiments.cells`
reads them from every experiment's params.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.augment.round_trip import BACK as MACHINE_MADE
from pipeline.config.conditions import AUG_ORIGINS

#: Table column -> the param it comes from. A condition is (aug, size, loss, marginals, scoring, mt_epochs, keep).
CONDITION = {
    "aug": "aug",
    "size": "augment.size",
    "loss": "distill.loss",
    "marginals": "distill.marginals",
    "scoring": "evaluate.scoring",
    "mt_epochs": "mt.epochs",  # the generator-quality axis (issue 42)
    "keep": "augment.round_trip_keep",  # the remedy for noisy pairs
}

#: The condition columns a contrast may vary (all but the size, which follows ``aug``).
AXES = tuple(k for k in CONDITION if k != "size")

#: Condition params that older commits did not have, and the value those commits behaved as.
BEFORE_PARAM = {"distill.marginals": "uniform", "augment.round_trip_keep": 1.0}

#: Condition columns that some ``aug`` values do not use, and the value they take there: ``size`` 0 (``none``: no
#: augmentation rows), ``mt_epochs`` 0 (no pool the pipeline's MT made: ``none``, ``parallel``), ``keep`` 1.0
#: (nothing for the round trip to filter). So ``aug: none`` is one cell whatever the MT, and every A − none
#: contrast pairs with it.
UNUSED = {"size": 0, "mt_epochs": 0, "keep": 1.0}


def uses(aug: str, column: str) -> bool:
    """Whether ``aug`` uses condition column ``column`` (every column but those of :data:`UNUSED` always)."""
    if column not in UNUSED:
        return True
    origins = AUG_ORIGINS.get(aug, ())
    return bool(origins) if column == "size" else any(o in MACHINE_MADE for o in origins)


def normalized(cond: dict) -> dict:
    """``cond`` with every column its ``aug`` does not use at its :data:`UNUSED` value."""
    return {k: v if uses(cond["aug"], k) else UNUSED[k] for k, v in cond.items()}


def partners(a: dict, axis: str, b: str, conditions: Iterable[tuple]) -> list[tuple]:
    """Of ``conditions`` (tuples in :data:`CONDITION`'s order), those that are condition ``a`` with ``axis`` = ``b``
    (as written in a contrast, read as the type of ``a``'s value): columns B uses and A does not (the MT level of
    backtranslation in parallel − backtranslation) match any value, columns B does not use are at their
    :data:`UNUSED` value."""
    want = normalized({**a, axis: type(a[axis])(b)})
    free = {k for k in UNUSED if k != axis and not uses(a["aug"], k) and uses(want["aug"], k)}
    return [key for key in conditions if all(k in free or v == want[k] for k, v in zip(CONDITION, key, strict=True))]


def condition(params: dict) -> dict:
    """The condition columns of an experiment's params (:func:`normalized`; numbers as numbers, a count missing from
    the params as 0)."""
    cond = normalized({k: params.get(p, BEFORE_PARAM.get(p)) for k, p in CONDITION.items()})
    counts = {k: int(cond[k] or 0) for k in ("size", "mt_epochs")}
    return cond | counts | {"keep": float(cond["keep"])}
