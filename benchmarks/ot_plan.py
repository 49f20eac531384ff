"""How converged is the OT plan of the distill loss, and what does convergence cost per step, on real states.

Loads the default run's teacher and student (``models/teacher``, ``models/student``), takes ``--batches`` batches
of ``distill.batch_size`` rows of the default run's bitext (``data/bitext/train.tsv``), computes the token states
as ``distill`` does, and solves each batch's plans under several Sinkhorn settings (cap on iterations,
tolerance). Per setting it reports the iterations run, the largest marginal violation (L1 per pair), the plan's
entropy, the loss's largest difference from a converged solve (tolerance 1e-9), the cosine between its envelope
gradient and the converged one, and the time of one loss forward+backward per batch (median). The rows go to
``benchmarks/results/ot_plan.json`` (rendered in docs/method.md by ``python -m pipeline.experiments.docs``).

Usage, from the repository root after ``dvc repro`` (nothing else running: the times are the point)::

    python -m benchmarks.ot_plan [--batches 8] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from pipeline.config import paths
from pipeline.config.params import load_params
from pipeline.data.splits import BITEXT_COLUMNS
from pipeline.io import read_tsv, write_text
from pipeline.losses import OTAlignmentLoss
from pipeline.retrieval.embed import PASSAGE_PREFIX, token_states
from pipeline.retrieval.encoders import load_encoder

RESULTS = Path("benchmarks/results/ot_plan.json")
#: (label, iteration cap, tolerance): the old default, the new default, and around them.
SETTINGS = [
    ("100 iterations (previous default)", 100, 0.0),
    ("tol 1e-3, cap 1000", 1000, 1e-3),
    ("tol 1e-4, cap 1000", 1000, 1e-4),
    ("tol 1e-5, cap 1000", 1000, 1e-5),
]


def states(params, batches: int) -> list[dict]:
    teacher, tokenizer = load_encoder(paths.TEACHER_DIR)
    student, _ = load_encoder(paths.STUDENT_DIR)
    bitext = read_tsv(paths.BITEXT_FILE, BITEXT_COLUMNS)
    size, ml = params.distill.batch_size, params.distill.max_length
    out = []
    with torch.no_grad():
        for k in range(batches):
            rows = bitext.iloc[k * size : (k + 1) * size]
            H_T, _, mask_T = token_states(teacher, tokenizer, list(rows["en"]), prefix=PASSAGE_PREFIX, max_length=ml)
            H_S, _, mask_S = token_states(student, tokenizer, list(rows["xx"]), prefix=PASSAGE_PREFIX, max_length=ml)
            out.append({"H_T": H_T.float(), "mask_T": mask_T, "H_S": H_S.float(), "mask_S": mask_S})
    return out


def solve(batch: dict, epsilon: float, cap: int, tol: float) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Per-pair-mean loss, its gradient w.r.t. the student states, and the plan's diagnostics."""
    H_S = batch["H_S"].clone().requires_grad_(True)
    fn = OTAlignmentLoss(epsilon=epsilon, n_iters=cap, tol=tol, differentiable_plan=False)  # the envelope gradient
    loss, log = fn(batch["H_T"], batch["mask_T"], H_S, batch["mask_S"], log=True)
    loss.backward()
    return loss.detach(), H_S.grad.flatten(), log


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats per batch (median)")
    args = ap.parse_args()
    params = load_params()
    eps = params.distill.epsilon
    data = states(params, args.batches)
    converged = [solve(b, eps, 20000, 1e-9) for b in data]
    rows = []
    for label, cap, tol in SETTINGS:
        diags, loss_gap, cosines, times = [], [], [], []
        for batch, (ref_loss, ref_grad, _) in zip(data, converged, strict=True):
            loss, grad, diag = solve(batch, eps, cap, tol)
            diags.append(diag)
            loss_gap.append(abs(float(loss - ref_loss)))
            cosines.append(float(torch.nn.functional.cosine_similarity(grad, ref_grad, dim=0)))
            for _ in range(args.repeats):
                start = time.perf_counter()
                solve(batch, eps, cap, tol)
                times.append(time.perf_counter() - start)
        row = {
            "setting": label,
            "cap": cap,
            "tol": tol,
            "iterations_mean": round(statistics.mean(d["iterations"] for d in diags), 1),
            "marginal_violation_max": float(f"{max(d['marginal_violation'] for d in diags):.3g}"),
            "entropy_mean": round(statistics.mean(d["entropy"] for d in diags), 3),
            "entropy_uniform_mean": round(statistics.mean(d["entropy_uniform"] for d in diags), 3),
            "loss_gap_max": float(f"{max(loss_gap):.3g}"),
            "grad_cosine_min": round(min(cosines), 6),
            "ms_per_batch": round(1e3 * statistics.median(times), 2),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    record = {
        "lang": params.lang,
        "epsilon": eps,
        "batches": args.batches,
        "batch_size": params.distill.batch_size,
        "machine": f"{os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}",
        "rows": rows,
    }
    write_text(RESULTS, json.dumps(record, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
