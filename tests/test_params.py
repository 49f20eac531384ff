import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from params_helper import params_with, raw_params

from pipeline.config.params import ParamsError, load_params, parse_params
from pipeline.profile import apply_profile, overlay, redundant

TINY = Path("profiles/tiny.yaml")


def test_repository_params_are_valid():
    params = load_params("params.yaml")
    assert params.lang == "swh" and params.aug == "none"


def test_params_yaml_is_the_only_source_of_defaults():
    """Every key is required: the schema has no default that could disagree with params.yaml."""
    params = params_with(seed=1)
    assert params.seed == 1 and params.augment.size == load_params().augment.size
    raw = raw_params()
    del raw["augment"]["size"]
    with pytest.raises(ParamsError, match=r"missing key 'augment\.size'"):
        parse_params(raw)
    raw = raw_params()
    del raw["evaluate"]
    with pytest.raises(ParamsError, match=r"missing key 'evaluate'") as err:
        parse_params(raw)
    assert str(err.value).count("\n  ") == 1  # one line: the missing group, not each of its keys


def test_lang_is_a_registry_code():
    from pipeline.config import languages

    assert params_with(lang="som").language.corpus is None
    with pytest.raises(ParamsError, match=r"bad value for 'lang'.*registry.*'swh'.*got 'xyz'"):
        parse_params(raw_params(lang="xyz"))
    assert not params_with(lang="hau").has_bitext and params_with(lang="nya").has_bitext
    assert set(languages.codes()) >= {"swh", "tgl", "nya", "fra", "deu", "spa", "som", "yor", "hau", "amh", "zul"}


