"""The statistical designs of ``grid.yaml`` (its top-level ``designs:``), each declared in the commit that added its
grid, before any of its cells ran (docs/results.md, "The declared design"): the primary contrasts, the languages
they are pooled over, margin, alpha and power, seeds, queries and root seeds, and the secondary contrasts. Read by
:mod:`pipeline.experiments.compare` (a design's answer) and :mod:`pipeline.experiments.power` (its power).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.experiments import grid
from pipeline.experiments.conditions import AXES


@dataclass(frozen=True)
class Design:
    """A statistical design declared before its grid ran (``grid.yaml``'s ``designs:``, docs/results.md).

    The primary contrasts (``contrasts``: pairs of ``aug`` values A − B; ``a`` and ``b`` are the first) on each of
    ``splits`` are pooled over the languages ``pooled`` (language a fixed effect, equal weights): a family of
    ``len(contrasts) × len(splits)`` tests, Holm within it, at ``alpha``; equivalence by TOST within ``± margin``.
    ``seeds`` and ``queries`` are the design's replicate seeds per cell and queries per Bible split, ``roots`` its
    root seeds per language (``1``: the generators fixed, seeds and queries random and crossed; more: root seeds
    random, replicate seeds and queries nested in them, :func:`pipeline.experiments.stats.nested_test`), and
    ``target_mde`` the minimum detectable effect (at ``power``) the design was chosen for on ``splits[0]``, checked
    by ``pipeline.experiments.power``.
    """

    name: str
    report: str
    contrasts: tuple[tuple[str, str], ...]
    splits: tuple[str, ...]
    pooled: tuple[str, ...]
    margin: float
    alpha: float
    power: float
    target_mde: float
    seeds: int
    queries: int
    roots: int
    #: Secondary contrasts, tested like the primary ones but reported beside them: (axis, A, B), the axis a
    #: condition column (``aug`` unless written ``'AXIS: A - B'``).
    secondary: tuple[tuple[str, str, str], ...] = ()

    @property
    def a(self) -> str:
        return self.contrasts[0][0]

    @property
    def b(self) -> str:
        return self.contrasts[0][1]

    @property
    def family(self) -> int:
        """Primary tests: every contrast on every split."""
        return len(self.contrasts) * len(self.splits)


#: A design's keys and their types; ``contrast`` is one 'A - B' or a list of them; ``roots`` (1: the earlier designs,
#: whose generators were fixed) and ``secondary`` (a list of 'A - B' or 'AXIS: A - B') may be left out.
DESIGN_FIELDS = {"report": str, "contrast": (str, list), "splits": list, "pooled": list, "margin": float,
                 "alpha": float, "power": float, "target_mde": float, "seeds": int, "queries": int,
                 "roots": int, "secondary": list}  # fmt: skip
DESIGN_OPTIONAL = {"roots": 1, "secondary": []}


def _pair(text: object, where: str) -> tuple[str, str]:
    a, sep, b = (part.strip() for part in str(text).partition(" - "))
    if not (sep and a and b):
        raise grid.GridError(f"{where}.contrast: expected 'A - B' (two aug values), got {text!r}")
    return a, b


def _secondary(text: object, where: str, axes: tuple[str, ...]) -> tuple[str, str, str]:
    axis, sep, pair = str(text).rpartition(": ")
    axis = axis.strip() if sep else "aug"
    if axis not in axes:
        raise grid.GridError(f"{where}.secondary: {text!r}: the axis must be one of {list(axes)}")
    a, b = _pair(pair, f"{where}.secondary")
    return axis, a, b


def declared(grid_file: Path = grid.GRID_FILE) -> dict[str, Design]:
    """The declared designs (``grid.yaml``'s ``designs:``), each naming a declared report; an error names the key
    that is missing or malformed."""
    _, declared_reports, specs, _ = grid.read_all(grid_file)
    out = {}
    for name, spec in specs.items():
        where = f"{grid_file}: {grid.DESIGNS_KEY}.{name}"
        if not isinstance(spec, dict):
            raise grid.GridError(f"{where}: expected a mapping of {sorted(DESIGN_FIELDS)}")
        spec = {**DESIGN_OPTIONAL, **spec}
        for key, kind in DESIGN_FIELDS.items():
            value = spec.get(key)
            # YAML writes 1 for 1.0: a float field takes an int; a bool (an int to Python) is neither.
            if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else kind):
                names = " or ".join(k.__name__ for k in kind) if isinstance(kind, tuple) else kind.__name__
                raise grid.GridError(f"{where}.{key}: expected a {names}, got {value!r}")
        if unknown := sorted(set(spec) - set(DESIGN_FIELDS)):
            raise grid.GridError(f"{where}: unknown key(s) {unknown} (known: {sorted(DESIGN_FIELDS)})")
        if spec["report"] not in declared_reports:
            raise grid.GridError(f"{where}.report: no report {spec['report']!r} in {grid.REPORTS_KEY}:")
        listed = spec["contrast"] if isinstance(spec["contrast"], list) else [spec["contrast"]]
        if not listed:
            raise grid.GridError(f"{where}.contrast: expected 'A - B' or a non-empty list of them")
        if spec["roots"] < 1 or spec["seeds"] < 1:
            raise grid.GridError(f"{where}: roots and seeds must be >= 1, got {spec['roots']} and {spec['seeds']}")
        secondary = tuple(_secondary(c, where, AXES) for c in spec["secondary"])
        out[name] = Design(name, spec["report"], tuple(_pair(c, where) for c in listed), tuple(spec["splits"]),
                           tuple(spec["pooled"]), float(spec["margin"]), float(spec["alpha"]), float(spec["power"]),
                           float(spec["target_mde"]), spec["seeds"], spec["queries"], spec["roots"],
                           secondary)  # fmt: skip
    return out


def declared_cells(design: Design, grid_file: Path = grid.GRID_FILE) -> dict[str, dict]:
    """Every cell of the grids that ``design``'s report selects: name -> its params."""
    grids = grid.selected_grids(grid.reports(grid_file)[design.report])
    return dict(cell for g in grids for cell in grid.cells(g, grid_file, grid.committed_params()))
