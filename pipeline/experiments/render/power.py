"""The declared design's power: planned, and re-measured on its own cells."""

from __future__ import annotations

import pandas as pd

from pipeline.config import paths
from pipeline.experiments.render import source
from pipeline.io import read_json


def power() -> str:
    """The declared design's power (``reports/power.json``, ``python -m pipeline.experiments.power``): per shifted
    split, the pooled primary contrast's MDE and equivalence reach at each measured size and proposed design, and
    the measured type-I error of the tests."""
    path = paths.REPORTS_DIR / "power.json"
    data = read_json(path)
    cfg = data["settings"]
    rows = pd.DataFrame(data["designs"])
    pooled = rows[rows["lang"].str.startswith("pooled")]
    lines = [
        f"Pooled over `{cfg['pooled']}` (m = {cfg['family']}, alpha = {cfg['alpha']} two-sided at alpha / m, "
        f"power {cfg['power']}); components measured at each augmentation size (languages not measured at a size "
        "take the mean of those measured):",
        "",
        "| split | size | measured | seeds | queries | SE | MDE | equivalence reach |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in pooled.itertuples():
        measured = r.lang.removeprefix("pooled (").removesuffix(" measured)")
        lines.append(
            f"| {r.split} | {r.size} | {measured} | {r.seeds} | {r.queries} | {r.se:.4f} | {r.mde:.4f} "
            f"| {r.equivalence_reach:.4f} |"
        )
    calib = pd.DataFrame(data["calibration"])
    lines += [
        "",
        f"Type-I error at nominal {cfg['alpha']}, measured on simulated null data (normal effects with the measured "
        "components and design):",
        "",
        "| split | test | seeds | queries | simulations | type-I error |",
        "|---|---|---|---|---|---|",
    ]
    for r in calib.itertuples():
        lines.append(f"| {r.split} | {r.test} | {r.seeds} | {r.queries} | {r.sims} | {r.type_one_error:.3f} |")
    return "\n".join([*lines, "", source(path)])


def power_decisive() -> str:
    """The design's power re-measured on its own cells (``reports/power_decisive.json``: ``python -m
    pipeline.experiments.power --report decisive --seeds 5 --queries 1000 --out reports/power_decisive.md``): the
    components each language's cells give, and the MDE they imply for the declared seeds and queries."""
    path = paths.REPORTS_DIR / "power_decisive.json"
    data = read_json(path)
    measured = pd.DataFrame(data["measured"])
    rows = pd.DataFrame(data["designs"])
    lines = [
        "| split | language | seeds run | queries | Δ | SD seed | SD query | SD residual |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in measured.itertuples():
        lines.append(
            f"| {r.split} | {r.lang} | {r.seeds} | {r.queries} | {r.delta:+.4f} | {r.var_seed**0.5:.4f} "
            f"| {r.var_query**0.5:.4f} | {r.var_residual**0.5:.4f} |"
        )
    lines += [
        "",
        f"What those components imply for the declared design (m = {data['settings']['family']}, power "
        f"{data['settings']['power']}; a pooled row gives any pooled language not yet run the mean of those "
        "measured):",
        "",
        "| split | language | seeds | queries | SE | MDE | equivalence reach |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows.itertuples():
        lines.append(
            f"| {r.split} | {r.lang} | {r.seeds} | {r.queries} | {r.se:.4f} | {r.mde:.4f} | {r.equivalence_reach:.4f} |"
        )
    from pipeline.experiments import designs

    margin = designs.declared()["decisive"].margin
    pooled = rows[rows["lang"].str.startswith("pooled")]
    lines += ["", f"Against the declared margin of ±{margin} AP, the pooled contrast's:"]
    for r in pooled.itertuples():
        lines.append(
            f"- {r.split}: MDE {r.mde:.4f} ({'within' if r.mde <= margin else 'above'} {margin}), equivalence "
            f"reach {r.equivalence_reach:.4f}: "
            + (
                f"a true Δ of 0 is declared equivalent within ±{margin} with power {data['settings']['power']}."
                if r.equivalence_reach <= margin
                else f"even a true Δ of 0 is declared equivalent within ±{margin} with less than power "
                f"{data['settings']['power']}, so this split ends as a difference or inconclusive unless its Δ is "
                "close to 0."
            )
        )
    return "\n".join([*lines, "", source(path)])
