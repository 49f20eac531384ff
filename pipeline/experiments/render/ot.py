"""The OT plan of the default run's distillation, and the Sinkhorn settings benchmark."""

from __future__ import annotations

from pipeline.config.params import load_params
from pipeline.experiments.render import BENCHMARK_RESULTS, source, stage_metrics
from pipeline.io import read_json


def ot_plan() -> str:
    """The default run's Sinkhorn plan over all distill steps (``metrics/distill.json``)."""
    d = stage_metrics("distill")
    plan = d.get("plan")
    if not plan:
        return f"`distill.loss: {d.get('loss')}` has no OT plan. " + source("metrics/distill.json")
    params = load_params().distill
    rows = [
        ("ε / tolerance / cap", f"{params.epsilon} / {params.sinkhorn_tol:g} / {params.sinkhorn_max_iter}"),
        ("Sinkhorn iterations per step, mean / max", f"{plan['iterations_mean']} / {plan['iterations_max']}"),
        ("largest marginal violation over all steps (L1 per pair)", f"{plan['marginal_violation_max']:.2g}"),
        ("plan entropy, mean (independent plan)", f"{plan['entropy_mean']} ({plan['entropy_uniform_mean']}) nats"),
    ]
    lines = ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]
    return "\n".join([*lines, "", f"{d['steps']} steps. " + source("metrics/distill.json", "params.yaml")])


def ot_convergence() -> str:
    """``benchmarks/ot_plan.py``: convergence and cost of the plan per Sinkhorn setting, on real states."""
    path = BENCHMARK_RESULTS / "ot_plan.json"
    d = read_json(path)
    lines = [
        "| setting | iterations (mean) | max marginal violation | loss gap to converged | min gradient cosine "
        "| plan entropy (independent) | ms per batch |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in d["rows"]:
        lines.append(
            f"| {r['setting']} | {r['iterations_mean']} | {r['marginal_violation_max']:.2g} | {r['loss_gap_max']:.2g} "
            f"| {min(r['grad_cosine_min'], 1.0):.5f} | {r['entropy_mean']} ({r['entropy_uniform_mean']}) "
            f"| {r['ms_per_batch']} |"
        )
    note = (
        f"`lang: {d['lang']}`, ε {d['epsilon']}, {d['batches']} batches of {d['batch_size']} bitext rows, the "
        f"default run's teacher and student; loss forward + backward; {d['machine']}."
    )
    return "\n".join([*lines, "", note + " " + source(path)])