@pytest.mark.parametrize(
    "raw, key",
    [
        ({"sede": 1}, "sede"),  # misspelled top-level key (what `dvc exp run -S sede=1` would add)
        ({"prepare": {"colection": "topical"}}, "prepare.colection"),
        ({"encoder": {"layers": "six"}}, "encoder.layers"),
        ({"aug": "foo"}, "aug"),
        ({"lang": "xyz"}, "lang"),
        ({"prepare": {"collection": "bitext_mining"}}, "prepare.collection"),
        ({"encoder": {"layers": 0}}, "encoder.layers"),
        ({"evaluate": {"depth": -5}}, "evaluate.depth"),
        ({"augment": {"filters": ["loops"]}}, "augment.filters"),
        ({"augment": {"pool": {"synthetic": 0}}}, "augment.pool.synthetic"),
        ({"mt": {"engine": "marian"}}, "mt.engine"),
        ({"mt": {"compute_type": "fp8"}}, "mt.compute_type"),
        ({"synth": {"backend": "llama"}}, "synth.backend"),
        ({"aug": "forwards"}, "aug"),
        ({"augment": {"filters": ["en_language"]}}, "augment.filters"),  # the filter's earlier name
        ({"distill": {"steps": 200}}, "distill.steps"),  # and distill.epochs: one stopping rule, not both
        ({"distill": {"epochs": None}}, "distill.epochs"),  # nor none
        ({"distill": {"epochs": 0}}, "distill.epochs"),
        ({"augment": {"round_trip_keep": 0}}, "augment.round_trip_keep"),  # the remedy keeps a share in (0, 1]
        ({"augment": {"round_trip_keep": 1.5}}, "augment.round_trip_keep"),
        ({"mt": {"threads": 0}}, "mt.threads"),
        ({"mt": {"epochs": 0}}, "mt.epochs"),  # the generator-quality axis
    ],
)
def test_bad_params_name_the_key(raw, key):
    dotted = {}

    def flatten(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict) and v:
                flatten(v, f"{prefix}{k}.")
            else:
                dotted[prefix + k] = v

    flatten(raw)
    with pytest.raises(ParamsError, match=key.replace(".", r"\.")):
        parse_params(raw_params(dotted))


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("seed: [1\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ParamsError, match="mapping"):
        load_params(bad)


# Profiles (pipeline/profile.py): profiles/tiny.yaml holds what differs from params.yaml, applied over it.


def _yaml(path) -> dict:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def _leaves(d: dict, prefix: str = "") -> list[str]:
    return [x for k, v in d.items() for x in (_leaves(v, f"{prefix}{k}.") if isinstance(v, dict) else [prefix + k])]


def test_tiny_profile_changes_existing_settings_into_valid_params():
    """Every key of the profile is a setting of params.yaml (overlay names one that is not), and params.yaml
    with the profile applied is valid."""
    params = parse_params(overlay(raw_params(), _yaml(TINY), str(TINY)), "params.yaml with the tiny profile")
    assert params.synth.model == "tiny-random" and params.prepare.queries_in_domain == 20
    assert params.augment.pool.synthetic == 40 and params.augment.max_len_ratio == 100.0
    assert params.seed == load_params().seed  # not in the profile: params.yaml's


def test_tiny_profile_holds_only_differences():
    """A value equal to params.yaml's belongs in params.yaml alone (in the profile it would pin the setting when
    params.yaml changes it)."""
    assert redundant(raw_params(), _yaml(TINY), str(TINY)) == []
    base = raw_params()
    same = {"seed": base["seed"], "prepare": {"title_words": base["prepare"]["title_words"], "queries_in_domain": 1}}
    same["augment"] = {"pool": dict(base["augment"]["pool"]), "filters": list(base["augment"]["filters"])}
    assert redundant(base, same) == [
        "seed",
        "prepare.title_words",
        "augment.pool.backtranslation",
        "augment.pool.synthetic",
        "augment.filters",
    ]


@pytest.mark.parametrize("profile", sorted(Path("profiles").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_profile_holds_only_valid_differences(profile):
    """Every profile (``tiny``, ``quick``, …) names only settings of params.yaml, with values that differ from
    params.yaml's, and gives valid params."""
    assert redundant(raw_params(), _yaml(profile), str(profile)) == []
    parse_params(overlay(raw_params(), _yaml(profile), str(profile)), f"params.yaml with {profile}")


def test_overlay_merges_groups_and_replaces_values():
    base = raw_params({"synth.added_later": 7})  # a key params.yaml gains after the profile was written
    merged = overlay(base, {"augment": {"pool": {"synthetic": 5}, "filters": ["copy"]}, "prepare": {"external": {}}})
    assert merged["synth"]["added_later"] == 7 and merged["augment"]["pool"]["backtranslation"] > 5
    assert merged["augment"]["pool"]["synthetic"] == 5 and merged["augment"]["filters"] == ["copy"]
    base["prepare"]["external"] = {"in_domain": "irds:a"}
    merged = overlay(base, {"prepare": {"external": {"shifted_genre": "irds:b"}}})  # a value: replaced whole
    assert merged["prepare"]["external"] == {"shifted_genre": "irds:b"}
    assert base["prepare"]["external"] == {"in_domain": "irds:a"}  # the base is not changed


def test_applying_the_tiny_profile_keeps_params_yaml_s_comments_and_layout(tmp_path):
    params = tmp_path / "params.yaml"
    shutil.copy("params.yaml", params)
    before = params.read_text(encoding="utf-8").splitlines()
    result = apply_profile(TINY, params)
    after = params.read_text(encoding="utf-8").splitlines()
    assert _yaml(params) == overlay(raw_params(), _yaml(TINY)) and load_params(params) == result
    assert len(after) == len(before)
    changed = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert len(changed) == len(_leaves(_yaml(TINY)))  # one line per setting of the profile, no other
    for b, a in changed:  # the same key and comment, another value
        assert b.split(":")[0] == a.split(":")[0] and b.partition(" #")[2] == a.partition(" #")[2], (b, a)
    again = tmp_path / "again.yaml"
    apply_profile(TINY, params, again)  # applying it twice changes nothing more
    assert again.read_bytes() == params.read_bytes()
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    apply_profile(empty, "params.yaml", tmp_path / "same.yaml")
    assert (tmp_path / "same.yaml").read_bytes() == Path("params.yaml").read_bytes()


def test_profile_keeps_what_params_yaml_changes_and_replaces_lists_in_place(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(Path("params.yaml").read_text(encoding="utf-8").replace("seed: 13 ", "seed: 99 ", 1))
    profile = tmp_path / "profile.yaml"
    profile.write_text("augment:\n  filters: [copy]\nprepare:\n  external:\n    in_domain: irds:x/y\n")
    result = apply_profile(profile, params)
    assert result.seed == 99 and result.augment.filters == ["copy"] and result.prepare.external["in_domain"]
    lines = params.read_text(encoding="utf-8").splitlines()
    assert any(line.startswith("  filters: [copy] ") and "# on every origin" in line for line in lines)
    assert any(line.startswith("  external: {in_domain: irds:x/y} #") for line in lines)


@pytest.mark.parametrize(
    "profile, key",
    [
        ("prepare:\n  queries_in_domian: 5\n", "unknown key 'prepare.queries_in_domian'"),
        ("sede: 1\n", "unknown key 'sede'"),
        ("augment:\n  pool:\n    synthetc: 1\n", "unknown key 'augment.pool.synthetc'"),
        ("evaluate:\n  depth: -5\n", "bad value for 'evaluate.depth'"),
        ("prepare: 5\n", "'prepare'"),
        ("- 1\n", "mapping"),
    ],
)
def test_a_bad_profile_names_the_key_and_writes_nothing(tmp_path, profile, key):
    params, bad = tmp_path / "params.yaml", tmp_path / "bad.yaml"
    shutil.copy("params.yaml", params)
    bad.write_text(profile)
    with pytest.raises(ParamsError, match=key.replace(".", r"\.")):
        apply_profile(bad, params)
    assert params.read_bytes() == Path("params.yaml").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "params.yaml"]  # no temporary file left


def test_profile_command_line(tmp_path):
    params, bad = tmp_path / "params.yaml", tmp_path / "bad.yaml"
    shutil.copy("params.yaml", params)
    cmd = [sys.executable, "-m", "pipeline.profile", str(TINY), "--params", str(params)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert load_params(params).synth.model == "tiny-random"
    bad.write_text("teacher:\n  stesp: 1\n")
    res = subprocess.run([*cmd[:3], str(bad), "--params", str(params)], capture_output=True, text=True)
    assert res.returncode == 1 and "unknown key 'teacher.stesp'" in res.stderr and "Traceback" not in res.stderr
