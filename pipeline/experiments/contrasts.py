"""The contrasts a comparison tests, in families declared before the grids ran, and their tests: effect, 95 % CI and
p per contrast and language, Holm-adjusted within each family (:mod:`pipeline.experiments.stats` computes them),
and a declared design's answer (pooled over languages, with its equivalence margin and stopping rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import seeds as seeds_
from pipeline.config.paths import SPLITS
from pipeline.experiments import designs, grid
from pipeline.experiments.cells import CompareError, paired_matrices
from pipeline.experiments.conditions import AXES, CONDITION, UNUSED, partners, uses
from pipeline.experiments.results import Experiment
from pipeline.experiments.stats import (
    OUTCOMES,
    crossed_test,
    equivalence_reach,
    holm,
    mde,
    nested_test,
    outcome,
    pooled_test,
    two_level_bootstrap,
)

#: The condition columns a test's random seed is derived from: those the reports had from the start. A column added
#: later (``mt_epochs``, ``keep``) leaves every earlier report's bootstrap draws as they were; two tests that differ
#: only in it share their resamples, and each stays a valid test.
SEEDED = ("aug", "size", "loss", "marginals", "scoring")


@dataclass(frozen=True)
class Contrast:
    """A − B: the condition with ``axis`` = ``a`` against the same condition with ``axis`` = ``b``."""

    family: str
    axis: str
    a: str
    b: str
    splits: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.a} − {self.b}"


def declared_contrasts(grid_file: Path = grid.GRID_FILE) -> tuple[Contrast, ...]:
    """The contrasts the reports test, in the families ``grid.yaml``'s ``contrasts:`` declares (the first one is the
    primary); an error names the entry that is malformed."""
    out = []
    declared = grid.contrast_families(grid_file)
    if not declared:
        raise grid.GridError(f"{grid_file}: no {grid.CONTRASTS_KEY}: (the families of contrasts the reports test)")
    for family, entries in declared.items():
        if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
            raise grid.GridError(f"{grid_file}: {grid.CONTRASTS_KEY}.{family}: expected a non-empty list of mappings")
        for i, entry in enumerate(entries):
            where = f"{grid_file}: {grid.CONTRASTS_KEY}.{family}[{i}]"
            axes = [k for k in entry if k != "splits"]
            if len(axes) != 1 or axes[0] not in AXES:
                raise grid.GridError(f"{where}: expected one axis of {list(AXES)} mapped to 'A - B', got {entry}")
            a, sep, b = (part.strip() for part in str(entry[axes[0]]).partition(" - "))
            splits = entry.get("splits", list(SPLITS))
            if not (sep and a and b):
                raise grid.GridError(f"{where}.{axes[0]}: expected 'A - B', got {entry[axes[0]]!r}")
            if not isinstance(splits, list) or not splits or not set(splits) <= set(SPLITS):
                raise grid.GridError(f"{where}.splits: expected a list of {list(SPLITS)}, got {splits!r}")
            out.append(Contrast(family, axes[0], a, b, tuple(splits)))
    return tuple(out)


def families(declared: tuple[Contrast, ...]) -> list[str]:
    """The families of ``declared``, in declaration order."""
    return list(dict.fromkeys(c.family for c in declared))


def test_of(table: pd.DataFrame) -> dict[str, str]:
    """The test (``prepare.collection``, several joined by commas), the query form of a summary table's numbers and
    the engine(s) that decoded its generators' MT (``mt.engine``)."""
    return {
        "collection": ", ".join(sorted(set(table["collection"]))),
        "form": table["form"].iloc[0],
        "mt_engine": ", ".join(sorted(set(table["mt_engine"]))),
    }


def test_line(table: pd.DataFrame) -> str:
    """The sentence that opens every report: the test and the query form all its numbers are on."""
    test = test_of(table)
    collections = ", ".join(f"`{c}`" for c in test["collection"].split(", "))
    engines = ", ".join(f"`{e}`" for e in test["mt_engine"].split(", "))
    return (
        f"All numbers below: student AP on the {collections} test (`prepare.collection`), `{test['form']}` queries; "
        f"MT decoded by {engines} (`mt.engine`).\n\n"
    )


def bootstrap_test(a: np.ndarray, b: np.ndarray, seed: int) -> dict:
    """The reports' test without a declared design: the two-level bootstrap."""
    return two_level_bootstrap(a, b, seed=seed)


def crossed_t(a: np.ndarray, b: np.ndarray, seed: int) -> dict | None:
    """The test of a declared design (:func:`~pipeline.experiments.stats.crossed_test`): effect, CI and p from
    one t distribution; no resampling, so ``seed`` is unused. None with fewer than 2 seeds (no seed variance)."""
    if a.shape[0] < 2:
        return None
    res = crossed_test(a, b)
    return {k: res[k] for k in ("delta", "ci_low", "ci_high", "p", "se", "df", "seeds", "queries")}


