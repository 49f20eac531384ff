import pytest
from params_helper import params_with, raw_params

from pipeline.params import ParamsError, load_params, parse_params


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
    from pipeline.data import languages

    assert params_with(lang="som").language.corpus is None
    with pytest.raises(ParamsError, match=r"bad value for 'lang'.*registry.*'swh'.*got 'xyz'"):
        parse_params(raw_params(lang="xyz"))
    assert not params_with(lang="hau").has_bitext and params_with(lang="nya").has_bitext
    assert set(languages.codes()) >= {"swh", "tgl", "nya", "fra", "deu", "spa", "som", "yor", "hau", "amh", "zul"}


@pytest.mark.parametrize(
    "raw, key",
    [
        ({"sede": 1}, "sede"),  # misspelled top-level key (what `dvc exp run -S sede=1` would add)
        ({"prepare": {"query_fom": "desc"}}, "prepare.query_fom"),
        ({"encoder": {"layers": "six"}}, "encoder.layers"),
        ({"aug": "foo"}, "aug"),
        ({"lang": "xyz"}, "lang"),
        ({"prepare": {"query_form": "narrative"}}, "prepare.query_form"),
        ({"encoder": {"layers": 0}}, "encoder.layers"),
        ({"evaluate": {"depth": -5}}, "evaluate.depth"),
        ({"augment": {"filters": ["loops"]}}, "augment.filters"),
        ({"augment": {"pool": {"synthetic": 0}}}, "augment.pool.synthetic"),
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
