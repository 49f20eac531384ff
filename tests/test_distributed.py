"""Data-parallel training (torchrun, gloo on CPU) against one process, and the `train` params' errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.distributed import DistributedError, Runtime, init_runtime, relaunch
from pipeline.params import ParamsError, load_params, parse_params

WORKER = Path(__file__).with_name("ddp_worker.py")


def _train(tmp_path, nproc):
    out = tmp_path / f"losses_{nproc}.json"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    launcher = [] if nproc == 1 else ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    subprocess.run([sys.executable, *launcher, str(WORKER), str(out)], check=True, env=env, timeout=300)
    return json.loads(out.read_text())


def test_two_cpu_processes_train_like_one(tmp_path):
    one, two = _train(tmp_path, 1), _train(tmp_path, 2)
    assert one["world_size"] == 1 and two["world_size"] == 2
    for curve in ("teacher", "student"):
        assert len(one[curve]) == len(two[curve]) == 4
        # Same global batches, gradients averaged over the two halves: the same curve up to summation order.
        np.testing.assert_allclose(two[curve], one[curve], rtol=1e-4, atol=1e-5)
    assert one["teacher"][-1] < one["teacher"][0]
    names = one["weights"].keys()
    assert names == two["weights"].keys()
    np.testing.assert_allclose(
        [two["weights"][n] for n in names], [one["weights"][n] for n in names], rtol=1e-4, atol=1e-4
    )


def test_runtime_single_process_is_the_plain_loop():
    rt = init_runtime("cpu", "fp32")
    assert rt == Runtime() and rt.is_main and not rt.distributed
    idx = np.arange(8)
    assert list(rt.shard(idx)) == list(idx)
    two = Runtime(rank=1, world_size=2)
    assert list(two.shard(idx)) == [4, 5, 6, 7]
    with pytest.raises(ValueError, match="does not split over 2"):
        two.shard(np.arange(5))
    assert relaunch(1, "pipeline.stages.teacher") is False


def test_bf16_on_cpu_runs():
    rt = init_runtime("cpu", "bf16")
    with rt.autocast():
        y = torch.nn.Linear(4, 4)(torch.ones(2, 4))
    assert y.dtype == torch.bfloat16 and rt.grad_scaler() is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_cuda_and_fp16_without_a_gpu_are_clear_errors():
    with pytest.raises(DistributedError, match="train.device is 'cuda'"):
        init_runtime("cuda")
    with pytest.raises(DistributedError, match="fp16.*needs a CUDA device"):
        init_runtime("cpu", "fp16")


def test_train_params_are_validated():
    raw = load_params().model_dump()
    raw["train"] = {"nproc": 3, "device": "cpu", "precision": "fp32"}
    with pytest.raises(ParamsError, match=r"teacher.batch_size=16 does not split over train.nproc=3"):
        parse_params(raw)
    raw["train"] = {"nproc": 2, "device": "tpu", "precision": "fp32"}
    with pytest.raises(ParamsError, match="train.device"):
        parse_params(raw)
