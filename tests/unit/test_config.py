"""The ``spark.blaze.*`` configuration: defaults, overrides, and one clear error per mistake."""

from __future__ import annotations

import re

import pytest

from blaze.config import POLICIES, BlazeConfig, parse_bytes, read_conf_file
from blaze_errors import ConfigError, InputError


def test_defaults_come_from_conf_file():
    cfg = BlazeConfig.from_conf()
    assert cfg.policy == "blaze"
    assert cfg.enabled is False
    assert cfg.memory_budget is None
    assert cfg.disk_read_ms_per_mib is None  # calibrate


@pytest.mark.parametrize("policy", POLICIES)
def test_every_policy_is_accepted(policy):
    assert BlazeConfig.from_conf({"spark.blaze.policy": policy.upper()}).policy == policy


def test_overrides_win_and_non_blaze_keys_are_ignored():
    cfg = BlazeConfig.from_conf(
        {"spark.blaze.memoryBudget": "64m", "spark.blaze.autoCache": "false", "spark.master": "x"}
    )
    assert cfg.memory_budget == 64 << 20
    assert cfg.auto_cache is False


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("spark.blaze.polcy", "lru", "unknown setting spark.blaze.polcy"),
        ("spark.blaze.policy", "lru", "spark.blaze.policy='lru' is not one of"),
        ("spark.blaze.memoryBudget", "lots", "is not a size"),
        ("spark.blaze.memoryBudget", "0", "must be positive"),
        ("spark.blaze.autoCache", "maybe", "must be true or false"),
        ("spark.blaze.disk.readMsPerMiB", "-1", "must not be negative"),
        ("spark.blaze.profile.mode", "record", "needs spark.blaze.profile.path"),
    ],
)
def test_bad_settings_raise_one_clear_error(key, value, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(".", r"\.")):
        BlazeConfig.from_conf({key: value})


@pytest.mark.parametrize(
    ("text", "expected"), [("1024", 1024), ("2k", 2048), ("1.5g", 3 << 29), ("8MiB", 8 << 20)]
)
def test_parse_bytes(text, expected):
    assert parse_bytes(text) == expected


def test_conf_file_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_conf_file(tmp_path / "missing.conf")
    bad = tmp_path / "bad.conf"
    bad.write_text("# comment\nnot.spark 1\n")
    with pytest.raises(ConfigError, match=r"bad\.conf:2"):
        read_conf_file(bad)


@pytest.mark.parametrize("value", ["maybe", "1", "yes", "on", "0", "no", ""])
def test_enabled_accepts_only_spark_booleans(value):
    """``enabled=maybe`` used to leave the manager silently off, and ``1``/``yes`` were true
    for every boolean but ``enabled`` (the hook compared with "true" only)."""
    with pytest.raises(ConfigError, match=r"spark\.blaze\.enabled="):
        BlazeConfig.from_conf({"spark.blaze.enabled": value})


@pytest.mark.parametrize("value", ["TRUE", " true ", "True"])
def test_enabled_true_in_any_case(value):
    assert BlazeConfig.from_conf({"spark.blaze.enabled": value}).enabled is True


@pytest.mark.parametrize("key", ["autoCache", "autoUnpersist"])
def test_every_boolean_parses_like_enabled(key):
    with pytest.raises(ConfigError, match=rf"spark\.blaze\.{key}='yes' is not allowed"):
        BlazeConfig.from_conf({f"spark.blaze.{key}": "yes"})


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity", "fast"])
@pytest.mark.parametrize("key", ["spark.blaze.disk.writeMsPerMiB", "spark.blaze.disk.readMsPerMiB"])
def test_disk_costs_must_be_finite_and_name_the_key(key, value):
    with pytest.raises(ConfigError, match=re.escape(f"{key}={value!r}") + ".*finite"):
        BlazeConfig.from_conf({key: value})


@pytest.mark.parametrize("key", ["policy", "memoryBudget", "logLevel", "profile.mode", "enabled"])
def test_empty_value_is_an_error_not_the_default(key):
    with pytest.raises(ConfigError, match=rf"spark\.blaze\.{key}='' is not allowed"):
        BlazeConfig.from_conf({f"spark.blaze.{key}": "  "})


def test_optional_paths_may_be_empty_and_report_path_is_read():
    assert BlazeConfig.from_conf({"spark.blaze.profile.path": ""}).profile_path is None
    assert BlazeConfig.from_conf({"spark.blaze.report.path": ""}).report_path is None
    cfg = BlazeConfig.from_conf({"spark.blaze.report.path": "/tmp/r.json"})
    assert cfg.report_path == "/tmp/r.json"


def test_unknown_key_is_an_error_even_with_the_flag_off():
    with pytest.raises(ConfigError, match=r"unknown setting spark\.blaze\.enable "):
        BlazeConfig.from_conf({"spark.blaze.enable": "true"})


def test_every_error_is_one_line_naming_key_and_value():
    for key, value in [
        ("spark.blaze.policy", "bogus"),
        ("spark.blaze.memoryBudget", "-5"),
        ("spark.blaze.enabled", "maybe"),
        ("spark.blaze.disk.writeMsPerMiB", "nan"),
    ]:
        with pytest.raises(ConfigError) as info:
            BlazeConfig.from_conf({key: value})
        message = str(info.value)
        assert "\n" not in message
        assert f"{key}={value!r}" in message
