"""Compare DVC experiments: the student's AP per ``lang`` × ``aug`` × split over replicate seeds, with paired tests.

Usage (after a grid, see docs/usage.md)::

    python -m pipeline.compare [--where key=value ...] [--out reports/comparison.md]

Reads every experiment of the current commit (and the commit itself) from ``dvc exp show --json``, keeps those
matching ``--where`` (dotted param keys), and checks that only ``aug`` and ``distill.seed`` vary within a
language (anything else would confound the comparison; the error names the key; a param that only later commits
have counts as varying only if its values differ). A param that differs between languages but is constant
within each (e.g. a smaller ``augment.size`` for one language) is listed as a per-language setting. For every
group it reports the mean ± sd over replicate seeds of the student's AP, and, on per-query AP averaged over the
seeds (read from
each experiment's ``runs/<split>/student.run`` and qrels through ``dvc.api``), a paired t-test and a paired
randomization test (``scipy.stats.ttest_rel`` / ``scipy.stats.permutation_test``) of each augmentation against
``aug=none``, of ``backtranslation`` against ``synthetic`` and of the ``parallel`` control against
``backtranslation``. Writes ``reports/comparison.md``, a CSV of the
per-experiment numbers and a PNG chart.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.errors import PipelineError
from pipeline.evaluation import per_query_ap
from pipeline.io import atomic_path, write_text
from pipeline.paths import SPLITS
from pipeline.plots import panels_bar_chart

ALLOWED_TO_VARY = {"lang", "aug", "distill.seed"}
AUG_ORDER = ["none", "backtranslation", "synthetic", "both", "parallel"]
CONTRASTS = [
    ("backtranslation", "none"),
    ("synthetic", "none"),
    ("both", "none"),
    ("backtranslation", "synthetic"),
    ("parallel", "backtranslation"),  # the oracle control: how much of back-translation's gap is MT noise
]


class CompareError(PipelineError):
    pass


@dataclass
class Experiment:
    name: str
    rev: str
    params: dict  # flattened, dotted keys
    metrics: dict  # split -> eval metrics dict


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def parse_exp_show(rows: list[dict]) -> list[Experiment]:
    """Experiments (and their baseline commits) from ``dvc exp show --json``; the workspace is skipped."""
    found = []

    def add(entry: dict, name: str | None) -> None:
        data = entry.get("data") or {}
        params = ((data.get("params") or {}).get("params.yaml") or {}).get("data")
        metrics = data.get("metrics") or {}
        if not params:
            return
        evals = {s: (metrics.get(f"metrics/eval/{s}.json") or {}).get("data") or {} for s in SPLITS}
        found.append(Experiment(name or entry["rev"][:7], entry["rev"], flatten(params), evals))

    for row in rows:
        if row.get("rev") == "workspace":
            continue
        add(row, row.get("name"))
        for exp in row.get("experiments") or []:
            for rev in exp.get("revs") or []:
                add(rev, rev.get("name"))
    return found


def _varying(exps: list[Experiment]) -> set[str]:
    """Param keys with more than one value among ``exps`` (a key missing from some, added by a later commit,
    varies only if its values differ)."""
    keys = set().union(*(e.params for e in exps))
    return {k for k in keys if len({repr(e.params[k]) for e in exps if k in e.params}) > 1}


def select(exps: list[Experiment], where: dict[str, str]) -> list[Experiment]:
    """The experiments matching ``where``; an error if a param other than lang, aug and distill.seed varies
    within a language. A param may differ between languages (every contrast is within one language): such
    per-language settings are listed by :func:`language_settings`."""
    keep = [e for e in exps if all(str(e.params.get(k)) == v for k, v in where.items())]
    if not keep:
        raise CompareError(f"no experiment matches {where}")
    langs = sorted({str(e.params.get("lang")) for e in keep})
    within = {k: lang for lang in langs for k in _varying([e for e in keep if str(e.params.get("lang")) == lang])}
    extra = sorted(set(within) - ALLOWED_TO_VARY)
    if extra:
        where_ = ", ".join(f"{k} (lang {within[k]})" for k in extra)
        raise CompareError(
            f"these params differ among the selected experiments of one language, which would confound the "
            f"comparison: {where_}; narrow the selection with --where key=value"
        )
    seen: dict[tuple, str] = {}
    unique = []
    for e in keep:  # the same params twice (an experiment and its commit) counts once
        key = (e.params.get("lang"), e.params.get("aug"), e.params.get("distill.seed"))
        if key not in seen:
            seen[key] = e.name
            unique.append(e)
    return unique


def language_settings(exps: list[Experiment]) -> pd.DataFrame:
    """Params that differ between languages (constant within each, as :func:`select` checks): lang × key."""
    keys = sorted(_varying(exps) - ALLOWED_TO_VARY)
    rows = {}
    for e in exps:
        rows.setdefault(str(e.params.get("lang")), {k: e.params.get(k) for k in keys})
    return pd.DataFrame([{"lang": lang, **v} for lang, v in sorted(rows.items())], columns=["lang", *keys])


def summary_table(exps: list[Experiment]) -> pd.DataFrame:
    rows = []
    for e in exps:
        for split in SPLITS:
            m = e.metrics.get(split) or {}
            if m.get("available") and "student" in m:
                rows.append(
                    {
                        "exp": e.name,
                        "rev": e.rev,
                        "lang": e.params["lang"],
                        "aug": e.params["aug"],
                        "seed": e.params.get("distill.seed"),
                        "split": split,
                        "AP": m["student"]["AP"],
                    }
                )
    if not rows:
        raise CompareError("no selected experiment has student AP in metrics/eval/*.json")
    return pd.DataFrame(rows)


def paired_tests(a: np.ndarray, b: np.ndarray, seed: int = 0, resamples: int = 10000) -> dict:
    """Paired t-test and paired randomization (sign-flip) test of mean(a - b) on per-query values."""
    if len(a) != len(b) or len(a) < 2:
        raise CompareError("paired tests need two equally long vectors of at least 2 queries")
    diff = a - b
    if np.allclose(diff, 0):
        return {"delta": 0.0, "d_z": 0.0, "t": 0.0, "p_t": 1.0, "p_perm": 1.0, "n_queries": len(a)}
    t = stats.ttest_rel(a, b)
    perm = stats.permutation_test(
        (a, b),
        lambda x, y: np.mean(x - y),
        permutation_type="samples",
        n_resamples=resamples,
        random_state=np.random.default_rng(seed),
    )
    return {
        "delta": float(diff.mean()),
        "d_z": float(diff.mean() / diff.std(ddof=1)),
        "t": float(t.statistic),
        "p_t": float(t.pvalue),
        "p_perm": float(perm.pvalue),
        "n_queries": len(a),
    }


def _read_rev(path: str, rev: str) -> str:
    import dvc.api

    return dvc.api.read(path, rev=rev)


def per_query(rev: str, split: str, reader=None) -> dict[str, float]:
    """Per-query AP of the student of one experiment on one split."""
    reader = reader or _read_rev
    with tempfile.TemporaryDirectory() as tmp:
        qrels, run = Path(tmp) / "qrels.txt", Path(tmp) / "student.run"
        qrels.write_text(reader(f"data/prepared/{split}/qrels.txt", rev))
        run.write_text(reader(f"runs/{split}/student.run", rev))
        return per_query_ap(qrels, run)


def contrasts(table: pd.DataFrame, query_ap: dict[tuple[str, str], dict[str, float]]) -> pd.DataFrame:
    """Paired tests per lang × split for each contrast, on per-query AP averaged over replicate seeds."""

    def seed_mean(lang: str, aug: str, split: str) -> pd.Series | None:
        revs = table[(table.lang == lang) & (table.aug == aug) & (table.split == split)]["rev"]
        vectors = [pd.Series(query_ap[(r, split)]) for r in revs if (r, split) in query_ap]
        return pd.concat(vectors, axis=1).mean(axis=1) if vectors else None

    rows = []
    for (lang, split), _ in table.groupby(["lang", "split"]):
        for a, b in CONTRASTS:
            va, vb = seed_mean(lang, a, split), seed_mean(lang, b, split)
            if va is None or vb is None:
                continue
            common = va.index.intersection(vb.index)
            res = paired_tests(va[common].to_numpy(), vb[common].to_numpy())
            n_a = int(((table.lang == lang) & (table.aug == a) & (table.split == split)).sum())
            n_b = int(((table.lang == lang) & (table.aug == b) & (table.split == split)).sum())
            rows.append({"lang": lang, "split": split, "contrast": f"{a} − {b}", "seeds": f"{n_a}/{n_b}", **res})
    return pd.DataFrame(rows)


def grouped(table: pd.DataFrame) -> pd.DataFrame:
    g = table.groupby(["lang", "split", "aug"])["AP"]
    out = pd.DataFrame({"seeds": g.size(), "mean": g.mean(), "sd": g.std(ddof=1)}).reset_index()
    out["aug"] = pd.Categorical(out["aug"], AUG_ORDER, ordered=True)
    return out.sort_values(["lang", "split", "aug"]).reset_index(drop=True)


def robustness(table: pd.DataFrame) -> pd.DataFrame:
    """Shifted AP / in-domain AP of each experiment's student, as mean ± sd over seeds per lang × aug."""
    wide = table.pivot_table(index=["lang", "aug", "exp"], columns="split", values="AP").reset_index()
    if "in_domain" not in wide:
        return pd.DataFrame()
    rows = []
    for (lang, aug), g in wide.groupby(["lang", "aug"]):
        row = {"lang": lang, "aug": aug, "seeds": len(g)}
        for split in SPLITS[1:]:
            if split in g:
                ratio = g[split] / g["in_domain"]
                row[f"{split} / in_domain"] = (
                    f"{ratio.mean():.3f} ± {ratio.std(ddof=1):.3f}" if len(g) > 1 else f"{ratio.mean():.3f}"
                )
        rows.append(row)
    out = pd.DataFrame(rows)
    out["aug"] = pd.Categorical(out["aug"], AUG_ORDER, ordered=True)
    return out.sort_values(["lang", "aug"]).reset_index(drop=True)


