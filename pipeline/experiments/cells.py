"""The cells a comparison reads: selecting experiments, checking that only the comparison's axes vary, and the
student's AP per experiment and split (one row per replicate seed), with its per-query matrices for the tests.

A cell is one experiment: a language × condition (``aug``, ``augment.size``, ``distill.loss``,
``distill.marginals``, ``evaluate.scoring``, ``mt.epochs``, ``augment.round_trip_keep``) × replicate seed
(``distill.seed``) × root seed (``seed``, a stratum).
:mod:`pipeline.experiments.compare` (the reports) and :mod:`pipeline.experiments.power` (the design's power) read
cells through :func:`select` and :func:`summary_table`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config.paths import QUERY_FORMS
from pipeline.errors import PipelineError
from pipeline.experiments import grid
from pipeline.experiments.conditions import CONDITION, condition
from pipeline.experiments.results import Experiment

#: What ``--results DIR`` alone writes: the answer, ``reports/comparison.*`` (declared in grid.yaml's ``reports:``).
DEFAULT_REPORT = "comparison"


STRATA = {"lang": "lang", "root_seed": "seed"}

REPLICATE = "distill.seed"

ALLOWED_TO_VARY = {*CONDITION.values(), *STRATA.values(), REPLICATE}


class CompareError(PipelineError):
    pass


def _varying(exps: list[Experiment]) -> set[str]:
    """Param keys with more than one value among ``exps`` (a key missing from some, added by a later commit,
    varies only if its values differ)."""
    keys = set().union(*(e.params for e in exps))
    return {k for k in keys if len({repr(e.params[k]) for e in exps if k in e.params}) > 1}


def _key(e: Experiment) -> tuple:
    return (*(e.params.get(p) for p in STRATA.values()), *condition(e.params).values(), e.params.get(REPLICATE))


def _value(e: Experiment, key: str) -> str:
    """A param's value as text; ``grid``: the grid that named the experiment (``experiments.grid``: NAME-values)."""
    return e.name.split("-", 1)[0] if key == "grid" else str(e.params.get(key))


def select(exps: list[Experiment], where: dict[str, str], *more: dict[str, str]) -> list[Experiment]:
    """The experiments matching ``where`` (or any of ``more``); an error if a param other than the comparison's
    axes varies within a stratum (a language and root seed). A param may differ between strata (every contrast is
    within one): such settings are listed by :func:`stratum_settings`. The same cell twice (an experiment and its
    commit) counts once, and ``augment.size`` is ignored where ``aug`` is none. A value ``a|b`` matches either."""
    wheres = [where, *more]
    unknown = sorted({k for w in wheres for k in w} - {"grid"} - set().union(*(e.params for e in exps)))
    if unknown:
        raise CompareError(f"selection key(s) {unknown}: no param of any experiment (nor `grid`)")
    keep = [e for e in exps if any(all(_value(e, k) in v.split("|") for k, v in w.items()) for w in wheres)]
    if not keep:
        raise CompareError(f"no experiment matches {' or '.join(map(str, wheres))}")
    strata: dict[tuple, list[Experiment]] = {}
    for e in keep:
        strata.setdefault(_stratum(e), []).append(e)
    within = {k: stratum for stratum, group in strata.items() for k in _varying(group)}
    extra = sorted(set(within) - ALLOWED_TO_VARY)
    if extra:
        label = {k: ", ".join(f"{s} {v}" for s, v in zip(STRATA, within[k], strict=True)) for k in extra}
        where_ = ", ".join(f"{k} ({label[k]})" for k in extra)
        raise CompareError(
            f"these params differ among the selected experiments of one language and root seed, which would "
            f"confound the comparison: {where_}; narrow the selection with --where key=value"
        )
    seen: set[tuple] = set()
    unique = []
    for e in keep:
        if _key(e) not in seen:
            seen.add(_key(e))
            unique.append(e)
    return unique


def _stratum(e: Experiment) -> tuple[str, ...]:
    """The experiment's language and root seed: contrasts never cross them."""
    return tuple(str(e.params.get(p)) for p in STRATA.values())


def stratum_settings(exps: list[Experiment]) -> pd.DataFrame:
    """Params that differ between strata (languages, root seeds) but are constant within each, as :func:`select`
    checks: one row per stratum, with the root seed only where it varies."""
    keys = sorted(_varying(exps) - ALLOWED_TO_VARY)
    rows = {}
    for e in exps:
        rows.setdefault(_stratum(e), {k: e.params.get(k) for k in keys})
    table = pd.DataFrame([dict(zip(STRATA, s, strict=True)) | v for s, v in sorted(rows.items())])
    shown = [name for name in STRATA if name == "lang" or table[name].nunique() > 1]
    return table.reindex(columns=[*shown, *keys])


def report_form(exps: list[Experiment]) -> str:
    """The query form a report compares: the first of :data:`~pipeline.config.paths.QUERY_FORMS` (``title``, then
    ``desc``) with which every selected experiment was evaluated on every split it has (experiments from before
    both forms were evaluated have ``desc`` only)."""
    for form in QUERY_FORMS:
        if all(form in e.forms(split) for e in exps for split in e.splits() if split != "topics"):
            return form
    raise CompareError(f"the selected experiments share no query form on their splits (forms: {QUERY_FORMS})")


def summary_table(exps: list[Experiment], form: str) -> pd.DataFrame:
    """One row per experiment × split evaluated with ``form`` queries: strata, condition, replicate seed, the test
    and the student's AP."""
    rows = []
    for e in exps:
        for split in e.splits():
            if form not in e.forms(split):
                continue
            rows.append(
                {
                    "exp": e.name,
                    "rev": e.rev,
                    **{k: e.params.get(p) for k, p in STRATA.items()},
                    **condition(e.params),
                    "seed": e.params.get(REPLICATE),
                    "split": split,
                    "collection": e.collection,
                    "form": form,
                    "mt_engine": e.mt_engine,
                    "AP": e.student(split, form)["AP"],
                }
            )
    if not rows:
        raise CompareError(f"no selected experiment has student AP with {form} queries in metrics/eval/*.json")
    return pd.DataFrame(rows)


def seed_query_matrix(table: pd.DataFrame, exps: dict[str, Experiment], split: str) -> pd.DataFrame:
    """Per-query AP of the rows of ``table`` (one condition, one query form): replicate seeds × queries."""
    rows = {r.seed: pd.Series(exps[r.exp].query_ap[split][r.form]) for r in table.itertuples()}
    return pd.DataFrame(rows).T.sort_index()


def paired_matrices(
    cell_a: pd.DataFrame, cell_b: pd.DataFrame, exps: dict[str, Experiment], split: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per-query AP of two conditions on the replicate seeds and queries both have (seeds × queries each)."""
    ma, mb = seed_query_matrix(cell_a, exps, split), seed_query_matrix(cell_b, exps, split)
    seeds, queries = ma.index.intersection(mb.index), ma.columns.intersection(mb.columns)
    return ma.loc[seeds, queries].to_numpy(), mb.loc[seeds, queries].to_numpy()


def declared_reports(grid_file: Path = grid.GRID_FILE) -> dict[str, tuple[dict[str, str], ...]]:
    """The reports ``grid_file`` declares (``reports:``): name -> its selections (an experiment matching any of
    them enters ``reports/NAME.*``); :data:`DEFAULT_REPORT` among them."""
    declared = grid.reports(grid_file)
    if DEFAULT_REPORT not in declared:
        raise CompareError(f"{grid_file}: reports: no {DEFAULT_REPORT!r} (the report --results alone writes)")
    return declared
