"""Params for tests: ``params.yaml`` with a few keys overridden.

The schema has no defaults of its own (``params.yaml`` is the one place they live), so a test that needs
``lang: som`` takes the repository's params and changes that key: ``params_with(lang="som")`` or, for nested
keys, ``params_with({"prepare.collection": "known_item"})``.
"""

from __future__ import annotations

import copy
import functools
import re
import subprocess
import sys
from pathlib import Path

import yaml

from pipeline.config.params import Params, parse_params
from pipeline.data import splits

PARAMS_YAML = Path(__file__).resolve().parents[1] / "params.yaml"


@functools.cache
def _repository_params() -> dict:
    return yaml.safe_load(PARAMS_YAML.read_text(encoding="utf-8"))


def raw_params(overrides: dict | None = None, /, **kw) -> dict:
    """The mapping of ``params.yaml`` with dotted keys set (a new key is added, as ``dvc exp run -S`` does)."""
    raw = copy.deepcopy(_repository_params())
    for dotted, value in {**(overrides or {}), **kw}.items():
        *parents, leaf = dotted.split(".")
        node = raw
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return raw


def params_with(overrides: dict | None = None, /, **kw) -> Params:
    """Validated params: ``params.yaml`` with dotted keys overridden."""
    return parse_params(raw_params(overrides, **kw), "params.yaml (test overrides)")


def prepare_with(overrides: dict | None = None, /, **kw) -> splits.Prepared:
    """``splits.prepare`` as the prepare stage calls it, on ``params.yaml`` with dotted keys overridden."""
    params = params_with(overrides, **kw)
    return splits.prepare(params.prepare, params.seed, params.lang_seed, params.language)


def prepare_new_language(proj: Path, env: dict, code: str, entry: str) -> subprocess.CompletedProcess:
    """In the throw-away project ``proj``: append ``entry`` (one line) to the language registry, set ``lang`` to
    ``code`` and run the ``prepare`` stage; returns the finished process."""
    with open(proj / "pipeline/config/languages.yaml", "a", encoding="utf-8") as fh:
        fh.write(entry)
    params = proj / "params.yaml"
    params.write_text(re.sub(r"(?m)^lang: \w+", f"lang: {code}", params.read_text(encoding="utf-8")), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "pipeline.stages.prepare"], cwd=proj, env=env, capture_output=True, text=True
    )