def render(
    groups: pd.DataFrame, tests: pd.DataFrame, robust: pd.DataFrame | None = None, settings: pd.DataFrame | None = None
) -> str:
    g = groups.copy()
    g["AP (mean ± sd)"] = [
        f"{m:.4f} ± {s:.4f}" if pd.notna(s) else f"{m:.4f}" for m, s in zip(g["mean"], g["sd"], strict=True)
    ]
    lines = []
    if settings is not None and len(settings.columns) > 1:
        lines += [
            "# Per-language settings (params that differ between languages; constant within each)",
            "",
            settings.to_markdown(index=False),
            "",
        ]
    lines += [
        "# Student AP by augmentation (mean ± sd over replicate seeds `distill.seed`)",
        "",
        g[["lang", "split", "aug", "seeds", "AP (mean ± sd)"]].to_markdown(index=False),
        "",
        "# Robustness of the student (shifted AP / in-domain AP, mean ± sd over seeds)",
        "",
        robust.to_markdown(index=False) if robust is not None and not robust.empty else "No in-domain split.",
        "",
        "# Paired tests on per-query AP (averaged over seeds)",
        "",
        "Δ = mean per-query AP difference; d_z = Δ / sd of the per-query differences "
        "(standardised paired effect size);",
        "paired t-test (`scipy.stats.ttest_rel`) and paired randomization test",
        "(`scipy.stats.permutation_test`, 10,000 sign flips). Not corrected for multiple comparisons.",
        "",
    ]
    if tests.empty:
        lines.append("No contrast has both sides in the selected experiments.")
    else:
        t = tests.copy()
        t["Δ AP"] = t["delta"].map(lambda x: f"{x:+.4f}")
        t["d_z"] = t["d_z"].map(lambda x: f"{x:+.2f}")
        t["p (t)"] = t["p_t"].map(lambda x: f"{x:.3g}")
        t["p (perm)"] = t["p_perm"].map(lambda x: f"{x:.3g}")
        lines.append(
            t[["lang", "split", "contrast", "seeds", "n_queries", "Δ AP", "d_z", "p (t)", "p (perm)"]].to_markdown(
                index=False
            )
        )
    return "\n".join(lines) + "\n"


