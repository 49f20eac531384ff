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


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


def ap_bar_chart(table: pd.DataFrame, splits: list[str], title: str, path: Path) -> None:
    """Grouped bars: one group per split, one bar per system (``table``: system, split, AP)."""
    plt = _pyplot()
    systems = list(dict.fromkeys(table["system"]))
    width = 0.8 / max(1, len(systems))
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    x = np.arange(len(splits))
    for i, system in enumerate(systems):
        sub = table[table["system"] == system].set_index("split").reindex(splits)
        ax.bar(x + i * width, sub["AP"].fillna(0), width, label=system)
    ax.set_xticks(x + 0.4 - width / 2, splits)
    ax.set_ylabel("AP")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    _save(fig, path)
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
    for ax, (name, files) in zip(axes[0], panels.items()):
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
