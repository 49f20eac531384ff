"""The whole DAG through `dvc repro` on the tiny profile, in a throw-away copy of the project."""

import json
import subprocess

import yaml

from pipeline.params import load_params


def _dvc(proj, env, *args):
    return subprocess.run(["dvc", *args], cwd=proj, env=env, check=True, capture_output=True, text=True)


def _keys(d, prefix=""):
    return {prefix + k for k, v in d.items()} | {
        x for k, v in d.items() if isinstance(v, dict) for x in _keys(v, prefix + k + ".")
    }


def test_tiny_profile_has_the_same_keys_as_params():
    default = yaml.safe_load(open("params.yaml"))
    tiny = yaml.safe_load(open("profiles/tiny.yaml"))
    assert _keys(tiny) == _keys(default)
    load_params("profiles/tiny.yaml")


def test_dvc_repro_tiny(tiny_project):
    proj, env = tiny_project
    _dvc(proj, env, "repro")
    for split in ("in_domain", "shifted_genre", "shifted_register"):
        res = json.loads((proj / "metrics/eval" / f"{split}.json").read_text())
        assert res["available"] and 0.0 <= res["zeroshot"]["AP"] <= 1.0
        assert (proj / "runs" / split / "zeroshot.run").exists()
    report = json.loads((proj / "metrics/report.json").read_text())
    assert set(report["systems"]["zeroshot"]["robustness"]) == {"shifted_genre", "shifted_register"}
    shown = _dvc(proj, env, "metrics", "show", "--json").stdout
    assert "zeroshot" in shown and "prepare.json" in shown
    # Nothing changed → nothing to do.
    assert "changed" not in _dvc(proj, env, "status").stdout
    # A UDHR-only language: the Bible splits are skipped by design, with the reason recorded.
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["lang"] = "som"
    (proj / "params.yaml").write_text(yaml.safe_dump(params))
    _dvc(proj, env, "repro")
    skipped = json.loads((proj / "metrics/eval/in_domain.json").read_text())
    assert skipped["available"] is False and "UDHR-only" in skipped["reason"]
    assert json.loads((proj / "metrics/eval/shifted_register.json").read_text())["available"]


def test_bad_param_fails_the_stage_with_one_clear_line(tiny_project):
    proj, env = tiny_project
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["prepare"]["queries_in_domian"] = 5  # what `dvc exp run -S` with a typo would add
    (proj / "params.yaml").write_text(yaml.safe_dump(params))
    res = subprocess.run(["python", "-m", "pipeline.stages.prepare"], cwd=proj, env=env, capture_output=True, text=True)
    assert res.returncode == 2
    assert "unknown key 'prepare.queries_in_domian'" in res.stderr and "Traceback" not in res.stderr
    assert not (proj / "data/prepared").exists()
