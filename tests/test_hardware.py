"""pipeline.hardware: the note for CPUs on which the defaults' bf16 is slow."""

from __future__ import annotations

import pytest
import torch

from pipeline.hardware import bf16_note, uses_bf16


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
