"""Training loops: the English teacher (InfoNCE) and the OPTICAL student (token-level distillation).

Both loops are seeded and deterministic on CPU (same params → same weights → same metrics), report the loss
of every step through an optional ``log(step, values)`` callback (the stages send it to DVCLive), and train
only what the config leaves trainable (word embeddings frozen and/or only the top N layers). A
:class:`~pipeline.training.runtime.Runtime` says where they run (device, mixed precision, data-parallel
processes); the default, one CPU process in fp32, is the reference the others are tested against.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from pipeline.losses import DistillLoss
from pipeline.retrieval.embed import PASSAGE_PREFIX, QUERY_PREFIX, mean_pool, token_states
from pipeline.training.runtime import Runtime

LogFn = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class TrainConfig:
    """The training loop's settings; no defaults here: they come from the ``teacher``/``distill`` params."""

    steps: int
    batch_size: int
    lr: float
    max_length: int
    freeze_embeddings: bool
    train_layers: int | None  # train only the top N transformer layers (None: all)

    @classmethod
    def from_params(cls, section, steps: int) -> TrainConfig:
        """From the ``teacher`` or ``distill`` params section (duck-typed) and the number of steps to train."""
        return cls(
            steps,
            section.batch_size,
            section.lr,
            section.max_length,
            section.freeze_embeddings,
            section.train_layers,
        )


