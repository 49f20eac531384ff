"""Profiles: a file of the settings that differ from ``params.yaml``, applied over it.

A profile (``profiles/tiny.yaml``) holds only what it changes, so it keeps working when ``params.yaml`` gains
a setting. Applying it rewrites ``params.yaml`` with the profile's values in place, its comments and layout
kept, and checks the result with the schema (:mod:`pipeline.config.params`)::

    python -m pipeline.profile profiles/tiny.yaml     # then `dvc repro`; `git checkout params.yaml` undoes it

Every key of a profile must exist in ``params.yaml`` (a misspelled key is an error naming it); a group of the
schema (``prepare``, ``augment.pool``) is merged key by key, any other value (a list, ``prepare.external``) is
replaced as a whole. Nothing is written unless the result is valid.
"""

from __future__ import annotations

import argparse
import copy
import io
from pathlib import Path

import yaml
from pydantic import BaseModel
from ruamel.yaml import YAML  # DVC's YAML library (a dependency of dvc)
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.representer import RoundTripRepresenter

from pipeline.config.params import PARAMS_FILE, Params, ParamsError, parse_params
from pipeline.io import write_text


def _group(model: type[BaseModel] | None, key: str) -> type[BaseModel] | None:
    """The schema model of ``key`` under ``model`` when it is a group of settings, else None (a value)."""
    field = model.model_fields.get(key) if model is not None else None
    kind = field.annotation if field is not None else None
    return kind if isinstance(kind, type) and issubclass(kind, BaseModel) else None


def _walk(base: dict, profile: dict, source: str, model: type[BaseModel] | None = Params, prefix: str = ""):
    """(base mapping, key, profile value, dotted key, is a group) for every key of ``profile``, depth first;
    a key that ``base`` lacks is a :class:`ParamsError` naming it."""
    for key, value in profile.items():
        dotted = f"{prefix}{key}"
        if key not in base:
            raise ParamsError(
                f"{source}: unknown key '{dotted}': not in params.yaml (a profile only changes settings that exist)"
            )
        group = _group(model, key)
        if group is not None and isinstance(value, dict) and isinstance(base[key], dict):
            yield base, key, value, dotted, True
            yield from _walk(base[key], value, source, group, dotted + ".")
        else:
            yield base, key, value, dotted, False


def overlay(base: dict, profile: dict, source: str = "profile") -> dict:
    """``base`` (params.yaml's mapping) with ``profile``'s values in place: a new mapping, not validated."""
    merged = copy.deepcopy(base)
    for node, key, value, _, is_group in _walk(merged, profile, source):
        if not is_group:
            node[key] = copy.deepcopy(value)
    return merged


def redundant(base: dict, profile: dict, source: str = "profile") -> list[str]:
    """Dotted keys of ``profile`` whose value equals ``base``'s (a profile should hold differences only)."""
    walk = _walk(base, profile, source)
    return [dotted for node, key, value, dotted, is_group in walk if not is_group and node[key] == value]


def _yaml_mapping(text: str, source: str) -> dict:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ParamsError(f"{source} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParamsError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _round_trip() -> YAML:
    """ruamel.yaml in round-trip mode: comments and layout kept, ``null`` written as ``null`` (not as an empty
    value)."""

    class Representer(RoundTripRepresenter):  # a subclass: DVC's own YAML instances stay as they are
        pass

    Representer.add_representer(type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null"))
    rt = YAML()
    rt.Representer = Representer
    rt.width = 4096  # never fold a long value
    rt.preserve_quotes = True
    return rt


def _plain(value):
    """A profile value without the profile's comments; lists and mappings in flow style (one line, where the
    comment of params.yaml's line stays)."""
    if isinstance(value, dict):
        out = CommentedMap((k, _plain(v)) for k, v in value.items())
    elif isinstance(value, list):
        out = CommentedSeq(_plain(v) for v in value)
    else:
        return value
    out.fa.set_flow_style()
    return out


def apply_profile(profile: Path | str, params: Path | str = PARAMS_FILE, out: Path | str | None = None) -> Params:
    """Write ``out`` (default: ``params``) = ``params`` with ``profile``'s values, comments kept; atomically,
    and only once the result is valid. Returns the validated params."""
    profile, params = Path(profile), Path(params)
    out = params if out is None else Path(out)
    for path in (profile, params):
        if not path.exists():
            raise ParamsError(f"params file not found: {path}")
    base_text, profile_text = params.read_text(encoding="utf-8"), profile.read_text(encoding="utf-8")
    # The plain merge (what the stages will read) first: it names a bad key before anything is rewritten.
    merged = overlay(_yaml_mapping(base_text, str(params)), _yaml_mapping(profile_text, str(profile)), str(profile))
    result = parse_params(merged, f"{params} with {profile}")

    rt = _round_trip()
    try:
        doc, changes = rt.load(base_text), rt.load(profile_text) or {}
    except YAMLError as exc:  # what PyYAML lets through, e.g. a key given twice
        raise ParamsError(f"{profile} or {params}: {exc}") from None
    for node, key, value, _, is_group in _walk(doc, changes, str(profile)):
        if not is_group:
            node[key] = _plain(value)
    buf = io.StringIO()
    rt.dump(doc, buf)
    text = buf.getvalue()
    if yaml.safe_load(text) != merged:  # the rewritten file must read as the plain merge does
        raise ParamsError(f"{profile}: applying it over {params} with comments kept went wrong; nothing written")
    write_text(out, text)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", type=Path, help="the profile, e.g. profiles/tiny.yaml")
    parser.add_argument("--params", type=Path, default=PARAMS_FILE, help="the params file it applies over")
    parser.add_argument("--out", type=Path, default=None, help="where to write the result (default: --params)")
    args = parser.parse_args(argv)
    apply_profile(args.profile, args.params, args.out)
    print(f"wrote {args.out or args.params}: {args.params} with the settings of {args.profile}")


if __name__ == "__main__":
    from pipeline.cli import run_command

    run_command(main)
