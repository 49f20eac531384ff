"""The README's second answer: when does augmentation help (design ``augment_help``, issue 42)? Where its grids
stand and, once every declared cell of the design has run, each primary contrast's pooled outcome per shifted
split, with the generator-quality axis's crossing where its grid has run too."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.config import paths
from pipeline.experiments import designs, grid, results
from pipeline.experiments.render import source

DESIGN = "augment_help"
#: The grids around the design, in their run order (grid.yaml's comment on augment_help); each has a report of its name.
GRIDS = ("augment_help", "stopping_rule", "mt_quality", "augment_help_controls")


def progress() -> dict[str, tuple[int, int]]:
    """Per grid of :data:`GRIDS`: (cells in ``results/``, cells declared)."""
    out, defaults = {}, grid.committed_params()
    for name in GRIDS:
        cells = dict(grid.cells(name, defaults=defaults))
        ran = sum((Path(results.RESULTS_DIR) / f"{cell}.json").exists() for cell in cells)
        out[name] = (ran, len(cells))
    return out


def augment_help_status() -> str:
    """The README block: progress per grid; with every ``augment_help`` cell in ``results/``, the primary family's
    pooled outcomes (``reports/augment_help_answer.csv``) and, with every ``mt_quality`` cell, where each arm's
    line crosses zero (``reports/mt_quality_quality.csv``)."""
    design = designs.declared()[DESIGN]
    done = progress()
    answer_csv = paths.REPORTS_DIR / f"{design.report}_answer.csv"
    quality_csv = paths.REPORTS_DIR / "mt_quality_quality.csv"
    lines = []
    complete = answer_csv.exists() and done[DESIGN][0] == done[DESIGN][1]
    if complete:
        answer = pd.read_csv(answer_csv)
        for r in answer[answer["family"] == "primary (pooled)"].itertuples():
            lines.append(
                f"- **{r.contrast}, {r.split}: {r.outcome}** — pooled over `{r.languages}`, the root seed the unit: "
                f"Δ AP {r.delta:+.4f} [{r.ci_low:+.4f}, {r.ci_high:+.4f}], Holm p {r.p_holm:.3g}, MDE {r.mde:.4f}; "
                f"languages random {r.re_delta:+.4f} [{r.re_ci_low:+.4f}, {r.re_ci_high:+.4f}]."
            )
        test, form = answer["collection"].iloc[0], answer["form"].iloc[0]
        lines.append(f"- **Scope:** student AP on the `{test}` test, `{form}` queries; the generators are the "
                     f"pipeline's own (its 2-layer MT, a 270M LLM); tables: `reports/{design.report}.md`.")  # fmt: skip
    else:
        lines.append("**Not settled yet**: no outcome is stated before the declared cells have run.")
    quality_done = done["mt_quality"][0] == done["mt_quality"][1]
    if complete and quality_done and quality_csv.exists():
        for r in pd.read_csv(quality_csv).itertuples():
            lines.append(
                f"- **{r.arm} against the MT's chrF:** {r.slope_per_10_chrf:+.4f} AP per 10 chrF points "
                f"[{r.ci_low:+.4f}, {r.ci_high:+.4f}] (Holm p {r.p_holm:.3g}), zero at chrF {r.zero_at_chrf:.1f} "
                f"(measured {r.chrf_measured})."
            )
    lines += [
        "- **Progress:** " + "; ".join(f"`{g}` {ran} of {n} cells" for g, (ran, n) in done.items()) + " in `results/`.",
        "",
        source(
            results.RESULTS_DIR,
            *([answer_csv] if complete else []),
            *([quality_csv] if complete and quality_done else []),
        ),  # fmt: skip
    ]
    return "\n".join(lines)
