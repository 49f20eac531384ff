"""Every module a stage imports is a dependency of that stage in dvc.yaml, and stages never import each other.

Without this, a change to a library module that a stage imports (but does not list under ``deps``) leaves a
stale result that ``dvc status`` calls up to date. The closure is computed statically from the source: every
``import`` of a ``pipeline`` module, at any depth (function-level imports included), plus the ``__init__.py`` of
every package on the way, which Python runs too.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """The source file of a ``pipeline`` module (a package's ``__init__.py``), or None if there is none."""
    base = root / Path(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.exists():
            return path
    return None


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Names of the ``pipeline`` modules that ``path`` imports, anywhere in the file."""
    package = ".".join(path.relative_to(root).parent.parts)  # what a relative import is relative to
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return {m for m in found if m.split(".")[0] == "pipeline" and module_file(m, root)}


def closure(module: str) -> set[Path]:
    """Files of every ``pipeline`` module that running ``module`` may execute."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages run first
        todo.extend(imported_modules(module_file(name)))
    return {module_file(m).relative_to(ROOT) for m in seen}


def stages() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def stage_module(cmd: str) -> str:
    words = cmd.split()
    return words[words.index("-m") + 1]


def covered(path: Path, deps: list[str]) -> bool:
    return any(path == Path(d) or Path(d) in path.parents for d in deps)


@pytest.mark.parametrize("name", sorted(stages()))
def test_every_imported_module_is_a_dependency(name):
    stage = stages()[name]
    deps = [str(d) for d in stage.get("deps", [])]
    missing = sorted(str(p) for p in closure(stage_module(stage["cmd"])) if not covered(p, deps))
    assert not missing, f"stage {name!r} imports modules that are not in its dvc.yaml deps: {missing}"


def test_stages_do_not_import_other_stages():
    for path in sorted((ROOT / "pipeline/stages").glob("*.py")):
        if path.name == "__init__.py":
            continue
        others = {m for m in imported_modules(path) if m.startswith("pipeline.stages.")}
        assert not others, (
            f"{path.name} imports other stage modules {sorted(others)}: move the shared code to the library"
        )


def test_stages_and_the_library_do_not_import_the_experiment_tools():
    """pipeline.experiments (grids, results, reports, docs) reads what the stages write; no stage runs its code,
    neither directly nor through the library."""
    tools = ROOT / "pipeline/experiments"
    for name, stage in sorted(stages().items()):
        reached = sorted(
            str(p) for p in closure(stage_module(stage["cmd"])) if Path("pipeline/experiments") in p.parents
        )
        assert not reached, f"stage {name!r} imports experiment tools {reached}"
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        if tools not in path.parents:
            found = {m for m in imported_modules(path) if m.split(".")[:2] == ["pipeline", "experiments"]}
            assert not found, f"{path.relative_to(ROOT)} imports {sorted(found)}: the library must not need the tools"


def test_imports_are_found_at_any_depth_and_relative(tmp_path):
    pkg = tmp_path / "pipeline" / "sub"
    pkg.mkdir(parents=True)
    for name in (
        "pipeline/__init__.py",
        "pipeline/sub/__init__.py",
        "pipeline/a.py",
        "pipeline/b.py",
        "pipeline/sub/c.py",
    ):
        (tmp_path / name).write_text("")
    (pkg / "__init__.py").write_text("from .c import x\n\ndef f():\n    from pipeline import a\n    import numpy\n")
    assert imported_modules(pkg / "__init__.py", tmp_path) == {"pipeline", "pipeline.a", "pipeline.sub.c"}
    files = closure("pipeline.stages.distill")
    assert Path("pipeline/losses/ot_alignment.py") in files  # pipeline.losses -> relative `from .ot_alignment`
    assert Path("pipeline/__init__.py") in files and Path("pipeline/stages/__init__.py") in files
    assert not covered(Path("pipeline/retrieval/embed.py"), ["pipeline/models"]) and covered(
        Path("pipeline/a/b.py"), ["pipeline/a"]
    )


@pytest.mark.parametrize("stage", ["prepare", "report"])
def test_light_stages_do_not_import_torch(stage):
    """prepare and report run in a second or two: importing torch (and what pulls it in) would dominate that."""
    code = f"import sys, pipeline.stages.{stage}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
