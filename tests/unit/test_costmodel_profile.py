"""Profiles (record/load, refusals) and the ``blaze profile`` CLI."""

from __future__ import annotations

import json

import pytest

from blaze_cli import main as blaze_main
from blaze_errors import BlazeError
from costmodel import CostModel, DiskCost, PartitionMetrics, RddSpec
from costmodel.predict import Predictors
from costmodel.profile import ProfileError, blaze_version, load, record


def small_model() -> CostModel:
    rdds = [
        RddSpec(0, (), 2, frozenset({0}), job_id=0, call_site="read", name="HadoopRDD"),
        RddSpec(1, (0,), 2, frozenset({0, 1}), job_id=0, call_site="parse", cached=True),
        RddSpec(2, (1,), 2, frozenset({1}), job_id=1, call_site="agg", shuffled=True),
    ]
    metrics = {(1, 0): PartitionMetrics(2048.0, 12.5), (1, 1): PartitionMetrics(1024.0, None)}
    return CostModel(rdds, metrics, DiskCost(1.0, 1.0), completed_stages=[0])


def recorded(tmp_path, app="pagerank"):
    bank = Predictors()
    for iteration in range(3):
        bank.observe("parse", iteration, 0, 100.0 * (iteration + 1), 5.0)
    path = tmp_path / "profiles" / "pr.json"
    record(path, small_model(), app_name=app, predictors=bank, input_scale=0.01)
    return path, bank


def test_round_trip(tmp_path):
    path, bank = recorded(tmp_path)
    profile = load(path, app_name="pagerank")
    model = small_model()
    assert profile.rdds == list(model.rdds.values())
    assert profile.metrics == model.measurements()
    assert profile.completed_stages == {0}
    assert profile.input_scale == 0.01
    assert profile.predictors.predict("parse", 7) == bank.predict("parse", 7)
    again = profile.to_model(DiskCost(1.0, 1.0), completed_stages=[0])
    assert again.cost((1, 0)) == model.cost((1, 0))


def test_another_application_is_refused(tmp_path):
    path, _ = recorded(tmp_path)
    with pytest.raises(ProfileError, match="belongs to application 'pagerank', not 'kmeans'"):
        load(path, app_name="kmeans")


def test_another_blaze_version_is_refused(tmp_path):
    path, _ = recorded(tmp_path)
    data = json.loads(path.read_text())
    data["blaze_version"] = "0.0.1"
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileError, match=rf"Blaze '0.0.1', this is Blaze '{blaze_version()}'"):
        load(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not JSON"),
        ('{"format": "something-else"}', "is not a blaze-spark cost-model profile"),
        ('{"format": "blaze-spark/costmodel-profile", "format_version": 99}', "format version 99"),
    ],
)
def test_bad_files_give_one_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ProfileError, match=message):
        load(path)


def test_malformed_content_is_named(tmp_path):
    path, _ = recorded(tmp_path)
    data = json.loads(path.read_text())
    data["rdds"][0]["rdd_id"] = "zero"
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileError, match="is malformed: ValueError"):
        load(path)


def test_missing_profile(tmp_path):
    with pytest.raises(ProfileError, match="profile not found"):
        load(tmp_path / "nope.json")
    assert issubclass(ProfileError, BlazeError)


def test_cli_show(tmp_path, capsys):
    path, _ = recorded(tmp_path)
    assert blaze_main(["profile", "show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "pagerank" in out and "3 RDDs, 2 measured partitions" in out
    assert blaze_main(["profile", "show", str(path), "--app", "lr"]) == 2
    assert "not 'lr'" in capsys.readouterr().err
