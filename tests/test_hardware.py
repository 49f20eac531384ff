"""pipeline.config.hardware: what precision `auto` runs, and the note for CPUs on which bf16 is slow."""

from __future__ import annotations

import pytest
import torch

from pipeline.config import hardware
from pipeline.config.hardware import bf16_note, resolve, uses_bf16
from pipeline.training.runtime import init_runtime


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"synth.dtype": "bfloat16", "train.precision": "fp32"}, True),
        ({"synth.dtype": "float32", "train.precision": "bf16"}, True),
        ({"synth.dtype": "float32", "train.precision": "fp32"}, False),
        ({}, False),
    ],
)
def test_uses_bf16(params, expected):
    assert uses_bf16(params) is expected


def _cpu(monkeypatch, tmp_path, flags: str | None) -> None:
    """Pretend /proc/cpuinfo lists ``flags`` (None: no cpuinfo to read)."""
    path = tmp_path / "cpuinfo"
    if flags is not None:
        path.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 avx2 {flags}\n\nprocessor\t: 1\n", encoding="utf-8")
    monkeypatch.setattr(hardware, "CPUINFO", path)


@pytest.fixture
def bf16_cpu(monkeypatch, tmp_path):
    """A CPU with AVX512-BF16 (the flag oneDNN's bf16 kernels need to be native)."""
    _cpu(monkeypatch, tmp_path, "avx512f avx512_bf16")


@pytest.mark.parametrize(
    ("flags", "onednn", "expected"),
    [
        ("avx512f avx512_bf16", True, True),
        ("avx512f amx_bf16 amx_tile", True, True),
        ("avx512f", True, False),  # AVX-512 without bf16 instructions: oneDNN emulates bf16 (slower than float32)
        ("", False, False),  # AVX2 only
        (None, True, True),  # no /proc/cpuinfo (not Linux): oneDNN's own test decides
    ],
)
def test_native_bf16_needs_the_instructions_and_onednn(monkeypatch, tmp_path, flags, onednn, expected):
    _cpu(monkeypatch, tmp_path, flags)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: onednn)
    assert hardware.cpu_bf16_kernels() is expected


@pytest.mark.parametrize("kernels", [True, False])
def test_note_only_without_bf16_kernels(monkeypatch, bf16_cpu, kernels):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: kernels)
    note = bf16_note()
    if kernels:
        assert note is None
    else:
        assert torch.backends.cpu.get_cpu_capability() in note and "docs/performance.md" in note


@pytest.mark.parametrize("kernels", [True, False])
def test_auto_is_bf16_exactly_where_the_cpu_has_bf16_kernels(monkeypatch, bf16_cpu, kernels):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: kernels)
    assert resolve("train.precision", "auto") == ("bf16" if kernels else "fp32")
    assert resolve("synth.dtype", "auto") == ("bfloat16" if kernels else "float32")
    for key, value in (("train.precision", "fp32"), ("train.precision", "bf16"), ("synth.dtype", "bfloat16")):
        assert resolve(key, value) == value  # explicit values stay what they say
    assert init_runtime("cpu", "auto").precision == ("bf16" if kernels else "fp32")  # what the stages record


def test_auto_on_cuda_follows_cuda_bf16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert resolve("train.precision", "auto", "cuda") == "fp32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert resolve("train.precision", "auto", "cuda") == "bf16"


def test_the_summary_names_what_auto_picks(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(hardware, "cpu_bf16_kernels", lambda: False)
    assert "float32 here" in hardware.auto_summary()
    assert hardware.cpu_model()  # the CPU's name, for every timing
