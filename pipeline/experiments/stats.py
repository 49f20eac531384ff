"""The statistics of the reports: the two-level bootstrap of a paired AP difference and the Holm adjustment.

Pure functions on numpy arrays; :mod:`pipeline.experiments.compare` chooses what to compare, and renders the
tables and charts. The unit is the (replicate seed, query) pair: row k of both matrices is replicate seed k
(``distill.seed`` also draws the seed bitext, so seed k of A and seed k of B share it), column j the same query.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from statsmodels.stats.multitest import multipletests

from pipeline.errors import PipelineError

#: Bootstrap samples per contrast.
RESAMPLES = 10_000


class StatsError(PipelineError):
    pass


def two_level_bootstrap(a: np.ndarray, b: np.ndarray, *, resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """Effect, 95 % CI and two-sided p of mean(a − b) for per-query AP matrices (replicate seeds × queries).

    Row k of ``a`` and of ``b`` share replicate seed k; column j is the same query. Each bootstrap sample draws
    the seeds with replacement, then the queries with replacement, and takes the mean difference over the drawn
    cells (two multinomial weight vectors, so no loop). The CI is the percentile interval; the p-value is the
    share of the centred bootstrap distribution at least as far from 0 as the observed effect, (1 + count) /
    (1 + resamples). With one seed this is the ordinary paired bootstrap over queries.
    """
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] < 2:
        raise StatsError("the bootstrap needs two equally shaped seeds × queries matrices with ≥ 2 queries")
    d = a - b
    n_seeds, n_queries = d.shape
    delta = float(d.mean())
    rng = np.random.default_rng(seed)
    w_seed = rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=resamples)
    w_query = rng.multinomial(n_queries, np.full(n_queries, 1 / n_queries), size=resamples)
    boot = np.einsum("bs,sq,bq->b", w_seed, d, w_query) / (n_seeds * n_queries)
    lo, hi = np.quantile(boot, [0.025, 0.975])
    extreme = np.abs(boot - delta) >= abs(delta) - 1e-12
    return {
        "delta": delta,
        "ci_low": float(lo),
        "ci_high": float(hi),
        "p": float((1 + extreme.sum()) / (1 + resamples)),
        "seeds": n_seeds,
        "queries": n_queries,
    }


def holm(pvalues: Iterable[float]) -> np.ndarray:
    """Holm-adjusted p-values of one family, in the order given (``statsmodels.stats.multitest``)."""
    p = np.asarray(list(pvalues), dtype=float)
    return multipletests(p, method="holm")[1] if len(p) else p
