"""How the Jarvis benchmark turns runs into settle times and target verdicts (no processes)."""

from __future__ import annotations

import pytest

from streaming.jarvis.report import phase_verdicts, settle_time

SPLITS = ("split0", "split1", "split2")
KINDS = ["constrained", "constrained", "spare"]


def _line(agent: int, t: float, settled) -> dict:
    return {"agent": agent, "t": 1000.0 + t, "settled": settled}


def test_settle_time_waits_for_the_slowest_agent_after_its_restart():
    # phase starts at 10 s; both agents still report the old phase's settled search first
    stats = [_line(0, 9.6, True), _line(0, 10.2, True), _line(0, 10.7, False)]
    stats += [_line(0, 11.2, False), _line(0, 11.7, True), _line(0, 12.2, True)]
    stats += [_line(1, 10.4, False), _line(1, 13.4, False), _line(1, 13.9, True)]
    assert settle_time(stats, 1000.0, 10.0, 20.0) == pytest.approx(3.9)


def test_settle_time_is_none_when_an_agent_never_settles_or_there_is_no_search():
    stats = [_line(0, 10.5, False), _line(0, 11.0, False), _line(1, 10.5, True)]
    assert settle_time(stats, 1000.0, 10.0, 20.0) is None
    assert settle_time([_line(0, 10.5, None)], 1000.0, 10.0, 20.0) is None


def _summary(agents, strategy, rates, converge=(None, 2.0, 3.0), settle=(None, 2.5, 4.0)):
    phases = [
        {"cpu_budget": b, "throughput_rps": r, "converge_s": c, "settle_s": s}
        for b, r, c, s in zip((0.02, 0.012, 0.03), rates, converge, settle)
    ]
    return {"agents": agents, "strategy": strategy, "phases": phases}


def test_verdicts_compare_with_the_best_measured_split_of_each_phase():
    merged = [
        _summary(2, "jarvis", (140.0, 120.0, 500.0)),
        _summary(2, "split0", (100.0, 100.0, 100.0)),
        _summary(2, "split1", (110.0, 60.0, 150.0)),
        _summary(2, "split2", (90.0, 40.0, 400.0)),
        _summary(2, "best_op", (105.0, 100.0, 420.0)),
    ]
    rows = phase_verdicts(merged, KINDS, SPLITS)
    assert [r["best_op"] for r in rows] == ["split1", "split0", "best_op"]
    assert [r["vs_best_op"] for r in rows] == pytest.approx([140 / 110, 1.2, 500 / 420])
    assert [r["vs_all_spark"] for r in rows] == pytest.approx([1.4, 1.2, 5.0])
    assert [r["target_vs_op"] for r in rows] == [True, True, True]
    assert [r["target_vs_op_constrained"] for r in rows] == [False, False, None]  # 1.27, 1.2
    assert [r["target_vs_spark"] for r in rows] == [None, None, True]
    assert [r["target_converge"] for r in rows] == [None, True, True]


def test_verdicts_miss_when_slower_than_a_split_or_not_converged():
    merged = [
        _summary(4, "jarvis", (100.0, 100.0, 150.0), converge=(None, 6.0, None)),
        _summary(4, "split0", (100.0, 100.0, 100.0)),
        _summary(4, "split2", (120.0, 90.0, 140.0)),
    ]
    rows = phase_verdicts(merged, KINDS, SPLITS)
    assert [r["target_vs_op"] for r in rows] == [False, True, True]
    assert [r["target_vs_spark"] for r in rows] == [None, None, False]
    assert [r["target_converge"] for r in rows] == [None, False, False]
