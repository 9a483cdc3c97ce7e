"""The report's JSON (strict: no NaN/Infinity) and the stdlib -> log4j level mapping."""

from __future__ import annotations

import json
import logging
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blaze.report_file import finite, publish_report, report_json, write_report
from blaze.sparklog import log4j_level


def test_non_finite_numbers_become_null_at_any_depth():
    report = {"a": math.inf, "b": [1.0, math.nan, {"c": -math.inf}], "d": 2}
    text = report_json(report)
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads(text) == {"a": None, "b": [1.0, None, {"c": None}], "d": 2}


@given(st.recursive(st.floats() | st.integers() | st.text(), lambda c: st.lists(c, max_size=3)))
def test_report_json_is_always_strict_json(value):
    json.loads(report_json({"x": value}))  # json.loads accepts NaN, so check the text too
    assert "NaN" not in report_json({"x": finite(value)}).replace('"NaN"', "")


def test_write_report_is_atomic_and_readable(tmp_path):
    path = write_report({"hits": 3, "ratio": math.nan}, tmp_path / "sub" / "r.json")
    assert json.loads(path.read_text()) == {"hits": 3, "ratio": None}
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]


def test_publish_report_logs_one_line_and_warns_on_unwritable_path(tmp_path, caplog):
    logger = logging.getLogger("blaze.test_publish")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with caplog.at_level(logging.INFO, logger=logger.name):
        publish_report(logger, {"hits": 1}, str(blocker / "r.json"))
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == 'blaze report: {"hits": 1}'
    assert "could not write the report" in messages[1]


@pytest.mark.parametrize(
    ("level", "name"),
    [
        (logging.CRITICAL, "error"),
        (logging.ERROR, "error"),
        (logging.WARNING, "warn"),
        (logging.INFO, "info"),
        (logging.DEBUG, "debug"),
        (5, "trace"),
    ],
)
def test_log4j_levels(level, name):
    assert log4j_level(level) == name
