"""Static PNG figures (matplotlib, Agg): AP by system and split, and training curves from DVCLive TSVs.

``dvc plots show`` renders the same data as HTML, but that page loads its chart library from the web; these
PNGs work offline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.io import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, dpi: int = 110) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)


def grouped_bars(
    ax,
    table: pd.DataFrame,
    groups: list[str],
    series: list[str],
    *,
    group_col: str,
    series_col: str,
    value: str,
    error: str | None = None,
    colours: dict[str, str] | None = None,
) -> None:
    """The one bar-chart drawer: a group of bars per ``groups`` value, one bar per ``series`` value in each.

    ``table`` has one row per (group, series) with ``value`` (missing rows draw as 0) and optionally ``error``
    (an error bar). ``colours`` fixes a colour per series, so that several panels agree.
    """
    width = 0.8 / max(1, len(series))
    x = np.arange(len(groups))
    for i, name in enumerate(series):
        sub = table[table[series_col].astype(str) == name].set_index(group_col).reindex(groups)
        extra = {"yerr": sub[error].fillna(0), "capsize": 2} if error else {}
        if colours:
            extra["color"] = colours[name]
        ax.bar(x + i * width, sub[value].fillna(0), width, label=name, **extra)
    ax.set_xticks(x + 0.4 - width / 2, groups)


def ap_bar_chart(table: pd.DataFrame, splits: list[str], title: str, path: Path) -> None:
    """AP by split, one bar per system (``table``: system, split, AP); ``splits``: the groups, in order."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(7.5, 1.5 * len(splits)), 3.8))
    systems = list(dict.fromkeys(table["system"]))
    grouped_bars(ax, table, splits, systems, group_col="split", series_col="system", value="AP")
    ax.tick_params(axis="x", labelsize=8)
    ax.set_ylabel("AP")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def panels_bar_chart(
    table: pd.DataFrame, panel_col: str, splits: list[str], series_order: list[str], title: str, path: Path
) -> None:
    """One panel per ``panel_col`` value (e.g. language): mean AP ± sd by split, one bar per ``aug``.

    ``table``: panel_col, split, aug, mean, sd. Every panel gives an ``aug`` the same colour.
    """
    plt = _pyplot()
    panels = list(table.groupby(panel_col, observed=True))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    colours = {aug: f"C{i}" for i, aug in enumerate(series_order)}
    for ax, (name, sub) in zip(axes[0], panels, strict=True):
        present = set(sub["aug"].astype(str))
        series = [a for a in series_order if a in present]
        grouped_bars(
            ax, sub, splits, series, group_col="split", series_col="aug", value="mean", error="sd", colours=colours
        )
        ax.tick_params(axis="x", labelsize=8)
        ax.set_title(f"{name}: {title}")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path, dpi=120)
    plt.close(fig)


def dose_response_chart(table: pd.DataFrame, splits: list[str], series_order: list[str], path: Path) -> None:
    """Mean AP ± sd against the number of augmentation rows: one row of panels per language (and root seed),
    one panel per split, one line per ``aug``, each starting from ``aug: none`` at 0 rows.

    ``table``: lang, root_seed, split, aug, size, mean, sd.
    """
    plt = _pyplot()
    strata = list(table.groupby(["lang", "root_seed"], observed=True))
    fig, axes = plt.subplots(
        len(strata), len(splits), figsize=(4 * len(splits), 3.2 * len(strata)), squeeze=False, sharey="row"
    )
    colours = {aug: f"C{i}" for i, aug in enumerate(series_order)}
    for row, ((lang, root), sub) in zip(axes, strata, strict=True):
        for ax, split in zip(row, splits, strict=True):
            here = sub[sub["split"].astype(str) == split]
            none = here[here["aug"].astype(str) == "none"]
            for aug in series_order[1:]:
                line = pd.concat([none, here[here["aug"].astype(str) == aug]]).sort_values("size")
                if len(line) > len(none):
                    ax.errorbar(line["size"], line["mean"], yerr=line["sd"].fillna(0), marker="o", capsize=2,
                                label=aug, color=colours[aug])  # fmt: skip
            ax.set_title(f"{lang} (seed {root}): {split}", fontsize=9)
            ax.set_xlabel("augmentation rows")
            ax.set_ylabel("student AP")
            ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path, dpi=120)
    plt.close(fig)


