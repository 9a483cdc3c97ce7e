"""The ``spark.blaze.*`` configuration: defaults, overrides, and one clear error per mistake."""

from __future__ import annotations

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
