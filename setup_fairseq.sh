#!/usr/bin/env bash
# Install fairseq-fixed 0.12.3.1 into the active Python environment (setup.sh step 4; timed by
# benchmarks/setup_build.py), compiling only the one extension the pipeline uses.
#
# fairseq's setup.py compiles six extensions: the Cython modules data_utils_fast and token_block_utils_fast,
# libbleu, and three PyTorch C++ extensions (libbase, libnat, alignment_train_cpu_binding) whose torch headers
# make most of the build time. The pipeline (pipeline/mt: fairseq-preprocess, the translation task's training and
# the hub's generate) imports only fairseq.data.data_utils_fast (batch_by_size); the others serve BASE layers,
# non-autoregressive models, fairseq's own BLEU scorer, language-model token blocks and an example operator, and
# fairseq imports each only when such a feature is used (with an error that says how to build it).
# READTHEDOCS=1 is fairseq's setup.py's own switch to install without extensions; data_utils_fast is then
# compiled from the same sdist with fairseq's flags.
# No build isolation (it would pull a CUDA torch) and no deps (fairseq's torchaudio pin breaks `import transformers`;
# its runtime deps are pinned in requirements.txt).
set -euo pipefail
VERSION=0.12.3.1
pip() { python -m pip --disable-pip-version-check -q "$@"; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pip download --no-deps --no-build-isolation --no-binary fairseq-fixed "fairseq-fixed==$VERSION" -d "$work"
tar -xzf "$work/fairseq_fixed-$VERSION.tar.gz" -C "$work"
src="$work/fairseq_fixed-$VERSION"
READTHEDOCS=1 pip install --no-build-isolation --no-deps "$src"
site=$(python -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')
cd "$src"
python - "$site" "$work/build" <<'EOF'
import sys

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

site, build = sys.argv[1:3]
ext = Extension(
    "fairseq.data.data_utils_fast",
    sources=["fairseq/data/data_utils_fast.pyx"],
    include_dirs=[numpy.get_include()],
    language="c++",
    extra_compile_args=["-std=c++11", "-O3"],  # as fairseq's setup.py
)
setup(
    name="fairseq-data-utils-fast",
    script_args=["-q", "build_ext", "--build-lib", site, "--build-temp", build],
    ext_modules=cythonize([ext], quiet=True),
)
EOF
cd - >/dev/null
python -c "import fairseq.data.data_utils_fast"
