"""Where training runs: device, mixed precision and data-parallel processes (``train`` params).

One process on the CPU is the default and the reference. With ``train.nproc > 1`` a training stage
re-launches itself under ``torchrun`` (:func:`relaunch`); every process then builds a :class:`Runtime`
(:func:`init_runtime`), wraps its model in PyTorch ``DistributedDataParallel`` (gloo on CPU, nccl on
CUDA) and trains on its share of each global batch. All processes draw the same global batches from the
same seed, so ``nproc`` changes how a batch is computed, not which examples it holds: the averaged
gradient is the single-process gradient up to floating-point summation order, and the logged loss is the
global batch mean (``tests/test_distributed.py`` checks both against one process).

Only rank 0 evaluates, logs and writes outputs; the other ranks train and exit.

Past one host (``train.nnodes > 1``) the same torchrun runs on every host with a static rendezvous at
``train.rdzv_endpoint`` (``host:port`` of node 0): node 0 is the host that runs ``dvc repro`` (it holds global
rank 0, which writes the outputs); every other host, with the stage's inputs pulled (``dvc pull``), joins with
``python -m pipeline.training.runtime join <teacher|distill> --node-rank R`` (docs/usage.md). Batches are split over
all ``nnodes × nproc`` processes.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from pipeline.config import hardware
from pipeline.errors import PipelineError

DEVICES = ("cpu", "cuda", "auto")
CPU = torch.device("cpu")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


class DistributedError(PipelineError):
    """A training process could not be set up (no GPU for ``device: cuda``, a failed worker)."""


@dataclass(frozen=True)
class Runtime:
    """Device, precision and this process's place among the data-parallel processes."""

    device: torch.device = CPU
    precision: str = "fp32"
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def shard(self, idx):
        """This process's contiguous share of a global batch of indices (the batch divides evenly)."""
        if len(idx) % self.world_size:
            raise ValueError(f"a batch of {len(idx)} does not split over {self.world_size} processes")
        size = len(idx) // self.world_size
        return idx[self.rank * size : (self.rank + 1) * size]

    def wrap(self, model: nn.Module) -> nn.Module:
        """The model on this device; in DDP when there are several processes."""
        model.to(self.device)
        if not self.distributed:
            return model
        # A BERT pooler is built but unused by mean pooling: frozen, DDP does not wait for its gradients.
        if getattr(model, "pooler", None) is not None:
            model.pooler.requires_grad_(False)
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def autocast(self):
        """Mixed precision for the forward pass (a no-op context in fp32)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """fp16 needs loss scaling; bf16 and fp32 do not."""
        return torch.amp.GradScaler(self.device.type) if self.precision == "fp16" else None

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Concatenate a tensor over processes along dim 0, with gradients flowing back to each share."""
        if not self.distributed:
            return tensor
        from torch.distributed.nn.functional import all_gather

        with warnings.catch_warnings():  # deprecated in favour of a private API; still the documented autograd one
            warnings.simplefilter("ignore", FutureWarning)
            return torch.cat(all_gather(tensor), dim=0)

    def mean(self, value: torch.Tensor) -> float:
        """The mean of a scalar over processes (the global-batch loss, for logging)."""
        value = value.detach().float().clone()
        if self.distributed:
            dist.all_reduce(value, op=dist.ReduceOp.SUM)
            value /= self.world_size
        return float(value)


