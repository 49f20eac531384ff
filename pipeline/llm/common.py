"""What model acquisition (:mod:`pipeline.llm.acquire`) and generation (:mod:`pipeline.llm.generate`) share."""

from __future__ import annotations

import torch

from pipeline.io import DataFileError


class LLMError(DataFileError):
    """A language model or endpoint could not be loaded or used; the message names the model or URL."""


def pad_batch(rows: list[list[int]], pad_id: int, *, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad to one width: left for generation (every row ends where generation starts), right for training."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        span = slice(width - len(r), width) if left else slice(0, len(r))
        ids[i, span] = torch.tensor(r, dtype=torch.long)
        mask[i, span] = 1
    return ids, mask
