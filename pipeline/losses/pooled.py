r"""Pooled knowledge-distillation baseline for OPTICAL.

The plain sentence-level distillation baseline: mean-pool the teacher's and
the student's token states over their real tokens and pull the two pooled
embeddings together, either with a mean squared error (as in Reimers &
Gurevych's multilingual distillation) or with a cosine distance.

Inputs
------

============  ===============  ======================================================
Argument      Shape / dtype    Meaning
============  ===============  ======================================================
``H_T``       [B, Lt, D]       Teacher (English side) token states, no grad;
                               detached here unless ``detach_teacher=False``.
``mask_T``    [B, Lt] bool     True on real content tokens only.
``H_S``       [B, Ls, D]       Student (target-language side) token states.
``mask_S``    [B, Ls] bool     Same convention as ``mask_T``.
``a``         [B, Lt], opt.    Non-negative pooling weights for the teacher (e.g.
                               IDF); default uniform, i.e. a plain masked mean.
``b``         [B, Ls], opt.    Pooling weights for the student.
``batch_id``  any, opt.        Only used in error messages.
============  ===============  ======================================================

Per pair, ``kind="mse"`` gives ``mean_d (p_T - p_S)^2`` and ``kind="cosine"``
gives ``1 - cos(p_T, p_S)``; the module returns ``{"loss": batch mean}`` (the
dict every loss module of this package returns).

Errors: the same ``ValueError`` checks as
:mod:`pipeline.losses.ot_alignment` (shapes, masks, empty rows, weights), an
unknown ``kind``, and :class:`~pipeline.losses.ot_alignment.NonFiniteLossError`
naming ``batch_id`` when a pooled embedding contains NaN or inf.

References
----------
N. Reimers, I. Gurevych. *Making Monolingual Sentence Embeddings Multilingual
using Knowledge Distillation*, EMNLP 2020 (the pooled MSE objective).
Z. Huang, P. Yu, J. Allan. *Improving Cross-lingual Information Retrieval on
Low-Resource Languages via Optimal Transport Distillation*, WSDM 2023,
arXiv:2301.12566 (the setting in which it serves as baseline).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipeline.retrieval.embed import mean_pool

from .ot_alignment import (
    NonFiniteLossError,
    _batch_label,
    _compute_dtype,
    _rows,
    validate_token_inputs,
)

__all__ = ["PooledDistillationLoss", "pooled_distillation_loss"]

PoolKind = Literal["mse", "cosine"]
_KINDS = ("mse", "cosine")


def pooled_distillation_loss(
    H_T: Tensor,
    mask_T: Tensor,
    H_S: Tensor,
    mask_S: Tensor,
    a: Tensor | None = None,
    b: Tensor | None = None,
    *,
    kind: PoolKind,
    detach_teacher: bool = True,
    batch_id: Any = None,
) -> Tensor:
    """Per-pair pooled distillation loss, shape [B] (see module docstring)."""
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    validate_token_inputs(H_T, mask_T, H_S, mask_S, a, b)

    dtype = _compute_dtype(H_T, H_S)
    if detach_teacher:
        H_T = H_T.detach()
    pooled_t = mean_pool(H_T.to(dtype), mask_T, a)
    pooled_s = mean_pool(H_S.to(dtype), mask_S, b)

    finite = torch.isfinite(pooled_t.detach()).all(dim=1) & torch.isfinite(pooled_s.detach()).all(dim=1)
    bad = ~finite
    if bool(bad.any()):
        raise NonFiniteLossError(
            f"pooled distillation loss: pooled embedding has NaN/inf for {_batch_label(batch_id)}, row(s) {_rows(bad)}"
        )

    if kind == "mse":
        return (pooled_t - pooled_s).pow(2).mean(dim=1)
    return 1.0 - F.cosine_similarity(pooled_t, pooled_s, dim=1)


class PooledDistillationLoss(nn.Module):
    """Mean-pooled teacher/student distillation; ``forward`` returns ``{"loss": batch mean}``."""

    def __init__(self, kind: PoolKind, detach_teacher: bool = True) -> None:
        super().__init__()
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
        self.kind = kind
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
        per_pair = pooled_distillation_loss(
            H_T,
            mask_T,
            H_S,
            mask_S,
            a,
            b,
            kind=self.kind,
            detach_teacher=self.detach_teacher,
            batch_id=batch_id,
        )
        return {"loss": per_pair.mean()}

    def get_config_dict(self) -> dict[str, Any]:
        """The settings, as the stage's info file records them."""
        return {"kind": self.kind, "detach_teacher": self.detach_teacher}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.get_config_dict().items())
