"""Instruction-set caps for benchmarks: run the libraries as on a CPU with less than this one has.

``avx2`` caps oneDNN (``ONEDNN_MAX_CPU_ISA``), Intel MKL (``MKL_ENABLE_INSTRUCTIONS``), PyTorch's vectorised kernels
(``ATEN_CPU_CAPABILITY``) and CTranslate2's own kernels (``CT2_FORCE_CPU_ISA``) at AVX2, the budget machine's
instruction set, on an AVX-512 CPU. Clock, caches and memory stay this machine's, so a capped run approximates an
AVX2-only CPU; results say which it was.
"""

from __future__ import annotations

ISA_ENV = {
    "native": {},
    "avx2": {
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        "ATEN_CPU_CAPABILITY": "avx2",
        "CT2_FORCE_CPU_ISA": "AVX2",
    },
}


def describe(isa: str) -> str:
    """What a results file says about the cap (empty for ``native``)."""
    if isa == "native":
        return ""
    return f"; libraries capped at {isa.upper()} ({', '.join(f'{k}={v}' for k, v in ISA_ENV[isa].items())})"
