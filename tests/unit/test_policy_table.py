"""Every reader of a policy name (config, manager, runner, cost model) agrees with the table."""

from __future__ import annotations

import pytest
from pyspark import StorageLevel

from blaze.config import BlazeConfig
from blaze.policies import get_manager_policy
from blaze_errors import ConfigError
from costmodel.policies import POLICY_NAMES, get_policy
from costmodel.policy_table import (
    BENCH_POLICIES,
    MANAGER_POLICIES,
    POLICY_TABLE,
    RULE_NAMES,
    policy_info,
)
from jobs.caching import MANAGER_POLICIES as BENCH_WITH_MANAGER
from jobs.caching import PLAIN_POLICIES, POLICIES, forced_level


def test_names_are_unique_and_every_reader_is_covered():
    names = [p.name for p in POLICY_TABLE]
    assert len(names) == len(set(names))
    assert {"none", "spark", "mem_only", "mem_disk", "lrc", "mrd", "blaze"} <= set(names)
    assert {"blaze_auto", "unlimited"} <= set(names)
    assert all(p.manager or p.bench or p.rule for p in POLICY_TABLE)
    assert all(p.description for p in POLICY_TABLE)


def test_runner_only_names_are_not_config_values():
    runner_only = {p.name for p in POLICY_TABLE if p.runner_only}
    assert runner_only == {"unlimited"}
    with pytest.raises(ConfigError, match=r"spark\.blaze\.policy='unlimited' is not one of"):
        BlazeConfig.from_conf({"spark.blaze.policy": "unlimited"})


@pytest.mark.parametrize("name", MANAGER_POLICIES)
def test_config_accepts_every_manager_name(name):
    assert BlazeConfig.from_conf({"spark.blaze.policy": name}).policy == name


@pytest.mark.parametrize("name", MANAGER_POLICIES)
def test_manager_runs_every_manager_name(name):
    assert get_manager_policy(name).name == name


@pytest.mark.parametrize("name", RULE_NAMES)
def test_cost_model_has_every_rule(name):
    assert get_policy(name).name == name


def test_cost_model_names_come_from_the_table():
    assert tuple(POLICY_NAMES) == RULE_NAMES
    with pytest.raises(ValueError, match="known: " + ", ".join(RULE_NAMES)):
        get_policy("fastest")


def test_runner_names_come_from_the_table():
    # the runner adds `spark` (the program's calls as written on stock Spark) to the table's
    assert set(POLICIES) == set(BENCH_POLICIES) | {"spark"}
    assert POLICIES[:2] == ("none", "spark")
    assert set(PLAIN_POLICIES) | set(BENCH_WITH_MANAGER) == set(POLICIES)
    assert not set(PLAIN_POLICIES) & set(BENCH_WITH_MANAGER)


@pytest.mark.parametrize(
    ("name", "level"),
    [
        ("none", None),
        ("mem_only", StorageLevel.MEMORY_ONLY),
        ("unlimited", StorageLevel.MEMORY_ONLY),
        ("mem_disk", StorageLevel.MEMORY_AND_DISK),
        # the calls as written: stock Spark, or the manager attached by its flag takes them
        ("spark", None),
        ("lrc", None),
        ("mrd", None),
        ("blaze", None),
        ("blaze_auto", None),  # the program's cache calls are ignored
    ],
)
def test_runner_persists_at_the_tables_level(name, level):
    assert forced_level(name) == level


def test_unknown_name_is_one_line_listing_the_known_ones():
    with pytest.raises(ConfigError) as info:
        policy_info("fastest", BENCH_POLICIES)
    assert str(info.value) == (
        f"unknown cache policy 'fastest' (known: {', '.join(BENCH_POLICIES)})"
    )
    assert policy_info(" Blaze_Auto ").ignores_cache_calls