def plot(groups: pd.DataFrame, path: Path) -> None:
    """Student AP (mean ± sd over seeds) by split, one panel per language, one bar colour per ``aug``."""
    panels_bar_chart(groups, "lang", list(SPLITS), list(AUG_ORDER), "student AP", path)


def main(argv: Iterable[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--where", action="append", default=[], help="dotted.param=value (repeatable)")
    ap.add_argument("--out", default="reports/comparison.md")
    ap.add_argument("--exp-json", help="read this `dvc exp show --json` output instead of running it")
    ap.add_argument("--all-commits", action="store_true", help="also experiments of earlier commits (dvc exp show -A)")
    args = ap.parse_args(list(argv) if argv is not None else None)
    where = dict(w.split("=", 1) for w in args.where)
    if args.exp_json:
        rows = json.loads(Path(args.exp_json).read_text())
    else:
        cmd = [sys.executable, "-m", "dvc", "exp", "show", "--json", *(["-A"] if args.all_commits else [])]
        rows = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    exps = select(parse_exp_show(rows), where)
    table = summary_table(exps)
    query_ap = {(r, s): per_query(r, s) for r, s in table[["rev", "split"]].drop_duplicates().itertuples(index=False)}
    groups, tests = grouped(table), contrasts(table, query_ap)
    out = Path(args.out)
    write_text(out, render(groups, tests, robustness(table), language_settings(exps)))
    with atomic_path(out.with_suffix(".csv")) as tmp:
        table.to_csv(tmp, index=False)
    plot(groups, out.with_suffix(".png"))
    print(f"wrote {out}, {out.with_suffix('.csv')}, {out.with_suffix('.png')} ({len(exps)} experiments)")


if __name__ == "__main__":
    try:
        main()
    except CompareError as exc:
        raise SystemExit(f"error: {exc}") from None