def training_steps(steps: int | None, epochs: float | None, rows: int, batch_size: int) -> int:
    """The stopping rule of the ``distill`` stage: ``steps`` steps, or (``epochs`` set, ``steps`` None)
    ``ceil(epochs * rows / batch_size)``, every training row seen ``epochs`` times on average. With the augmentation
    rows on top of the seed bitext, the second gives every ``aug`` the same passes over the seed bitext; a fixed step
    count gives ``none`` more (200 steps: 3.2 epochs of 1,000 seed rows, 1.6 with 1,000 augmentation rows)."""
    if (steps is None) == (epochs is None):
        raise ValueError(f"set exactly one of steps ({steps!r}) and epochs ({epochs!r})")
    if steps is not None:
        return steps
    if rows < 1:
        raise ValueError("no training rows")
    return math.ceil(epochs * rows / batch_size)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def configure_trainable(model: nn.Module, freeze_embeddings: bool, train_layers: int | None) -> int:
    """Freeze what the config says; returns the number of trainable parameters."""
    layers = model.encoder.layer
    if train_layers is not None and not 1 <= train_layers <= len(layers):
        raise ValueError(f"train_layers={train_layers} but the model has {len(layers)} layers")
    for p in model.parameters():
        p.requires_grad_(True)
    if freeze_embeddings:
        model.embeddings.word_embeddings.weight.requires_grad_(False)
    if train_layers is not None:
        for p in model.embeddings.parameters():
            p.requires_grad_(False)
        for layer in layers[: len(layers) - train_layers]:
            for p in layer.parameters():
                p.requires_grad_(False)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def batch_indices(n: int, batch_size: int, steps: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """``steps`` batches of indices into ``n`` items: shuffled epochs, the last partial batch dropped."""
    if n < batch_size:
        raise ValueError(f"{n} training pairs are fewer than one batch of {batch_size}")
    per_epoch = n // batch_size
    order = rng.permutation(n)
    for step in range(steps):
        if step and step % per_epoch == 0:
            order = rng.permutation(n)
        k = step % per_epoch
        yield order[k * batch_size : (k + 1) * batch_size]


def _optimizer(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)


def _update(optimizer: torch.optim.Optimizer, loss: torch.Tensor, scaler: torch.amp.GradScaler | None) -> None:
    """One optimizer step on ``loss`` (scaled when training in fp16)."""
    optimizer.zero_grad()
    if scaler is None:
        loss.backward()
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()


def pooled_embeddings(model, tokenizer, texts: list[str], prefix: str, max_length: int) -> torch.Tensor:
    """L2-normalised mean-pooled embeddings with gradients (the pooling of :func:`pipeline.retrieval.embed.encode`)."""
    hidden, attention_mask, _ = token_states(model, tokenizer, texts, prefix=prefix, max_length=max_length)
    return F.normalize(mean_pool(hidden, attention_mask), dim=-1)


def train_teacher(
    model,
    tokenizer,
    pairs: Sequence[tuple[str, str]],
    cfg: TrainConfig,
    *,
    temperature: float,
    seed: int,
    log: LogFn | None = None,
    runtime: Runtime | None = None,
) -> list[float]:
    """Fine-tune ``model`` for English retrieval on (query, passage) pairs; returns the per-step losses.

    Loss: InfoNCE with in-batch negatives, ``CE(q · pᵀ / temperature, diagonal)``. Under data parallelism
    each process embeds its share of the batch and scores its queries against the passages of all
    processes (gathered with gradients), so the negatives are those of the whole global batch.
    """
    rt = runtime or Runtime()
    seed_everything(seed)
    configure_trainable(model, cfg.freeze_embeddings, cfg.train_layers)
    net = rt.wrap(model)
    optimizer, scaler = _optimizer(model, cfg.lr), rt.grad_scaler()
    rng = np.random.default_rng(seed)
    model.train()
    losses = []
    batches = batch_indices(len(pairs), cfg.batch_size, cfg.steps, rng)
    for step, idx in enumerate(tqdm(batches, total=cfg.steps, desc="teacher", disable=not rt.is_main)):
        idx = rt.shard(idx)
        with rt.autocast():
            q = pooled_embeddings(net, tokenizer, [pairs[i][0] for i in idx], QUERY_PREFIX, cfg.max_length)
            p = pooled_embeddings(net, tokenizer, [pairs[i][1] for i in idx], PASSAGE_PREFIX, cfg.max_length)
        logits = q.float() @ rt.gather(p.float()).T / temperature
        loss = F.cross_entropy(logits, torch.arange(len(idx), device=logits.device) + rt.rank * len(idx))
        _check_finite(loss, step)
        _update(optimizer, loss, scaler)
        losses.append(rt.mean(loss))
        if log:
            log(step, {"loss": losses[-1]})
    model.eval()
    return losses


@dataclass(frozen=True)
class TokenIdf:
    """Smoothed inverse document frequency of every token id, per side of the training bitext: the OT
    marginals of ``distill.marginals: idf`` (a token's mass is its idf, normalised over the row's real tokens).

    ``idf(t) = ln((1 + N) / (1 + df(t))) + 1`` (scikit-learn's smooth idf) over the N texts of a side, each
    tokenised as the loop tokenises it (passage prefix, truncation); always > 0, so every real token keeps some
    mass, and a token no text of the side has gets the largest weight.
    """

    english: torch.Tensor  # [vocab] weights of the teacher's (English) tokens
    target: torch.Tensor  # [vocab] weights of the student's (target-language) tokens

    @staticmethod
    def table(tokenizer, texts: Sequence[str], max_length: int) -> torch.Tensor:
        ids = tokenizer([PASSAGE_PREFIX + t for t in texts], truncation=True, max_length=max_length)["input_ids"]
        df = torch.zeros(len(tokenizer), dtype=torch.float64)
        for row in ids:
            df[torch.tensor(sorted(set(row)), dtype=torch.long)] += 1
        return (torch.log((1 + len(ids)) / (1 + df)) + 1).float()

    @classmethod
    def from_pairs(cls, tokenizer, pairs: Sequence[tuple[str, str, str]], max_length: int) -> TokenIdf:
        """From bitext rows ``(id, en, xx)``."""
        return cls(
            cls.table(tokenizer, [p[1] for p in pairs], max_length),
            cls.table(tokenizer, [p[2] for p in pairs], max_length),
        )

    @staticmethod
    def weights(table: torch.Tensor, tokenizer, texts: list[str], max_length: int) -> torch.Tensor:
        """[B, L] weights aligned with :func:`pipeline.retrieval.embed.token_states` of the same texts."""
        texts = [PASSAGE_PREFIX + t for t in texts]
        batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        return table[batch["input_ids"]]


class FrozenStates:
    """Token states (and content masks) of a frozen model for ``texts``, computed the first time a row is drawn
    and kept: the teacher's English side of the bitext, which distillation draws every epoch. A batch is its rows
    right-padded to the longest (what :func:`pipeline.retrieval.embed.token_states` returns for the same rows)."""

    def __init__(self, model, tokenizer, texts: Sequence[str], max_length: int):
        self.model, self.tokenizer, self.texts, self.max_length = model, tokenizer, texts, max_length
        self.rows: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, idx: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        missing = [int(i) for i in dict.fromkeys(int(i) for i in idx) if int(i) not in self.rows]
        if missing:
            with torch.no_grad():
                hidden, attention, content = token_states(
                    self.model, self.tokenizer, [self.texts[i] for i in missing], prefix=PASSAGE_PREFIX,
                    max_length=self.max_length,
                )  # fmt: skip
            for r, i in enumerate(missing):
                n = int(attention[r].sum())
                self.rows[i] = (hidden[r, :n].clone(), content[r, :n].clone())
        rows = [self.rows[int(i)] for i in idx]
        length = max(h.shape[0] for h, _ in rows)
        first = rows[0][0]
        hidden = first.new_zeros((len(rows), length, first.shape[-1]))
        mask = torch.zeros((len(rows), length), dtype=torch.bool, device=first.device)
        for r, (h, m) in enumerate(rows):
            hidden[r, : h.shape[0]], mask[r, : m.shape[0]] = h, m
        return hidden, mask


def train_student(
    teacher,
    student,
    tokenizer,
    pairs: Sequence[tuple[str, str, str]],
    cfg: TrainConfig,
    loss_fn: DistillLoss,
    *,
    seed: int,
    log: LogFn | None = None,
    runtime: Runtime | None = None,
    idf: TokenIdf | None = None,
) -> list[float]:
    """OPTICAL distillation on bitext rows ``(id, en, xx)``; returns the per-step losses.

    ``loss_fn``: the ``distill.loss`` objective (:class:`pipeline.losses.DistillLoss`); every value of its dict
    (terms, ``loss``, the OT plan's ``plan/*`` diagnostics) goes to ``log`` each step, averaged over processes.
    ``idf``: token weights as the OT marginals (``distill.marginals: idf``); None: uniform over real tokens.

    Teacher token states of the English side (no grad; computed once per row, :class:`FrozenStates`) and student
    token states of the target side are
    aligned by ``loss_fn``; only the student is updated. Both sides are encoded as passages (with the
    ``passage: `` prefix, which the content masks exclude from the alignment). The loss is a mean over
    pairs, so under data parallelism each process aligns its share of the batch and DDP averages the
    gradients. Token states enter the loss in fp32 whatever the forward precision.
    """
    rt = runtime or Runtime()
    seed_everything(seed)
    teacher.eval().to(rt.device)
    for p in teacher.parameters():
        p.requires_grad_(False)
    configure_trainable(student, cfg.freeze_embeddings, cfg.train_layers)
    net = rt.wrap(student)
    optimizer, scaler = _optimizer(student, cfg.lr), rt.grad_scaler()
    rng = np.random.default_rng(seed)
    student.train()
    losses = []
    batches = batch_indices(len(pairs), cfg.batch_size, cfg.steps, rng)
    english = FrozenStates(teacher, tokenizer, [p[1] for p in pairs], cfg.max_length)
    for step, idx in enumerate(tqdm(batches, total=cfg.steps, desc="distill", disable=not rt.is_main)):
        idx = rt.shard(idx)
        ids = [pairs[i][0] for i in idx]
        with rt.autocast():
            H_T, mask_T = english(idx)
            H_S, _, mask_S = token_states(
                net, tokenizer, [pairs[i][2] for i in idx], prefix=PASSAGE_PREFIX, max_length=cfg.max_length
            )
        for side, mask in (("English", mask_T), ("target", mask_S)):
            empty = [ids[r] for r in range(len(ids)) if not bool(mask[r].any())]
            if empty:
                raise ValueError(f"bitext rows {empty[:5]} have no real {side} tokens after truncation (step {step})")
        a = b = None
        if idf is not None:
            a = TokenIdf.weights(idf.english, tokenizer, [pairs[i][1] for i in idx], cfg.max_length).to(mask_T.device)
            b = TokenIdf.weights(idf.target, tokenizer, [pairs[i][2] for i in idx], cfg.max_length).to(mask_S.device)
        parts = loss_fn(H_T.float(), mask_T, H_S.float(), mask_S, a, b, batch_id=f"step {step} (rows {ids[0]}…)")
        loss = parts["loss"]
        _check_finite(loss, step)
        _update(optimizer, loss, scaler)
        values = {k: rt.mean(v) for k, v in parts.items()}  # every process takes part in the averaging
        losses.append(values["loss"])
        if log:
            log(step, values)
    student.eval()
    return losses


def _check_finite(loss: torch.Tensor, step: int) -> None:
    if not torch.isfinite(loss):
        raise FloatingPointError(f"non-finite loss {float(loss)} at step {step}; stopping instead of training on NaN")
