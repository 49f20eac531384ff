"""Whether this machine runs the defaults' bfloat16 well (``synth.dtype``, ``train.precision``).

bf16 is fast on a CPU only where PyTorch has bf16 kernels for it (oneDNN on AVX-512 or AMX); on an AVX2-only CPU a
bf16 matmul takes tens of times as long as a float32 one (``benchmarks/cpu_precision.py``, docs/performance.md).
``setup.sh`` (``python -m pipeline.hardware``) and ``pipeline.grid run|queue`` print :func:`bf16_note` before work
that would take hours there.
"""

from __future__ import annotations

BF16_PARAMS = {"synth.dtype": "bfloat16", "train.precision": "bf16"}


def uses_bf16(params: dict) -> bool:
    """Whether flattened ``params`` generate or train in bf16."""
    return any(params.get(k) == v for k, v in BF16_PARAMS.items())


def cpu_bf16_kernels() -> bool:
    """Whether PyTorch has bf16 kernels for this CPU (oneDNN's own test: AVX-512 or AMX)."""
    import torch

    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def bf16_note() -> str | None:
    """What is wrong when neither a CUDA device nor PyTorch's CPU bf16 kernels are here, else None."""
    import torch

    if torch.cuda.is_available() or cpu_bf16_kernels():
        return None
    return (
        f"NOTE: PyTorch has no bf16 kernels for this CPU ({torch.backends.cpu.get_cpu_capability()}): bf16 generation "
        "and training (synth.dtype, train.precision) run many times slower here than float32 (docs/performance.md)"
    )


if __name__ == "__main__":
    if note := bf16_note():
        print(f"{note}. The defaults use bf16; to run in float32 instead (another experiment):")
        print("  dvc exp run -S synth.dtype=float32 -S train.precision=fp32")
