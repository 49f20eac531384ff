"""Time the batched OPTICAL OT loss against a per-pair POT ``ot.sinkhorn2`` loop.

Prints the time per batch of :class:`pipeline.losses.OTAlignmentLoss`
(forward, forward+backward, in both gradient modes) and of a Python loop of
``ot.sinkhorn2(a_i, b_i, C_i, reg, method="sinkhorn_log")`` over the unpadded
per-pair cost matrices, plus the max abs difference of the per-pair values.

Usage::

    python -m benchmarks.ot_loss [--batch 32 --length 64 --dim 384 --epsilon 0.05]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import ot
import torch

from pipeline.losses import OTAlignmentLoss, cosine_cost_matrix, ot_alignment_loss


def make_inputs(B: int, L: int, D: int, seed: int, device: str) -> dict:
    """Anisotropic teacher states, student states = noisy token mixtures, ragged lengths."""
    g = torch.Generator().manual_seed(seed)
    common = 1.5 * torch.randn(1, 1, D, generator=g)
    H_T = torch.randn(B, L, D, generator=g) + common
    Ls = L + L // 8
    mix = torch.softmax(3.0 * torch.randn(B, Ls, L, generator=g), dim=-1)
    H_S = mix @ H_T + 0.7 * torch.randn(B, Ls, D, generator=g)
    len_T = torch.randint(3 * L // 4, L + 1, (B,), generator=g)
    len_S = torch.randint(3 * Ls // 4, Ls + 1, (B,), generator=g)
    mask_T = torch.arange(L)[None] < len_T[:, None]
    mask_S = torch.arange(Ls)[None] < len_S[:, None]
    mask_T[:, 0] = mask_S[:, 0] = False  # [CLS]
    return {
        "H_T": H_T.to(device),
        "mask_T": mask_T.to(device),
        "H_S": H_S.to(device).requires_grad_(True),
        "mask_S": mask_S.to(device),
    }


def time_per_call(fn: Callable[[], object], repeats: int, device: str) -> float:
    """Median wall time of ``fn`` over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def pot_loop(batch: dict, epsilon: float, n_iters: int, tol: float) -> torch.Tensor:
    """Reference: one ``ot.sinkhorn2`` per pair on the unpadded cost (torch backend)."""
    with torch.no_grad():
        C = cosine_cost_matrix(batch["H_T"], batch["mask_T"], batch["H_S"], batch["mask_S"])
    values = []
    for i in range(C.shape[0]):
        C_i = C[i][batch["mask_T"][i]][:, batch["mask_S"][i]]
        n, m = C_i.shape
        a_i = torch.full((n,), 1.0 / n, dtype=C_i.dtype, device=C_i.device)
        b_i = torch.full((m,), 1.0 / m, dtype=C_i.dtype, device=C_i.device)
        values.append(
            ot.sinkhorn2(a_i, b_i, C_i, reg=epsilon, method="sinkhorn_log", numItermax=n_iters, stopThr=tol, warn=False)
        )
    return torch.stack(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--epsilon", type=float, default=0.05)
    parser.add_argument("--n-iters", type=int, default=500)
    parser.add_argument("--tol", type=float, default=1e-5)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    batch = make_inputs(args.batch, args.length, args.dim, args.seed, args.device)
    print(
        f"B={args.batch} Lt={args.length} Ls={batch['H_S'].shape[1]} D={args.dim} "
        f"eps={args.epsilon} n_iters<={args.n_iters} tol={args.tol} device={args.device} "
        f"torch threads={torch.get_num_threads()} POT {ot.__version__}"
    )

    rows = []
    for differentiable_plan in (False, True):
        loss_fn = OTAlignmentLoss(
            epsilon=args.epsilon, n_iters=args.n_iters, tol=args.tol, differentiable_plan=differentiable_plan
        )
        mode = "unrolled" if differentiable_plan else "envelope"

        def forward(loss_fn=loss_fn) -> None:
            with torch.no_grad():
                loss_fn(**batch)

        def forward_backward(loss_fn=loss_fn) -> None:
            loss_fn(**batch).backward()
            batch["H_S"].grad = None

        if not differentiable_plan:
            rows.append(("module forward (no grad)", time_per_call(forward, args.repeats, args.device)))
        rows.append((f"module fwd+bwd, {mode}", time_per_call(forward_backward, args.repeats, args.device)))
        with torch.no_grad():
            _, log = loss_fn(**batch, log=True)
        print(f"  Sinkhorn iterations run ({mode}): {log['iterations']}")

    rows.append(
        (
            "POT sinkhorn2 per-pair loop",
            time_per_call(
                lambda: pot_loop(batch, args.epsilon, args.n_iters, args.tol), max(1, args.repeats // 2), args.device
            ),
        )
    )

    for name, seconds in rows:
        print(f"  {name:<32s} {1e3 * seconds:9.2f} ms/batch (median)")

    with torch.no_grad():
        ours, _ = ot_alignment_loss(
            **batch, epsilon=args.epsilon, n_iters=args.n_iters, tol=args.tol, differentiable_plan=False
        )
    ref = pot_loop(batch, args.epsilon, args.n_iters, args.tol)
    print(
        f"  max |batched - POT loop| per-pair value: {(ours - ref).abs().max().item():.3e} "
        f"(values in [{ref.min().item():.4f}, {ref.max().item():.4f}])"
    )
    with torch.no_grad():
        ours64, _ = ot_alignment_loss(
            **{k: (v.double() if v.is_floating_point() else v) for k, v in batch.items()},
            epsilon=args.epsilon,
            n_iters=20000,
            tol=1e-12,
            differentiable_plan=False,
        )
    ref64 = pot_loop(
        {k: (v.double() if v.is_floating_point() else v) for k, v in batch.items()}, args.epsilon, 20000, 1e-12
    )
    print(f"  float64, converged (tol 1e-12): max |batched - POT loop| = {(ours64 - ref64).abs().max().item():.3e}")


if __name__ == "__main__":
    main()