def contrasts(table: pd.DataFrame, exps: dict[str, Experiment], test=bootstrap_test) -> pd.DataFrame:
    """Every declared contrast the table allows, per stratum × split × the rest of the condition; Holm per family.
    ``test(a, b, seed)``: :func:`bootstrap_test`, or :func:`crossed_t` for a report with a declared design."""
    cond = list(CONDITION)
    declared = declared_contrasts()
    out = []
    for (lang, root, split), sub in table.groupby(["lang", "root_seed", "split"], sort=True):
        cells = {tuple(k): g for k, g in sub.groupby(cond, sort=True)}
        for c in declared:
            if split not in c.splits:
                continue
            for key, cell_a in cells.items():
                a = dict(zip(cond, key, strict=True))
                if str(a[c.axis]) != c.a:
                    continue
                for key_b in partners(a, c.axis, c.b, cells):  # e.g. B = none: no rows, no MT
                    ma, mb = paired_matrices(cell_a, cells[key_b], exps, split)
                    if ma.shape[0] == 0 or ma.shape[1] < 2:
                        continue
                    seeded = repr(tuple(key[: len(SEEDED)]))  # the columns since the first reports: draws stay
                    res = test(ma, mb, seeds_.derive(0, "compare", str(lang), str(root), split, c.label, seeded))
                    if res is None:
                        continue
                    # A's condition, with B's value of a column only B uses (parallel − backtranslation: its MT)
                    row = a | {k: v for k, v in zip(cond, key_b, strict=True) if k != c.axis and not uses(a["aug"], k)}
                    out.append({"family": c.family, "lang": lang, "root_seed": root, "split": split, **row,
                                "contrast": c.label, **res})  # fmt: skip
    tests = pd.DataFrame(out)
    if tests.empty:
        return tests
    tests["p_holm"] = np.nan
    for idx in tests.groupby("family").groups.values():
        tests.loc[idx, "p_holm"] = holm(tests.loc[idx, "p"])
        tests.loc[idx, "family_size"] = len(idx)
    tests["family"] = pd.Categorical(tests["family"], families(declared), ordered=True)
    order = ["family", "lang", "root_seed", "split", *(k for k in SEEDED if k != "aug"), "contrast"]
    order += [k for k in cond if k not in order and k != "aug"]  # the later columns after the contrast
    return tests.sort_values(order).reset_index(drop=True)


def design_answer(table: pd.DataFrame, exps: dict[str, Experiment], design: designs.Design) -> pd.DataFrame:
    """The declared design's answer: per split, ``design.a − design.b`` per pooled language (crossed seeds ×
    queries test) and pooled over the languages present (equal weights, Q and tau); a design with root seeds
    (``design.roots`` > 1) goes to :func:`nested_answer`. Holm over the splits for the pooled rows (the primary
    family), over languages × splits for the per-language rows (secondary), for the difference and for TOST within
    ``design.margin``; each row's MDE from its own SE and df at the family's size, and its outcome
    (:func:`~pipeline.experiments.stats.outcome`)."""
    if design.roots > 1:
        return nested_answer(table, exps, design)
    rows = []
    for split in design.splits:
        parts = []
        for lang in design.pooled:
            sub = table[(table["lang"] == lang) & (table["split"] == split)]
            arms = [sub[sub["aug"] == arm] for arm in (design.a, design.b)]
            if any(arm.empty for arm in arms):
                continue
            ma, mb = paired_matrices(*arms, exps, split)
            if ma.shape[0] < 2 or ma.shape[1] < 2:
                continue
            res = crossed_test(ma, mb, alpha=design.alpha, margin=design.margin)
            parts.append(res)
            rows.append({"split": split, "languages": lang, "pooled": False, **res})
        if parts:
            languages = " ".join(r["languages"] for r in rows if r["split"] == split and not r["pooled"])
            pooled = pooled_test(parts, alpha=design.alpha, margin=design.margin)
            rows.append({"split": split, "pooled": True, **pooled, "languages": languages})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    family = np.where(out["pooled"], FAMILY_ORDER[0], FAMILY_ORDER[2])
    out = _adjusted(out.drop(columns=["terms"]).assign(contrast=f"{design.a} − {design.b}", family=family), design)
    return out.drop(columns=["contrast"])


