"""How many control intervals one spool entry covers (pure logic)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from streaming.jarvis.agent import _ENTRY_SHARE, _MAX_ENTRY_AGE_S, _entry_span


def test_an_unknown_entry_cost_ships_every_interval():
    assert _entry_span(None, 0.01, 0.2) == 1


def test_a_tiny_budget_spreads_one_entry_over_intervals_and_an_ample_one_does_not():
    # 0.01 core x 0.2 s = 2 ms per interval; a 1.5 ms entry needs 3 intervals (<= 25 %)
    assert _entry_span(1.5e-3, 0.01, 0.2) == 3
    assert _entry_span(1.5e-3, 0.5, 0.5) == 1


def test_an_entry_never_covers_more_than_a_second():
    assert _entry_span(1.0, 0.001, 0.2) == 5
    assert _entry_span(1.0, 0.001, 0.5) == 2


@given(
    entry=st.floats(1e-6, 1.0),
    budget=st.floats(1e-4, 2.0),
    interval=st.sampled_from([0.1, 0.2, 0.5, 1.0]),
)
def test_the_fixed_cost_share_is_bounded_unless_the_age_cap_binds(entry, budget, interval):
    k = _entry_span(entry, budget, interval)
    cap = int(_MAX_ENTRY_AGE_S / interval)
    assert 1 <= k <= max(1, cap)
    if k < cap:
        assert entry <= _ENTRY_SHARE * k * budget * interval * (1 + 1e-9)
    if k > 1:  # one interval fewer would not do
        assert entry > _ENTRY_SHARE * (k - 1) * budget * interval or k == cap
    assert k == max(1, min(cap, math.ceil(entry / (_ENTRY_SHARE * budget * interval))))
