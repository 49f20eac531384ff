"""Every allowed value of the design is written once (pipeline.config.conditions) and every stage's paths come from
pipeline.config.paths: no module repeats a list of conditions or spells a metrics path."""

import ast
from pathlib import Path

import pytest

from pipeline.config import conditions

ROOT = Path(__file__).resolve().parents[1]
CHOICES = {
    "AUG_ORIGINS": set(conditions.AUG_ORIGINS),
    "AUG_FILTERS": set(conditions.AUG_FILTERS),
    "DISTILL_LOSSES": set(conditions.DISTILL_LOSSES),
    "SCORINGS": set(conditions.SCORINGS),
    "COLLECTIONS": set(conditions.COLLECTIONS),
}


def string_collections(path: Path):
    """(line, values) of every tuple, list or set literal of two or more strings in ``path``, and of every
    ``Literal[...]`` subscript."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        elts = None
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            elts = node.elts
        elif isinstance(node, ast.Subscript) and getattr(node.value, "id", None) == "Literal":
            elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if elts and len(elts) >= 2 and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in elts):
            yield node.lineno, {e.value for e in elts}


def library_files():
    return [p for p in sorted((ROOT / "pipeline").rglob("*.py")) if p != ROOT / "pipeline/config/conditions.py"]


def test_no_module_repeats_a_list_of_conditions():
    repeated = [
        f"{path.relative_to(ROOT)}:{line} repeats {name}"
        for path in library_files()
        for line, values in string_collections(path)
        for name, allowed in CHOICES.items()
        if values <= allowed
    ]
    assert not repeated, repeated


def test_the_check_finds_a_repeated_list(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('X = ("dense", "maxsim")\nY: Literal["ot", "pooled"]\nZ = ("title", "desc")\n')
    found = [values for _, values in string_collections(module)]
    assert {"dense", "maxsim"} in found and {"ot", "pooled"} in found and {"title", "desc"} in found


@pytest.mark.parametrize("path", sorted((ROOT / "pipeline/stages").glob("*.py")), ids=lambda p: p.name)
def test_stages_take_their_metrics_paths_from_paths(path):
    literals = [
        node.value
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("metrics/")
    ]
    assert not literals, f"{path.name} spells metrics paths: {literals} (use pipeline.config.paths.metrics_file)"
