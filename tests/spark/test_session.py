"""The bootstrap gives a working local session whose Python workers run this interpreter."""

from __future__ import annotations

import sys

import pytest

import blaze
from blaze_errors import ConfigError

pytestmark = pytest.mark.spark


def test_session_runs_jobs_with_this_python(spark):
    executables = (
        spark.sparkContext.parallelize(range(4), 2)
        .map(lambda _: sys.executable)
        .distinct()
        .collect()
    )
    assert executables == [sys.executable]
    assert spark.conf.get("spark.sql.execution.arrow.pyspark.enabled") == "true"


def test_unknown_blaze_key_fails_before_the_jvm_starts():
    with pytest.raises(ConfigError, match=r"unknown setting spark\.blaze\.nope"):
        blaze.session({"spark.blaze.nope": "1"})