def nested_answer(table: pd.DataFrame, exps: dict[str, Experiment], design: designs.Design) -> pd.DataFrame:
    """A design with root seeds: per contrast and split, A − B pooled over the languages that have ≥ 2 root seeds
    with both arms (:func:`~pipeline.experiments.stats.nested_test`, the root seed the unit; Q, tau and the
    random-effects interval beside it) and one row per language (t on its R − 1 df). The primary contrasts
    (``aug`` pairs) and then the secondary ones (``design.secondary``); Holm within the primary pooled rows, within
    the secondary pooled rows, and over every per-language row (:func:`_adjusted`)."""
    rows = []
    declared = [("primary", "aug", a, b) for a, b in design.contrasts] + [("secondary", *c) for c in design.secondary]
    for family, axis, a, b in declared:
        for split in design.splits:
            by_language = {}
            for lang in design.pooled:
                sub = table[(table["lang"] == lang) & (table["split"] == split)]
                matrices = [ma - mb for _, ma, mb in root_pairs(sub, axis, a, b, exps, split)]
                if len(matrices) >= 2:
                    by_language[lang] = matrices
            if not by_language:
                continue
            res = nested_test(by_language, alpha=design.alpha, margin=design.margin)
            per_language = res.pop("per_language")
            base = {"contrast": f"{a} − {b}" if axis == "aug" else f"{axis} {a} − {b}", "split": split}
            rows.append({**base, "family": f"{family} (pooled)", "pooled": True, **res,
                         "languages": " ".join(by_language)})  # fmt: skip
            rows += [{**base, "family": "by language", "pooled": False, "languages": lang, **r}
                     for lang, r in per_language.items()]  # fmt: skip
    out = pd.DataFrame(rows)
    return out if out.empty else _adjusted(out, design)


def root_pairs(sub: pd.DataFrame, axis: str, a: str, b: str, exps: dict[str, Experiment], split: str) -> list:
    """Per root seed of one language's rows on one split: (root seed, A's and B's per-query AP: seeds × queries
    each, on the seeds and queries both have). A: the rows whose ``axis`` is ``a``, with the remedy off unless
    ``axis`` is the remedy (``keep``); B: its partner (:func:`~pipeline.experiments.conditions.partners`). A root
    seed without both is left out; an error where A has several conditions in one root seed (the report mixes
    levels of another axis: narrow its selection)."""
    cond = list(CONDITION)
    at, keep = cond.index(axis), cond.index("keep")
    out = []
    for root, rows in sub.groupby("root_seed", sort=True):
        cells = {tuple(k): g for k, g in rows.groupby(cond, sort=True)}
        keys_a = [k for k in cells if str(k[at]) == a and (axis == "keep" or k[keep] == UNUSED["keep"])]
        if len(keys_a) > 1:
            raise CompareError(f"{axis} = {a} has {len(keys_a)} conditions in root seed {root}: {keys_a}")
        if not keys_a:
            continue
        found = partners(dict(zip(cond, keys_a[0], strict=True)), axis, b, cells)
        if len(found) != 1:
            continue
        ma, mb = paired_matrices(cells[keys_a[0]], cells[found[0]], exps, split)
        if ma.size:
            out.append((root, ma, mb))
    return out


def _adjusted(out: pd.DataFrame, design: designs.Design) -> pd.DataFrame:
    """Holm within each family of rows (``family``: the pooled primary rows, the pooled secondary ones, the
    per-language rows), each row's MDE and equivalence reach at its family's size, and its outcome in the
    contrast's words."""
    for _, idx in out.groupby("family", sort=False).groups.items():
        out.loc[idx, "family_size"] = len(idx)
        out.loc[idx, "p_holm"] = holm(out.loc[idx, "p"])
        out.loc[idx, "p_equivalence_holm"] = holm(out.loc[idx, "p_equivalence"])
    out["family_size"] = out["family_size"].astype(int)
    kw = {"alpha": design.alpha, "power": design.power}
    sizes = list(zip(out["se"], out["df"], out["family_size"], strict=True))
    out["mde"] = [mde(se**2, df, family=m, **kw) for se, df, m in sizes]
    out["equivalence_reach"] = [equivalence_reach(se**2, df, family=m, **kw) for se, df, m in sizes]
    out["outcome"] = [
        _outcome_name(c, outcome(d, p, q, design.alpha), design.margin)
        for c, d, p, q in zip(out["contrast"], out["delta"], out["p_holm"], out["p_equivalence_holm"], strict=True)
    ]
    out.insert(0, "family", out.pop("family"))
    order = {f: i for i, f in enumerate(FAMILY_ORDER)}
    return out.sort_values(["family", "split"], key=lambda c: c.map(order) if c.name == "family" else c,
                           kind="stable").reset_index(drop=True)  # fmt: skip


#: The families of a design's answer, in the order it lists them.
FAMILY_ORDER = ("primary (pooled)", "secondary (pooled)", "by language")


def _outcome_name(contrast: str, result: str, margin: float) -> str:
    a, b = contrast.split(" − ")
    names = {OUTCOMES[0]: f"{a} better", OUTCOMES[1]: f"{b} better",
             OUTCOMES[2]: f"equivalent within ±{margin}", OUTCOMES[3]: "inconclusive"}  # fmt: skip
    return names[result]


def interim(answer: pd.DataFrame, done: int, declared: int) -> pd.DataFrame:
    """The answer with no outcome while ``done`` < ``declared`` cells have run: each row's outcome is
    ``interim`` (its effect, CI and p stay, for the record; the families' Holm sizes are not yet final)."""
    return answer.assign(outcome="interim") if done < declared and not answer.empty else answer
