"""Which precision this machine runs well: what ``auto`` means for ``synth.dtype`` and ``train.precision``.

bf16 is fast on a CPU only where it has bf16 instructions (AVX512-BF16 or AMX-BF16) and PyTorch's oneDNN kernels use
them. On an AVX2-only CPU a bf16 matmul takes tens of times as long as a float32 one; on an AVX-512 CPU without
AVX512-BF16 oneDNN still offers bf16 kernels but emulates them: the default run's teacher and distill stages took
2.7-3.5x as long in bf16 as in float32 there (docs/performance.md). So ``auto`` (the default of both params) is
bf16 on a CUDA device with bf16 support or a CPU with native bf16 kernels, and float32 elsewhere; the stages write what
ran into their metrics' info files and ``results/`` records keep it.
``setup.sh`` (``python -m pipeline.config.hardware``) says what ``auto`` picks here, and ``pipeline.experiments.grid
run|queue`` prints :func:`bf16_note` before a grid that declares bf16 on a machine without the kernels.
"""

from __future__ import annotations

from pathlib import Path

AUTO = "auto"
#: /proc/cpuinfo flags of a CPU with bf16 instructions (Cooper Lake and later: AVX512-BF16; Sapphire Rapids: AMX-BF16).
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
CPUINFO = Path("/proc/cpuinfo")
#: The bf16 value of each precision param; the float32 value is :data:`FP32_VALUES`'.
BF16_PARAMS = {"synth.dtype": "bfloat16", "train.precision": "bf16"}
FP32_VALUES = {"synth.dtype": "float32", "train.precision": "fp32"}


def uses_bf16(params: dict) -> bool:
    """Whether flattened ``params`` generate or train in bf16."""
    return any(params.get(k) == v for k, v in BF16_PARAMS.items())


def bf16_fast(device: str = "cpu") -> bool:
    """Whether bf16 is fast on ``device`` (``cpu`` or ``cuda``): CUDA with bf16 support, or PyTorch's CPU bf16
    kernels."""
    import torch

    if device == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return cpu_bf16_kernels()


def resolve(key: str, value: str, device: str = "cpu") -> str:
    """What ``value`` of the precision param ``key`` (``synth.dtype`` or ``train.precision``) runs as on ``device``:
    ``auto`` becomes the bf16 value where :func:`bf16_fast`, else the float32 one; explicit values stay."""
    if value != AUTO:
        return value
    return BF16_PARAMS[key] if bf16_fast(device) else FP32_VALUES[key]


def cpu_bf16_kernels() -> bool:
    """Whether PyTorch has native bf16 kernels for this CPU: oneDNN's own test (AVX-512 or AMX) and, where
    /proc/cpuinfo says which instructions the CPU has, one of :data:`BF16_FLAGS` (oneDNN's test passes on any AVX-512
    CPU and then emulates bf16)."""
    import torch

    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return False
    flags = cpu_flags()
    return flags is None or any(f in flags for f in BF16_FLAGS)


def cpu_flags() -> set[str] | None:
    """The CPU's instruction-set flags from :data:`CPUINFO` (None where it cannot be read: not Linux)."""
    try:
        text = CPUINFO.read_text(encoding="utf-8")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return None


def bf16_note() -> str | None:
    """What is wrong when neither a CUDA device nor PyTorch's CPU bf16 kernels are here, else None."""
    import torch

    if bf16_fast("cuda") or bf16_fast("cpu"):
        return None
    return (
        f"NOTE: PyTorch has no native bf16 kernels for this CPU ({torch.backends.cpu.get_cpu_capability()}): bf16 "
        "generation and training (synth.dtype, train.precision) run several times slower here than float32 "
        "(docs/performance.md)"
    )


def cpu_model() -> str:
    """The CPU's model name, family and model (``/proc/cpuinfo``; virtual machines often show only a brand) and
    PyTorch's vector capability on it (AVX2, AVX512, …)."""
    import platform

    import torch

    fields = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or "unknown CPU"
    family = f"family {fields['cpu family']} model {fields['model']}, " if "cpu family" in fields else ""
    return f"{name} ({family}{torch.backends.cpu.get_cpu_capability()})"


def auto_summary() -> str:
    """One line: what ``auto`` means on this machine."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    picked = "bf16" if bf16_fast(device) else "float32"
    where = "CUDA" if device == "cuda" else f"this CPU ({torch.backends.cpu.get_cpu_capability()})"
    why = "has" if picked == "bf16" else "has no"
    return (
        f"precision auto (synth.dtype, train.precision): {picked} here: PyTorch {why} native bf16 kernels for {where}"
    )


if __name__ == "__main__":
    print(auto_summary())
