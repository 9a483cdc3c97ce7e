"""Profiles (record/load, refusals), disk calibration and the ``blaze profile``/``disk`` CLI."""

from __future__ import annotations

import json
import time

import pytest

from blaze_cli import main as blaze_main
from blaze_errors import BlazeError
from costmodel import CostModel, DiskCost, PartitionMetrics, RddSpec
from costmodel.disk import calibrate_disk, disk_cost_from_config
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


# ---- disk calibration --------------------------------------------------------------------------


def test_calibration_is_measured_once_then_cached(tmp_path):
    cache = tmp_path / "cost.json"
    first = calibrate_disk(tmp_path, cache_path=cache, size_mib=2)
    assert first.source == "measured"
    assert first.write_ms_per_mib > 0 and first.read_ms_per_mib > 0
    assert not list(tmp_path.glob("blaze-disk-calibration-*"))  # the probe file is gone
    second = calibrate_disk(tmp_path, cache_path=cache, size_mib=2)
    assert second.source == "cached"
    assert (second.write_ms_per_mib, second.read_ms_per_mib) == (
        first.write_ms_per_mib,
        first.read_ms_per_mib,
    )
    entry = json.loads(cache.read_text())[str(tmp_path.resolve())]
    assert abs(entry["measured_at"] - time.time()) < 600


def test_stale_cache_is_measured_again(tmp_path):
    cache = tmp_path / "cost.json"
    cache.write_text(
        json.dumps(
            {
                str(tmp_path.resolve()): {
                    "write_ms_per_mib": 99.0,
                    "read_ms_per_mib": 99.0,
                    "measured_at": time.time() - 3600,
                }
            }
        )
    )
    assert calibrate_disk(tmp_path, cache_path=cache, max_age_s=7200).write_ms_per_mib == 99.0
    fresh = calibrate_disk(tmp_path, cache_path=cache, max_age_s=60, size_mib=1)
    assert fresh.source == "measured"


def test_conf_override_skips_or_completes_the_measurement(tmp_path):
    both = disk_cost_from_config(3.0, 4.0, tmp_path / "never-used")
    assert (both.write_ms_per_mib, both.read_ms_per_mib, both.source) == (3.0, 4.0, "conf")
    one = disk_cost_from_config(3.0, None, tmp_path, cache_path=tmp_path / "c.json", size_mib=1)
    assert one.write_ms_per_mib == 3.0 and one.read_ms_per_mib > 0
    assert one.source == "conf+measured"


def test_missing_local_dir_is_named(tmp_path):
    with pytest.raises(BlazeError, match="does not exist"):
        calibrate_disk(tmp_path / "missing", cache_path=tmp_path / "c.json")


def test_negative_disk_cost_is_rejected():
    with pytest.raises(ValueError, match="write_ms_per_mib"):
        DiskCost(-1.0, 1.0)
