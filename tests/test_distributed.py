"""Data-parallel training (torchrun, gloo on CPU) against one process, and the `train` params' errors."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.config.params import ParamsError, load_params, parse_params
from pipeline.training.runtime import DistributedError, Runtime, init_runtime, join, relaunch, torchrun_command

WORKER = Path(__file__).with_name("ddp_worker.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(out_dir, nproc, nnodes=1):
    """The worker as one process, ``nproc`` processes on one host, or ``nnodes`` torchrun agents of ``nproc``
    processes each on 127.0.0.1 (a static rendezvous, as ``train.nnodes`` launches it on real hosts)."""
    out = out_dir / f"losses_{nproc}x{nnodes}.json"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    target = [str(WORKER), str(out)]
    if nproc == nnodes == 1:
        subprocess.run([sys.executable, *target], check=True, env=env, timeout=300)
    else:
        endpoint = f"127.0.0.1:{_free_port()}"
        agents = [
            subprocess.Popen(torchrun_command(nproc, target, nnodes=nnodes, endpoint=endpoint, node_rank=r), env=env)
            for r in range(nnodes)
        ]
        assert [a.wait(timeout=300) for a in agents] == [0] * nnodes
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("ddp"), 1)


def _same_training(one, many, world_size):
    assert one["world_size"] == 1 and many["world_size"] == world_size
    for curve in ("teacher", "student"):
        assert len(one[curve]) == len(many[curve]) == 4
        # Same global batches, gradients averaged over the shares: the same curve up to summation order.
        np.testing.assert_allclose(many[curve], one[curve], rtol=1e-4, atol=1e-5)
    assert one["teacher"][-1] < one["teacher"][0]
    names = one["weights"].keys()
    assert names == many["weights"].keys()
    np.testing.assert_allclose(
        [many["weights"][n] for n in names], [one["weights"][n] for n in names], rtol=1e-4, atol=1e-4
    )


def test_two_cpu_processes_train_like_one(tmp_path, one_process):
    _same_training(one_process, _train(tmp_path, 2), 2)


def test_two_nodes_train_like_one(tmp_path, one_process):
    """Two torchrun agents (one process each) meeting at a rendezvous on 127.0.0.1: two hosts in miniature."""
    _same_training(one_process, _train(tmp_path, 1, nnodes=2), 2)


def test_multi_node_commands_and_their_errors():
    cmd = torchrun_command(2, ["-m", "pipeline.stages.distill"], nnodes=3, endpoint="node0:29500", node_rank=1)
    assert cmd[3:] == [
        "--nproc-per-node=2",
        "--nnodes=3",
        "--node-rank=1",
        "--rdzv-backend=static",
        "--rdzv-endpoint=node0:29500",
        "-m",
        "pipeline.stages.distill",
    ]
    assert "--standalone" in torchrun_command(2, ["-m", "x"])
    with pytest.raises(DistributedError, match="needs train.rdzv_endpoint"):
        torchrun_command(1, ["-m", "x"], nnodes=2)
    with pytest.raises(DistributedError, match="--node-rank 2: expected 0 <= node rank < train.nnodes=2"):
        torchrun_command(1, ["-m", "x"], nnodes=2, endpoint="h:1", node_rank=2)
    with pytest.raises(DistributedError, match="train.nnodes is 1: there is no other node to join"):
        join(["join", "distill", "--node-rank", "1"])


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
        init_runtime("cuda", "fp32")
    with pytest.raises(DistributedError, match="fp16.*needs a CUDA device"):
        init_runtime("cpu", "fp16")


def test_train_params_are_validated():
    raw = load_params().model_dump()
    one_host = {"nnodes": 1, "rdzv_endpoint": None}
    raw["train"] = {"nproc": 3, "device": "cpu", "precision": "fp32", **one_host}
    with pytest.raises(ParamsError, match=r"teacher.batch_size=16 does not split over train.nproc=3 × train.nnodes=1"):
        parse_params(raw)
    raw["train"] = {"nproc": 1, "device": "cpu", "precision": "fp32", "nnodes": 3, "rdzv_endpoint": "node0:29500"}
    with pytest.raises(ParamsError, match=r"does not split over train.nproc=1 × train.nnodes=3"):
        parse_params(raw)
    raw["train"] = {"nproc": 1, "device": "cpu", "precision": "fp32", "nnodes": 2, "rdzv_endpoint": None}
    with pytest.raises(ParamsError, match=r"train.nnodes=2 needs train.rdzv_endpoint"):
        parse_params(raw)
    raw["train"] = {"nproc": 1, "device": "cpu", "precision": "fp32", "nnodes": 2, "rdzv_endpoint": "no port"}
    with pytest.raises(ParamsError, match="train.rdzv_endpoint"):
        parse_params(raw)
    raw["train"] = {"nproc": 2, "device": "tpu", "precision": "fp32", **one_host}
    with pytest.raises(ParamsError, match="train.device"):
        parse_params(raw)
