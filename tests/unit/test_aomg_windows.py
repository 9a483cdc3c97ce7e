"""AOMG windows: durations, window specs and which windows hold a sub-window (no JVM)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streaming.aomg.windows import WindowSpec, parse_duration_us


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("250 ms", 250_000),
        ("1 second", 1_000_000),
        ("10 seconds", 10_000_000),
        ("2 minutes", 120_000_000),
        ("1h", 3_600_000_000),
        (1.5, 1_500_000),
        (timedelta(milliseconds=5), 5_000),
    ],
)
def test_durations(text, micros):
    assert parse_duration_us(text) == micros


@pytest.mark.parametrize("bad", ["ten seconds", "5 fortnights", "-1 s", 0, "0.5 us"])
def test_bad_durations_are_named(bad):
    with pytest.raises(ValueError, match="window"):
        parse_duration_us(bad, "window")


def test_duration_type_is_checked():
    with pytest.raises(TypeError, match="sub_window must be"):
        parse_duration_us([1], "sub_window")


@pytest.mark.parametrize(
    ("window", "sub", "slide", "message"),
    [
        ("1 s", "300 ms", None, "does not divide the window"),
        ("1 s", "250 ms", "600 ms", "does not divide the slide"),
        ("1 s", "250 ms", "2 s", "longer than the window"),
        ("1 s", "1500 us", None, "whole number of milliseconds"),
    ],
)
def test_bad_window_specs_are_rejected(window, sub, slide, message):
    with pytest.raises(ValueError, match=message):
        WindowSpec.of(window, sub, slide)


@settings(max_examples=200, deadline=None)
@given(
    subs_per_slide=st.integers(1, 4),
    slides_per_window=st.integers(1, 4),
    t=st.integers(-(10**12), 10**12),
)
def test_sub_window_belongs_to_exactly_the_windows_covering_it(
    subs_per_slide, slides_per_window, t
):
    sub_us = 1_000 * 7
    spec = WindowSpec(sub_us * subs_per_slide * slides_per_window, sub_us, sub_us * subs_per_slide)
    start = int(spec.sub_window_start(np.array([t]))[0])
    assert start <= t < start + sub_us and start % sub_us == 0
    ends = spec.window_ends(start)
    assert len(ends) == slides_per_window
    for end in ends:
        assert end % spec.slide_us == 0 and spec.contains(end, start)
        assert end - spec.window_us <= start and start + sub_us <= end
    assert not spec.contains(ends[0] - spec.slide_us, start)
    assert not spec.contains(ends[-1] + spec.slide_us, start)
