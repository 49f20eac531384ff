"""Distillation losses: OPTICAL's OT token alignment, the pooled KD baseline, and ``distill.loss`` over them."""

from .distill import DistillLoss
from .ot_alignment import (
    NonFiniteLossError,
    OTAlignmentLoss,
    cosine_cost_matrix,
    ot_alignment_loss,
    plan_diagnostics,
    token_marginals,
    validate_token_inputs,
)
from .pooled import PooledDistillationLoss, pooled_distillation_loss

__all__ = [
    "DistillLoss",
    "NonFiniteLossError",
    "OTAlignmentLoss",
    "PooledDistillationLoss",
    "cosine_cost_matrix",
    "ot_alignment_loss",
    "plan_diagnostics",
    "pooled_distillation_loss",
    "token_marginals",
    "validate_token_inputs",
]
