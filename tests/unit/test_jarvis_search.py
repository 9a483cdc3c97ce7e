"""Jarvis load-factor search on synthetic sources (no processes, no JVM).

A synthetic source runs a plan for one half-second interval against a *true* profile: it
processes records until the first resource runs out and reports what a real agent reports
(the queue state from :func:`classify`, the measured :func:`sustained_rate`). The search
itself only sees its *model* profile, which may be wrong by up to 2x per cost.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streaming.jarvis.controller import (
    IntervalObservation,
    OperatorProfile,
    QueryProfile,
    QueueState,
    best_operator_level,
    classify,
    operator_level_factors,
    plan_cost,
    solve_load_factors,
)
from streaming.jarvis.search import LoadSearch, sustained_rate

INTERVAL_S = 0.5

# what the agents measured on this machine (ns per record; bytes per record of each stage)
MEASURED = QueryProfile(
    (
        OperatorProfile(4.5e-9, 0.995),  # filter
        OperatorProfile(4.1e-9, 1.0),  # window/project
        OperatorProfile(1.55e-8, 1.0),  # join topology
        OperatorProfile(4.6e-8, 0.0034),  # aggregate
    ),
    (28.02, 28.02, 24.02, 24.02, 48.02),
    5.7e-10,
    1.0e-8,
)


def _interval(true: QueryProfile, factors, cpu_budget: float, bandwidth: float):
    """One backlogged interval at ``factors``: (true sustained rate, queue state)."""
    cpu, nbytes = plan_cost(true, factors)
    by_cpu = cpu_budget * INTERVAL_S / cpu
    by_net = bandwidth * INTERVAL_S / nbytes if nbytes > 0 else float("inf")
    n = min(by_cpu, by_net)
    obs = IntervalObservation(
        n * cpu,
        cpu_budget * INTERVAL_S,
        n * nbytes,
        bandwidth * INTERVAL_S,
        "cpu" if by_cpu <= by_net else "network",
    )
    return sustained_rate(n, n * cpu, n * nbytes, cpu_budget, bandwidth), classify(obs)


def _true_rate(true, factors, cpu_budget, bandwidth) -> float:
    return _interval(true, factors, cpu_budget, bandwidth)[0]


def _run(search, true, cpu_budget, bandwidth, noise=None, limit=50):
    """Observe intervals until the search settles; returns (factors, intervals used)."""
    factors = search.factors
    for used in range(1, limit + 1):
        rate, state = _interval(true, factors, cpu_budget, bandwidth)
        if noise is not None:
            rate *= noise.uniform(0.97, 1.03)
        factors = search.observe(rate, state)
        if search.settled:
            return factors, used
    raise AssertionError(f"search did not settle in {limit} intervals")


def _perturbed(profile: QueryProfile, factors) -> QueryProfile:
    ops = tuple(
        OperatorProfile(op.cost_s * f, op.selectivity) for op, f in zip(profile.operators, factors)
    )
    k = len(ops)
    return QueryProfile(
        ops,
        profile.stage_bytes,
        profile.ship_cost_s_per_byte * factors[k],
        profile.input_cost_s * factors[k + 1],
    )


model_error = st.lists(st.floats(0.5, 2.0), min_size=6, max_size=6)
budgets = st.tuples(st.sampled_from([0.012, 0.02, 0.03]), st.sampled_from([3e6, 6.4e6, 1e7]))


@settings(max_examples=100, deadline=None)
@given(model_error, budgets)
def test_search_starts_at_the_best_operator_level_split_of_its_model(error, budget):
    model = _perturbed(MEASURED, error)
    cpu_budget, bandwidth = budget
    start = LoadSearch(4).restart(model, cpu_budget, bandwidth)
    splits = [operator_level_factors(4, m) for m in range(5)]
    assert start in splits
    predicted = [_true_rate(model, s, cpu_budget, bandwidth) for s in splits]
    assert _true_rate(model, start, cpu_budget, bandwidth) == pytest.approx(max(predicted))


@settings(max_examples=150, deadline=None)
@given(model_error, budgets)
def test_refinement_never_settles_below_the_start_split(error, budget):
    """Noise-free measurements, a model wrong by up to 2x per cost: the settled plan runs at
    least as fast on the *true* costs as the operator-level split the search started at."""
    cpu_budget, bandwidth = budget
    true = _perturbed(MEASURED, error)
    search = LoadSearch(4)
    start = search.restart(MEASURED, cpu_budget, bandwidth)
    final, used = _run(search, true, cpu_budget, bandwidth)
    assert used <= search.max_moves + 2  # the start, each move, and the settling interval
    assert _true_rate(true, final, cpu_budget, bandwidth) >= _true_rate(
        true, start, cpu_budget, bandwidth
    ) * (1 - 1e-9)
    factors, rate = search.best_measured
    assert final == factors and rate >= search.measured(start)


@pytest.mark.parametrize(
    ("cpu_budget", "bandwidth"), [(0.012, 6.4e6), (0.02, 6.4e6), (0.03, 6.4e6)]
)
def test_exact_model_reaches_the_data_level_optimum(cpu_budget, bandwidth):
    """With the profile right, the first move lands on the LP's optimum: the gain over the
    best operator-level split is the whole data-level gain."""
    search = LoadSearch(4)
    search.restart(MEASURED, cpu_budget, bandwidth)
    final, _ = _run(search, MEASURED, cpu_budget, bandwidth)
    optimum = solve_load_factors(MEASURED, cpu_budget, bandwidth).rate
    assert _true_rate(MEASURED, final, cpu_budget, bandwidth) == pytest.approx(optimum, rel=1e-6)
    assert optimum > 1.1 * best_operator_level(MEASURED, cpu_budget, bandwidth).rate


def test_a_wrong_model_falls_back_to_the_start_split():
    """The model thinks shipping is nearly free, so it sends the search towards forwarding;
    really shipping costs 20x more, every forwarding plan measures worse, and the search
    settles back on the split it started at."""
    cheap = QueryProfile(MEASURED.operators, MEASURED.stage_bytes, 1e-11, MEASURED.input_cost_s)
    true = QueryProfile(MEASURED.operators, MEASURED.stage_bytes, 2e-8, MEASURED.input_cost_s)
    search = LoadSearch(4)
    start = search.restart(cheap, 0.03, 6.4e6)
    assert start == (1.0, 1.0, 1.0, 1.0)
    final, _ = _run(search, true, 0.03, 6.4e6)
    assert search.moves_left < search.max_moves  # it did try other points
    assert final == start


def test_reconverges_after_a_budget_change_within_the_move_budget():
    search = LoadSearch(4, max_moves=6)
    true = _perturbed(MEASURED, [1.3, 0.8, 1.2, 0.7, 1.5, 1.1])
    rng = np.random.default_rng(0)
    for cpu_budget in (0.02, 0.012, 0.03):
        start = search.restart(MEASURED, cpu_budget, 6.4e6)
        assert start == best_operator_level(MEASURED, cpu_budget, 6.4e6).load_factors
        final, used = _run(search, true, cpu_budget, 6.4e6, noise=rng)
        assert used <= 8  # 4 s at half-second intervals
        best_split = max(
            _true_rate(true, operator_level_factors(4, m), cpu_budget, 6.4e6) for m in range(5)
        )
        # noisy measurements (+-3%) may pick a point up to ~6% below the truly best one
        assert _true_rate(true, final, cpu_budget, 6.4e6) >= 0.94 * best_split


def test_settled_search_stays_put_until_restarted():
    search = LoadSearch(4)
    search.restart(MEASURED, 0.02, 6.4e6)
    final, _ = _run(search, MEASURED, 0.02, 6.4e6)
    for state in (QueueState.CONGESTED, QueueState.IDLE):
        assert search.observe(1.0, state) == final


def test_zero_moves_settles_on_the_start():
    search = LoadSearch(4, max_moves=0)
    start = search.restart(MEASURED, 0.02, 6.4e6)
    final, used = _run(search, MEASURED, 0.02, 6.4e6)
    assert (final, used) == (start, 1)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((1000, 0.01, 0.0, 0.02, 1e6, None), 2000.0),  # CPU-bound, nothing shipped
        ((1000, 0.0001, 1e4, 0.02, 1e6, None), 1e5),  # network-bound
        ((1000, 0.001, 1e3, 0.02, 1e6, 0.5), 2000.0),  # the input was the limit
        ((0, 0.0, 0.0, 0.02, 1e6, None), 0.0),
    ],
)
def test_sustained_rate(args, expected):
    assert sustained_rate(*args) == pytest.approx(expected)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="num_operators"):
        LoadSearch(0)
    search = LoadSearch(3)
    with pytest.raises(ValueError, match="4 operators"):
        search.restart(MEASURED, 0.02, 1e6)
    search = LoadSearch(4)
    search.restart(MEASURED, 0.02, 1e6)
    with pytest.raises(ValueError, match="measured rate"):
        search.observe(float("nan"), QueueState.STABLE)
