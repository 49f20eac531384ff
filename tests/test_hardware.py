"""pipeline.hardware: what precision `auto` runs, and the note for CPUs on which bf16 is slow."""

from __future__ import annotations

import pytest
import torch

from pipeline import hardware
from pipeline.distributed import init_runtime
from pipeline.hardware import bf16_note, resolve, uses_bf16


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


@pytest.mark.parametrize("kernels", [True, False])
def test_note_only_without_bf16_kernels(monkeypatch, kernels):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: kernels)
    note = bf16_note()
    if kernels:
        assert note is None
    else:
        assert torch.backends.cpu.get_cpu_capability() in note and "docs/performance.md" in note


@pytest.mark.parametrize("kernels", [True, False])
def test_auto_is_bf16_exactly_where_the_cpu_has_bf16_kernels(monkeypatch, kernels):
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
