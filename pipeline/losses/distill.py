"""The distillation objective of the ``distill`` stage: ``distill.loss`` names the terms it sums.

============  ==============================================================================
``kind``      Loss
============  ==============================================================================
``ot``        :class:`~pipeline.losses.ot_alignment.OTAlignmentLoss` (OPTICAL token alignment)
``pooled``    :class:`~pipeline.losses.pooled.PooledDistillationLoss` (cosine, mean-pooled)
``ot+pooled`` their sum, the pooled term weighted by ``pooled_weight``
============  ==============================================================================

:class:`DistillLoss` takes the same inputs as the two losses (see
:mod:`pipeline.losses.ot_alignment`) and, like them, returns a dict of 0-dim tensors: every term, their sum
``loss`` (the one to back-propagate) and, with an OT term, the Sinkhorn solve's diagnostics as ``plan/iterations``,
``plan/marginal_violation``, ``plan/entropy`` and ``plan/entropy_uniform`` (the OT loss's diagnostics; logged per
step, never part of the loss). Its settings have no defaults: they are the ``distill`` params
(:meth:`DistillLoss.from_params`); :meth:`DistillLoss.get_config_dict` reports them with each term's settings.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from pipeline.config.conditions import DISTILL_LOSSES

from .ot_alignment import OTAlignmentLoss
from .pooled import PooledDistillationLoss

__all__ = ["DistillLoss"]


class DistillLoss(nn.Module):
    """``ot``, ``pooled`` or ``ot+pooled`` (sum, the pooled term weighted by ``pooled_weight``).

    ``forward`` returns the terms and their sum (``loss``); with an OT term also the plan's diagnostics as
    ``plan/iterations``, ``plan/marginal_violation``, ``plan/entropy`` and ``plan/entropy_uniform`` (0-dim
    tensors; :func:`pipeline.losses.plan_diagnostics`).
    """

    def __init__(
        self,
        kind: str,
        *,
        epsilon: float,
        sinkhorn_max_iter: int,
        sinkhorn_tol: float,
        differentiable_plan: bool,
        pooled_weight: float,
    ) -> None:
        super().__init__()
        if kind not in DISTILL_LOSSES:
            raise ValueError(f"unknown distill.loss {kind!r}; expected one of {DISTILL_LOSSES}")
        self.kind = kind
        self.ot = OTAlignmentLoss(
            epsilon=epsilon, max_iter=sinkhorn_max_iter, tol=sinkhorn_tol, differentiable_plan=differentiable_plan
        )
        self.pooled = PooledDistillationLoss(kind="cosine")
        self.pooled_weight = pooled_weight

    @classmethod
    def from_params(cls, section) -> DistillLoss:
        """From the ``distill`` params section (duck-typed)."""
        return cls(
            section.loss,
            epsilon=section.epsilon,
            sinkhorn_max_iter=section.sinkhorn_max_iter,
            sinkhorn_tol=section.sinkhorn_tol,
            differentiable_plan=section.differentiable_plan,
            pooled_weight=section.pooled_weight,
        )

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
        """``a``, ``b``: optional token weights ([B, Lt], [B, Ls]), the OT marginals (default uniform)."""
        parts: dict[str, Tensor] = {}
        plan: dict[str, Tensor] = {}
        if "ot" in self.terms:
            ot = self.ot(H_T, mask_T, H_S, mask_S, a, b, batch_id=batch_id)
            parts["ot"] = ot.pop("loss")
            plan = {f"plan/{k}": v for k, v in ot.items()}
        if "pooled" in self.terms:
            parts["pooled"] = self.pooled(H_T, mask_T, H_S, mask_S, batch_id=batch_id)["loss"]
        parts["loss"] = parts.get("ot", 0.0) + self.pooled_weight * parts.get("pooled", 0.0)
        return parts | plan

    @property
    def terms(self) -> list[str]:
        return self.kind.split("+")

    def get_config_dict(self) -> dict[str, Any]:
        """``kind``, ``pooled_weight`` and each term's settings (the distill stage's info file records them)."""
        config: dict[str, Any] = {"kind": self.kind, "pooled_weight": self.pooled_weight}
        return config | {term: getattr(self, term).get_config_dict() for term in self.terms}

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, pooled_weight={self.pooled_weight}"
