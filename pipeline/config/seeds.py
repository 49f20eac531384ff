"""One root seed; every consumer derives its own seed from it *by name*.

Deriving by name (not by order of use) means adding a stage or a random draw never shifts another
stage's randomness: ``derive(13, "prepare", "queries")`` is the same whatever else the pipeline does.
"""

from __future__ import annotations

import hashlib

import numpy as np


def _name_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


def seed_sequence(root: int, *names: str) -> np.random.SeedSequence:
    """A numpy ``SeedSequence`` for ``root`` and a path of names."""
    return np.random.SeedSequence([root, *(_name_key(n) for n in names)])


def derive(root: int, *names: str) -> int:
    """A 32-bit integer seed for ``root`` and a path of names (for torch, ``random``, fairseq)."""
    return int(seed_sequence(root, *names).generate_state(1)[0])


def rng(root: int, *names: str) -> np.random.Generator:
    return np.random.default_rng(seed_sequence(root, *names))