def forest_plot(rows: pd.DataFrame, margin: float, title: str, path: Path) -> None:
    """Effects with their CIs, one panel per split: per-language rows, then the pooled row (a diamond); the
    equivalence margin shaded, 0 drawn. ``rows``: split, label, delta, ci_low, ci_high, pooled (bool)."""
    plt = _pyplot()
    splits = list(dict.fromkeys(rows["split"]))
    n = max(len(rows[rows["split"] == s]) for s in splits)
    fig, axes = plt.subplots(1, len(splits), figsize=(4.2 * len(splits), 0.45 * n + 1.4), squeeze=False, sharey=True)
    for ax, split in zip(axes[0], splits, strict=True):
        sub = rows[rows["split"] == split].reset_index(drop=True)
        y = np.arange(len(sub))[::-1]
        ax.axvspan(-margin, margin, color="0.9", label=f"±{margin} (equivalence margin)")
        ax.axvline(0, color="0.4", lw=0.8)
        for yi, r in zip(y, sub.itertuples(), strict=True):
            ax.plot([r.ci_low, r.ci_high], [yi, yi], color="C3" if r.pooled else "C0", lw=2 if r.pooled else 1.2)
            ax.plot(r.delta, yi, marker="D" if r.pooled else "o", color="C3" if r.pooled else "C0")
        ax.set_yticks(y, sub["label"])
        ax.set_title(split, fontsize=9)
        ax.set_xlabel(title)
    # One legend above the panels, where it hides no row.
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="upper center", fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight()))
    _save(fig, path, dpi=120)
    plt.close(fig)


def quality_chart(points: pd.DataFrame, limit: str, path: Path) -> None:
    """Δ AP (arm − none) against the MT's chrF, one panel per language: each root seed's points, the mean per
    level joined by a line per arm, the ``limit`` arm (no MT) as a dashed level, 0 drawn. ``points``: arm, lang,
    root_seed, mt_epochs, chrf, delta (:func:`pipeline.experiments.quality.points`)."""
    plt = _pyplot()
    langs = sorted(set(points["lang"]))
    fig, axes = plt.subplots(1, len(langs), figsize=(4.2 * len(langs), 3.4), squeeze=False, sharey=True)
    for ax, lang in zip(axes[0], langs, strict=True):
        sub = points[points["lang"] == lang]
        ax.axhline(0, color="0.4", lw=0.8)
        arms = [a for a in dict.fromkeys(sub["arm"]) if a != limit]
        for k, arm in enumerate(arms):
            g = sub[sub["arm"] == arm]
            ax.scatter(g["chrf"], g["delta"], color=f"C{k}", s=12, alpha=0.5)
            mean = g.groupby("mt_epochs")[["chrf", "delta"]].mean().sort_values("chrf")
            ax.plot(mean["chrf"], mean["delta"], color=f"C{k}", marker="o", label=arm)
        if (lim := sub[sub["arm"] == limit]).size:
            ax.axhline(lim["delta"].mean(), color="0.2", ls="--", lw=1, label=f"{limit} (real English)")
        ax.set_title(lang, fontsize=9)
        ax.set_xlabel("MT chrF, target-genre dev")
    axes[0][0].set_ylabel("Δ AP (arm − none)")
    axes[0][0].legend(fontsize=7, frameon=False)
    fig.tight_layout()
    _save(fig, path, dpi=120)
    plt.close(fig)


def training_curves(live_dirs: dict[str, Path], path: Path) -> list[str]:
    """One panel per DVCLive directory that has ``plots/metrics/**.tsv``; returns the curves drawn."""
    plt = _pyplot()
    panels = {}
    for name, root in live_dirs.items():
        files = sorted((root / "plots" / "metrics").rglob("*.tsv")) if root.exists() else []
        if files:
            panels[name] = files
    if not panels:
        return []
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.2), squeeze=False)
    drawn = []
    for ax, (name, files) in zip(axes[0], panels.items(), strict=True):
        for f in files:
            df = pd.read_csv(f, sep="\t")
            metric = [c for c in df.columns if c not in ("step", "timestamp")][0]
            label = f.relative_to(live_dirs[name] / "plots" / "metrics").with_suffix("").as_posix()
            ax.plot(df["step"], df[metric], label=label)
            drawn.append(f"{name}/{metric}")
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.legend(fontsize=6)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return drawn