def resolve_device(device: str) -> torch.device:
    if device not in DEVICES:
        raise ValueError(f"unknown train.device {device!r}; expected one of {DEVICES}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise DistributedError("train.device is 'cuda' but torch sees no CUDA device (use cpu or auto)")
    return torch.device(device)


STAGES = ("teacher", "distill")  #: the training stages, ``pipeline.stages.<name>``


def torchrun_command(
    nproc: int, target: list[str], *, nnodes: int = 1, endpoint: str | None = None, node_rank: int = 0
) -> list[str]:
    """The torchrun command line that runs ``python target…`` as ``nproc`` processes on this host.

    One host: a standalone rendezvous. ``nnodes > 1``: a static rendezvous at ``endpoint`` (``host:port``) where
    this host is node ``node_rank`` (node 0 holds global rank 0). ``target``: ``["-m", module]`` or a script
    and its arguments.
    """
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
    if nnodes == 1:
        cmd.append("--standalone")
    else:
        if not endpoint:
            raise DistributedError(f"train.nnodes={nnodes} needs train.rdzv_endpoint (host:port of node 0)")
        if not 0 <= node_rank < nnodes:
            raise DistributedError(f"--node-rank {node_rank}: expected 0 <= node rank < train.nnodes={nnodes}")
        cmd += [
            f"--nnodes={nnodes}",
            f"--node-rank={node_rank}",
            "--rdzv-backend=static",
            f"--rdzv-endpoint={endpoint}",
        ]
    return [*cmd, *target]


def relaunch(nproc: int, module: str, *, nnodes: int = 1, endpoint: str | None = None, node_rank: int = 0) -> bool:
    """Run ``python -m module`` as ``nproc`` processes under torchrun (this host's share of ``nnodes``); False
    when there is nothing to do.

    Returns True after the workers have finished (the caller then returns: rank 0 wrote the outputs).
    Called again inside a worker (``LOCAL_RANK`` is set) or with one process on one host it does nothing.
    """
    if (nproc <= 1 and nnodes <= 1) or "LOCAL_RANK" in os.environ:
        return False
    cmd = torchrun_command(nproc, ["-m", module], nnodes=nnodes, endpoint=endpoint, node_rank=node_rank)
    # Each worker gets an equal share of the cores (torchrun would otherwise set 1 thread per process).
    threads = max(1, (os.cpu_count() or 1) // nproc)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(threads))}
    result = subprocess.run(cmd, check=False, env=env)
    if result.returncode:
        where = f" on node {node_rank} of {nnodes}" if nnodes > 1 else ""
        raise DistributedError(
            f"{module} under torchrun with {nproc} processes{where} failed (exit {result.returncode})"
        )
    return True


def init_runtime(device: str, precision: str) -> Runtime:
    """This process's :class:`Runtime`; joins the process group when started by torchrun. ``precision``
    ``auto`` is resolved here (:func:`pipeline.config.hardware.resolve`): the runtime holds what runs."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown train.precision {precision!r}; expected one of {PRECISIONS}")
    dev = resolve_device(device)
    precision = hardware.resolve("train.precision", precision, dev.type)
    if precision == "fp16" and dev.type != "cuda":
        raise DistributedError("train.precision 'fp16' needs a CUDA device (use bf16 on CPU)")
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Runtime(dev, precision)
    local_rank = int(os.environ["LOCAL_RANK"])
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return Runtime(dev, precision, dist.get_rank(), dist.get_world_size())


def shutdown(runtime: Runtime) -> None:
    if runtime.distributed and dist.is_initialized():
        dist.destroy_process_group()


def run_training(params, module: str, train: Callable[[object, Runtime], None]) -> None:
    """A training stage's entry: ``train(params, runtime)`` in this process, or in each of ``train.nproc``
    torchrun workers (``module`` is the stage, re-launched with ``python -m``)."""
    tr = params.train
    if relaunch(tr.nproc, module, nnodes=tr.nnodes, endpoint=tr.rdzv_endpoint):
        return
    runtime = init_runtime(params.train.device, params.train.precision)
    try:
        train(params, runtime)
    finally:
        shutdown(runtime)


def join(argv: list[str] | None = None) -> None:
    """``python -m pipeline.training.runtime join STAGE --node-rank R``: this host's share of a multi-node stage."""
    import argparse

    from pipeline.config.params import load_params

    ap = argparse.ArgumentParser(prog="python -m pipeline.training.runtime", description=join.__doc__)
    ap.add_argument("action", choices=["join"])
    ap.add_argument("stage", choices=STAGES)
    ap.add_argument("--node-rank", type=int, required=True, help="1 .. train.nnodes-1 (node 0 runs dvc repro)")
    args = ap.parse_args(argv)
    tr = load_params().train
    if tr.nnodes < 2:
        raise DistributedError("train.nnodes is 1: there is no other node to join")
    if args.node_rank == 0:
        raise DistributedError("--node-rank 0 is the host that runs `dvc repro`; join with 1 .. train.nnodes-1")
    relaunch(
        tr.nproc, f"pipeline.stages.{args.stage}", nnodes=tr.nnodes, endpoint=tr.rdzv_endpoint, node_rank=args.node_rank
    )


if __name__ == "__main__":
    from pipeline.cli import run_command

    run_command(join)
