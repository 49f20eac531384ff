r"""Optimal-transport token-alignment loss of OPTICAL.

OPTICAL distils a cross-lingual student from a monolingual (English) teacher
by aligning the student's target-language token states with the teacher's
English token states through an entropic optimal-transport plan. For each
pair ``i`` in the batch it solves

.. math::

    T^*_i = \arg\min_{T \in U(a_i, b_i)} \langle T, C_i \rangle_F
            - \varepsilon H(T),
    \qquad C_{i,jk} = 1 - \cos(H_T[i, j], H_S[i, k]),

and the loss is :math:`\langle T^*_i, C_i \rangle_F`, averaged over the batch.

Inputs
------

============  ===============  ======================================================
Argument      Shape / dtype    Meaning
============  ===============  ======================================================
``H_T``       [B, Lt, D]       Teacher (English side) token states. Computed without
                               grad; detached here unless ``detach_teacher=False``.
``mask_T``    [B, Lt] bool     True on real content tokens only (padding, special
                               and prefix tokens already False).
``H_S``       [B, Ls, D]       Student (target-language side) token states,
                               requires grad.
``mask_S``    [B, Ls] bool     Same convention as ``mask_T``.
``a``         [B, Lt], opt.    Non-negative teacher token weights (e.g. IDF).
                               Default uniform over masked-in tokens.
``b``         [B, Ls], opt.    Student token weights, same convention as ``a``.
``batch_id``  any, opt.        Only used in error messages.
============  ===============  ======================================================

Weights are zeroed where masked out and normalised to sum to 1 per row, so
masked positions carry no mass: the plan is exactly zero on every padded row
and column, and padded states (whatever their values, NaN included) influence
neither the loss nor its gradients.

Output: :class:`OTAlignmentLoss`, like every loss module of this package,
returns a dict of 0-dim tensors: ``loss`` (the batch mean, the one to
back-propagate) and the solve's diagnostics (``iterations`` run and the plan's
:func:`plan_diagnostics`: ``marginal_violation``, ``entropy``,
``entropy_uniform``; no grad); nothing is kept on the module between calls.
:func:`ot_alignment_loss` returns ``(loss_per_pair [B], plan [B, Lt, Ls])``
for tests and diagnostics, and with POT's ``log=True`` convention also the
diagnostics as plain numbers.

Solver settings (``epsilon``, ``max_iter``, ``tol``, ``differentiable_plan``)
have no defaults here: the pipeline passes the ``distill`` params
(``epsilon``, ``sinkhorn_max_iter``, ``sinkhorn_tol``, ``differentiable_plan``);
``get_config_dict()`` reports them (the distill stage's info file).

Gradients
---------
By default (``differentiable_plan=False``) the plan is computed on
``C.detach()`` and held fixed, so gradients flow only through ``C`` in
:math:`\langle T^*, C \rangle` (envelope-theorem gradient; cheap in memory).
With ``differentiable_plan=True`` gradients also flow through every Sinkhorn
iteration (memory grows with the number of iterations actually run).

Errors
------
``ValueError`` when batch sizes or hidden sizes differ, a mask's shape does not
match its states, a mask is not bool, a row has no real token on either side,
weights are negative / non-finite / have no mass on the real tokens, or
``epsilon <= 0``. :class:`NonFiniteLossError` (a subclass of both
``FloatingPointError`` and ``ValueError``) when the cost on real tokens
contains NaN or inf; its message names ``batch_id`` and the offending rows,
so training never silently continues on NaN.

Solver
------
The plan comes from POT's batched log-domain Sinkhorn,
:func:`ot.batch.bregman_log_projection_batch` (POT >= 0.9.6, torch backend),
applied to ``K = -C / epsilon``. Masking is expressed purely through zero
marginals: ``log(0) = -inf`` makes the dual potential of every padded row and
column ``-inf``, hence ``exp(K + u + v) = 0`` there, while every row/column
log-sum-exp still contains at least one finite term (each row has a real token
on both sides, which is checked), so no ``-inf - (-inf)`` NaN appears in the
forward pass or in autograd. Being log-domain, it stays finite down to
``epsilon = 0.01`` (checked in ``tests/test_losses.py``). We call the
projection directly rather than :func:`ot.batch.solve_batch` because the
latter's ``grad="envelope"`` mode still records the autograd graph of every
iteration before detaching the plan; here the envelope mode solves on a
detached cost (POT ``grad="detach"``) and the differentiable mode uses POT
``grad="autodiff"``. ``max_iter`` and ``tol`` are POT's (``tol``: L2 norm of
the row-marginal violation, checked every 10 iterations, max over the batch).

Reference
---------
Z. Huang, P. Yu, J. Allan. *Improving Cross-lingual Information Retrieval on
Low-Resource Languages via Optimal Transport Distillation* (OPTICAL),
WSDM 2023. arXiv:2301.12566.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch
import torch.nn.functional as F
from ot.batch import bregman_log_projection_batch
from torch import Tensor, nn

__all__ = [
    "NonFiniteLossError",
    "OTAlignmentLoss",
    "cosine_cost_matrix",
    "ot_alignment_loss",
    "plan_diagnostics",
    "token_marginals",
    "validate_token_inputs",
]


class NonFiniteLossError(FloatingPointError, ValueError):
    """A loss input (cost matrix, pooled embedding, ...) contains NaN or inf."""


def _batch_label(batch_id: Any) -> str:
    return "batch <unknown>" if batch_id is None else f"batch {batch_id!r}"


def _rows(flags: Tensor) -> list[int]:
    return torch.nonzero(flags, as_tuple=False).flatten().tolist()


def validate_token_inputs(
    H_T: Tensor,
    mask_T: Tensor,
    H_S: Tensor,
    mask_S: Tensor,
    a: Tensor | None = None,
    b: Tensor | None = None,
) -> None:
    """Check the shared teacher/student token-state contract (see module docstring).

    Raises:
        ValueError: naming the first problem found.
    """
    for name, states in (("H_T", H_T), ("H_S", H_S)):
        if not isinstance(states, Tensor) or states.dim() != 3:
            raise ValueError(
                f"{name} must be a [B, L, D] tensor, got "
                f"{tuple(states.shape) if isinstance(states, Tensor) else type(states).__name__}"
            )
        if not states.is_floating_point():
            raise ValueError(f"{name} must be floating point, got {states.dtype}")
    for name, mask, states in (("mask_T", mask_T, H_T), ("mask_S", mask_S, H_S)):
        if not isinstance(mask, Tensor):
            raise ValueError(f"{name} must be a bool tensor, got {type(mask).__name__}")
        if mask.dtype != torch.bool:
            raise ValueError(f"{name} must have dtype torch.bool (True on real content tokens), got {mask.dtype}")
        if tuple(mask.shape) != tuple(states.shape[:2]):
            raise ValueError(
                f"{name} has shape {tuple(mask.shape)} but its states have [B, L] = {tuple(states.shape[:2])}"
            )
    if H_T.shape[0] != H_S.shape[0]:
        raise ValueError(f"batch sizes differ: H_T has B={H_T.shape[0]}, H_S has B={H_S.shape[0]}")
    if H_T.shape[2] != H_S.shape[2]:
        raise ValueError(f"hidden sizes differ: H_T has D={H_T.shape[2]}, H_S has D={H_S.shape[2]}")
    if H_T.shape[0] == 0:
        raise ValueError("empty batch (B=0)")
    for name, mask in (("mask_T", mask_T), ("mask_S", mask_S)):
        empty = ~mask.any(dim=1)
        if bool(empty.any()):
            raise ValueError(f"row(s) {_rows(empty)} of {name} have no real tokens")
    for name, w, mask in (("a", a, mask_T), ("b", b, mask_S)):
        if w is None:
            continue
        if not isinstance(w, Tensor) or tuple(w.shape) != tuple(mask.shape):
            got = tuple(w.shape) if isinstance(w, Tensor) else type(w).__name__
            raise ValueError(f"weights {name} must have shape {tuple(mask.shape)}, got {got}")
        w_real = torch.where(mask, w.detach(), torch.zeros((), dtype=w.dtype, device=w.device))
        if not bool(torch.isfinite(w_real).all()):
            raise ValueError(f"weights {name} contain NaN or inf on real tokens")
        if bool((w_real < 0).any()):
            raise ValueError(f"weights {name} must be non-negative")
        no_mass = w_real.sum(dim=1) <= 0
        if bool(no_mass.any()):
            raise ValueError(f"row(s) {_rows(no_mass)} of weights {name} have no mass on real tokens")


def _check_epsilon(epsilon: float) -> None:
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real) or not math.isfinite(epsilon) or epsilon <= 0:
        raise ValueError(f"epsilon must be a finite number > 0, got {epsilon!r}")


def _check_solver_params(max_iter: int, tol: float) -> None:
    if int(max_iter) != max_iter or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol!r}")


def _compute_dtype(*tensors: Tensor) -> torch.dtype:
    """At least float32: Sinkhorn in half precision is not trustworthy."""
    dtype = torch.float32
    for t in tensors:
        dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def token_marginals(mask: Tensor, weights: Tensor | None = None, dtype: torch.dtype | None = None) -> Tensor:
    """Per-row token masses: ``weights`` (default 1) zeroed off-mask, normalised to sum 1.

    Args:
        mask: [B, L] bool, True on real tokens.
        weights: optional [B, L] non-negative weights.
        dtype: output dtype (default float32, or the weights' dtype if given).

    Returns:
        [B, L] tensor whose rows sum to 1 and are exactly 0 where ``mask`` is False.
    """
    if dtype is None:
        dtype = weights.dtype if weights is not None else torch.float32
    w = mask.to(dtype) if weights is None else weights.to(dtype)
    w = torch.where(mask, w, torch.zeros((), dtype=dtype, device=w.device))
    return w / w.sum(dim=1, keepdim=True)


def cosine_cost_matrix(
    H_T: Tensor,
    mask_T: Tensor,
    H_S: Tensor,
    mask_S: Tensor,
) -> Tensor:
    """Batched cost ``C[b, i, j] = 1 - cos(H_T[b, i], H_S[b, j])``.

    Padded states are replaced by zeros *before* normalising, so their values
    (even NaN) cannot leak into the result or into gradients; entries with a
    padded token on either side are set to 0 (they receive no mass anyway).

    Returns:
        [B, Lt, Ls] tensor in the promoted dtype of the inputs.
    """
    t = F.normalize(H_T.masked_fill(~mask_T.unsqueeze(-1), 0.0), dim=-1)
    s = F.normalize(H_S.masked_fill(~mask_S.unsqueeze(-1), 0.0), dim=-1)
    cost = 1.0 - torch.bmm(t, s.transpose(1, 2))
    pair_mask = mask_T.unsqueeze(2) & mask_S.unsqueeze(1)
    return cost.masked_fill(~pair_mask, 0.0)


def _ot_alignment(
    H_T: Tensor,
    mask_T: Tensor,
    H_S: Tensor,
    mask_S: Tensor,
    a: Tensor | None,
    b: Tensor | None,
    epsilon: float,
    max_iter: int,
    tol: float,
    differentiable_plan: bool,
    detach_teacher: bool,
    batch_id: Any,
    log: bool,
) -> tuple[Tensor, Tensor, dict[str, float] | None]:
    """Shared implementation; with ``log`` also returns the Sinkhorn iterations run and the plan's diagnostics."""
    _check_epsilon(epsilon)
    _check_solver_params(max_iter, tol)
    validate_token_inputs(H_T, mask_T, H_S, mask_S, a, b)

    dtype = _compute_dtype(H_T, H_S)
    if detach_teacher:
        H_T = H_T.detach()
    cost = cosine_cost_matrix(H_T.to(dtype), mask_T, H_S.to(dtype), mask_S)

    bad = ~torch.isfinite(cost.detach()).flatten(1).all(dim=1)
    if bool(bad.any()):
        raise NonFiniteLossError(
            f"OT alignment loss: cost matrix has NaN/inf for {_batch_label(batch_id)}, "
            f"row(s) {_rows(bad)} (check the teacher/student states)"
        )

    mu = token_marginals(mask_T, a, dtype)
    nu = token_marginals(mask_S, b, dtype)
    solver_cost = cost if differentiable_plan else cost.detach()
    out = bregman_log_projection_batch(
        -solver_cost / epsilon,
        mu.detach(),
        nu.detach(),
        max_iter=int(max_iter),
        tol=tol,
        grad="autodiff" if differentiable_plan else "detach",
    )
    plan = out["T"]
    loss_per_pair = (plan * cost).sum(dim=(1, 2))

    if not bool(torch.isfinite(loss_per_pair.detach()).all()):
        # Unreachable with finite costs and a log-domain solver; kept as a tripwire.
        rows = _rows(~torch.isfinite(loss_per_pair.detach()))
        raise NonFiniteLossError(f"OT alignment loss is NaN/inf for {_batch_label(batch_id)}, row(s) {rows}")
    if not log:
        return loss_per_pair, plan, None
    return loss_per_pair, plan, {"iterations": int(out["n_iters"]) + 1, **plan_diagnostics(plan.detach(), mu, nu)}


def plan_diagnostics(plan: Tensor, mu: Tensor, nu: Tensor) -> dict[str, float]:
    """How well a batch of plans solves its problem: the largest marginal violation and the entropy.

    ``marginal_violation``: per pair the L1 distance of the plan's row sums from ``mu`` and of its column sums
    from ``nu``, the larger of the two, max over the batch (Sinkhorn ends on an exact column update, so this
    is the row side). ``entropy``: mean over the batch of ``-sum T log T`` (nats); ``entropy_uniform``: the
    same for the independent plan ``mu nu^T`` (the most diffuse plan with these marginals), for scale.
    """
    with torch.no_grad():
        rows = (plan.sum(dim=2) - mu).abs().sum(dim=1)
        cols = (plan.sum(dim=1) - nu).abs().sum(dim=1)

        def entropy(p: Tensor) -> Tensor:
            return -torch.where(p > 0, p * torch.log(p.clamp_min(1e-38)), torch.zeros_like(p)).sum(dim=(1, 2))

        return {
            "marginal_violation": float(torch.maximum(rows, cols).max()),
            "entropy": float(entropy(plan).mean()),
            "entropy_uniform": float(entropy(mu.unsqueeze(2) * nu.unsqueeze(1)).mean()),
        }


def ot_alignment_loss(
    H_T: Tensor,
    mask_T: Tensor,
    H_S: Tensor,
    mask_S: Tensor,
    a: Tensor | None = None,
    b: Tensor | None = None,
    *,
    epsilon: float,
    max_iter: int,
    tol: float,
    differentiable_plan: bool,
    detach_teacher: bool = True,
    batch_id: Any = None,
    log: bool = False,
) -> tuple[Tensor, Tensor] | tuple[Tensor, Tensor, dict[str, float]]:
    """Per-pair OT alignment loss and transport plan (see module docstring).

    Args:
        H_T, mask_T, H_S, mask_S, a, b, batch_id: see the module's inputs table.
        epsilon: entropic regularisation, > 0.
        max_iter: maximum number of Sinkhorn iterations.
        tol: stop once the row-marginal violation (L2, max over batch) is below it.
        differentiable_plan: back-propagate through the solver iterations too.
        detach_teacher: treat ``H_T`` as a constant (the OPTICAL setting).
        log: also return the solve's diagnostics (POT's ``log=True`` convention).

    Returns:
        ``(loss_per_pair, plan)`` of shapes [B] and [B, Lt, Ls]; ``plan`` has
        no grad unless ``differentiable_plan`` is True. With ``log=True``,
        ``(loss_per_pair, plan, log)`` where ``log`` holds ``iterations`` (Sinkhorn
        iterations run, ``max_iter`` when the tolerance was not reached) and the
        plan's :func:`plan_diagnostics`, as plain numbers.
    """
    loss, plan, diagnostics = _ot_alignment(
        H_T,
        mask_T,
        H_S,
        mask_S,
        a,
        b,
        epsilon=epsilon,
        max_iter=max_iter,
        tol=tol,
        differentiable_plan=differentiable_plan,
        detach_teacher=detach_teacher,
        batch_id=batch_id,
        log=log,
    )
    return (loss, plan, diagnostics) if log else (loss, plan)


class OTAlignmentLoss(nn.Module):
    """OPTICAL token-alignment loss as a module; ``forward`` returns a dict of 0-dim tensors.

    Example::

        loss_fn = OTAlignmentLoss(epsilon=0.05, max_iter=1000, tol=1e-4, differentiable_plan=False)
        with torch.no_grad():
            H_T = teacher(**english).last_hidden_state
        H_S = student(**target).last_hidden_state
        out = loss_fn(H_T, mask_T, H_S, mask_S, batch_id=step)
        out["loss"].backward()

    ``out["loss"]`` is the batch mean; ``out["iterations"]`` the number of Sinkhorn iterations run (equal to
    ``max_iter`` when the tolerance was not reached), the other entries the plan's marginal violation and entropy
    (:func:`plan_diagnostics`), without grad. The module keeps no state between calls.
    """

    def __init__(
        self,
        epsilon: float,
        max_iter: int,
        tol: float,
        differentiable_plan: bool,
        detach_teacher: bool = True,
    ) -> None:
        super().__init__()
        _check_epsilon(epsilon)
        _check_solver_params(max_iter, tol)
        self.epsilon = float(epsilon)
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.differentiable_plan = bool(differentiable_plan)
        self.detach_teacher = bool(detach_teacher)

    def forward(
        self,
        H_T: Tensor,
        mask_T: Tensor,
        H_S: Tensor,
        mask_S: Tensor,
        a: Tensor | None = None,
        b: Tensor | None = None,
        batch_id: Any = None,
    ) -> dict[str, Tensor]:
        loss, _, diagnostics = _ot_alignment(
            H_T,
            mask_T,
            H_S,
            mask_S,
            a,
            b,
            epsilon=self.epsilon,
            max_iter=self.max_iter,
            tol=self.tol,
            differentiable_plan=self.differentiable_plan,
            detach_teacher=self.detach_teacher,
            batch_id=batch_id,
            log=True,
        )
        return {"loss": loss.mean()} | {k: torch.tensor(float(v)) for k, v in diagnostics.items()}

    def get_config_dict(self) -> dict[str, Any]:
        """The settings, as the stage's info file records them."""
        return {
            "epsilon": self.epsilon,
            "max_iter": self.max_iter,
            "tol": self.tol,
            "differentiable_plan": self.differentiable_plan,
            "detach_teacher": self.detach_teacher,
        }

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.get_config_dict().items())
