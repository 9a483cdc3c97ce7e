"""AOMG summary: error bound against DuckDB, exact merging, bytes round trip, bad input."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streaming.aomg.summary import (
    QuantileSummary,
    SummaryConfig,
    exact_quantiles,
    validate_quantiles,
)
from streaming.common.telemetry import TelemetryConfig, generate_table

QUANTILES = [0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.0]
CONFIG = SummaryConfig(relative_accuracy=0.005, exact_limit=4_096, tail_size=64)
# the guarantee is |q̂ - x| <= α·x; allow floating rounding at bucket boundaries only
BOUND = CONFIG.relative_accuracy * (1 + 1e-9)


def _named_distributions() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2020)
    n = 50_000
    return {
        "lognormal": rng.lognormal(6.0, 1.0, n),
        "bimodal": np.concatenate(
            [rng.normal(250, 20, n // 2), rng.normal(5_000, 300, n // 2)]
        ).clip(0.5),
        "pareto_tail": 2_000.0 * (1.0 + rng.pareto(1.3, n)),
        "constant": np.full(n, 1234.5),
        "recurring_integers": rng.choice(np.arange(200, 900), size=n).astype(np.float64),
        "telemetry_rtt": generate_table(TelemetryConfig(seed=3), n)["rtt_us"]
        .to_numpy()
        .astype(np.float64),
        "tiny_and_huge": np.concatenate(
            [rng.uniform(1e-6, 1e-3, n // 2), rng.uniform(1e9, 1e12, n // 2)]
        ),
        "with_zeros": np.concatenate([np.zeros(n // 10), rng.lognormal(3.0, 2.0, n)]),
    }


DISTRIBUTIONS = _named_distributions()


def duckdb_quantile_disc(values: np.ndarray, quantiles: list[float]) -> np.ndarray:
    con = duckdb.connect()
    con.register("t", {"v": values})
    select = ", ".join(f"quantile_disc(v, {q!r})" for q in quantiles)
    return np.asarray(con.execute(f"SELECT {select} FROM t").fetchone(), dtype=np.float64)


def relative_error(estimate: np.ndarray, exact: np.ndarray) -> np.ndarray:
    diff = np.abs(estimate - exact)
    return np.where(exact == 0, diff, diff / np.where(exact == 0, 1, exact))


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_error_bound_against_duckdb(name):
    values = DISTRIBUTIONS[name]
    exact = duckdb_quantile_disc(values, QUANTILES)
    np.testing.assert_array_equal(exact, exact_quantiles(values, QUANTILES))
    estimate = QuantileSummary.from_values(values, CONFIG).quantiles(QUANTILES)
    assert relative_error(estimate, exact).max() <= BOUND, (estimate, exact)


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_merged_sub_windows_equal_the_whole_window(name):
    values = DISTRIBUTIONS[name]
    whole = QuantileSummary.from_values(values, CONFIG)
    parts = [QuantileSummary.from_values(p, CONFIG) for p in np.array_split(values, 37)]
    assert QuantileSummary.merge_all(parts) == whole
    assert QuantileSummary.merge_all(parts).count == values.size


def test_recurring_small_values_are_answered_exactly():
    values = DISTRIBUTIONS["recurring_integers"]
    np.testing.assert_array_equal(
        QuantileSummary.from_values(values, CONFIG).quantiles(QUANTILES),
        duckdb_quantile_disc(values, QUANTILES),
    )


def test_the_extreme_tail_is_exact():
    values = DISTRIBUTIONS["pareto_tail"][:5_000]  # p99.9 is within the 64 largest
    s = QuantileSummary.from_values(values, CONFIG)
    q = [0.99, 0.999, 1.0]
    np.testing.assert_array_equal(s.quantiles(q)[1:], duckdb_quantile_disc(values, q)[1:])


value_lists = st.lists(
    st.one_of(
        st.integers(0, 5_000).map(float),
        st.floats(0.0, 1e7, allow_nan=False, allow_infinity=False, allow_subnormal=False),
        st.sampled_from([0.0, 1.0, 4096.0, 4097.0, 1e-300]),
    ),
    min_size=1,
    max_size=300,
)
small_configs = st.builds(
    SummaryConfig,
    relative_accuracy=st.sampled_from([0.001, 0.005, 0.02, 0.1]),
    exact_limit=st.sampled_from([0, 10, 4_096]),
    tail_size=st.sampled_from([0, 1, 5, 64]),
)


@settings(max_examples=150, deadline=None)
@given(values=value_lists, config=small_configs, q=st.floats(0.0, 1.0))
def test_bound_holds_for_any_values_and_config(values, config, q):
    v = np.asarray(values)
    exact = exact_quantiles(v, [q])
    estimate = QuantileSummary.from_values(v, config).quantiles([q])
    assert relative_error(estimate, exact)[0] <= config.relative_accuracy * (1 + 1e-9)


@settings(max_examples=100, deadline=None)
@given(
    groups=st.lists(value_lists, min_size=1, max_size=6),
    config=small_configs,
    data=st.data(),
)
def test_merge_is_associative_and_order_independent(groups, config, data):
    summaries = [QuantileSummary.from_values(np.asarray(g), config) for g in groups]
    order = data.draw(st.permutations(range(len(summaries))))
    flat = QuantileSummary.merge_all(summaries)
    shuffled = QuantileSummary.merge_all([summaries[i] for i in order])
    # ((a+b)+c)+... versus a+(b+(c+...))
    left = summaries[0]
    for s in summaries[1:]:
        left = left.merge(s)
    right = summaries[-1]
    for s in reversed(summaries[:-1]):
        right = s.merge(right)
    direct = QuantileSummary.from_values(np.concatenate([np.asarray(g) for g in groups]), config)
    assert flat == shuffled == left == right == direct


@settings(max_examples=100, deadline=None)
@given(values=value_lists, config=small_configs, skipped=st.integers(0, 5))
def test_bytes_round_trip(values, config, skipped):
    raw = np.concatenate([np.asarray(values), np.full(skipped, np.nan)])
    s = QuantileSummary.from_values(raw, config, on_invalid="skip")
    back = QuantileSummary.from_values(np.asarray(values), config)
    assert QuantileSummary.from_bytes(s.to_bytes()) == s
    assert s.skipped == skipped and back.count == s.count


def test_state_is_small_compared_with_the_values():
    values = DISTRIBUTIONS["telemetry_rtt"]
    assert len(QuantileSummary.from_values(values, CONFIG).to_bytes()) < values.size * 8 / 10


def test_empty_summary_answers_nan():
    s = QuantileSummary.from_values([], CONFIG)
    assert s.count == 0 and np.isnan(s.quantiles([0.5])).all()
    assert QuantileSummary.from_bytes(s.to_bytes()) == s == QuantileSummary.empty(CONFIG)


@pytest.mark.parametrize("bad", [np.nan, -1.0, np.inf, None])
def test_invalid_values_raise_or_are_counted(bad):
    values = [1.0, 2.0, bad, 3.0]
    with pytest.raises(ValueError, match="1 of 4 values are null, NaN, infinite or negative"):
        QuantileSummary.from_values(values, CONFIG)
    s = QuantileSummary.from_values(values, CONFIG, on_invalid="skip")
    assert (s.count, s.skipped) == (3, 1)
    assert s.quantiles([1.0])[0] == 3.0


@pytest.mark.parametrize("q", [-0.1, 1.5, float("nan"), float("inf")])
def test_quantiles_outside_unit_interval_are_rejected(q):
    with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
        QuantileSummary.from_values([1.0], CONFIG).quantiles([0.5, q])


@pytest.mark.parametrize("qs", [[], "abc", [[0.5]]])
def test_malformed_quantile_lists_are_rejected(qs):
    with pytest.raises(ValueError, match="quantile"):
        validate_quantiles(qs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"relative_accuracy": 0.0},
        {"relative_accuracy": 0.5},
        {"relative_accuracy": 1e-9},
        {"exact_limit": -1},
        {"exact_limit": 1.5},
        {"tail_size": -3},
    ],
)
def test_bad_config_is_rejected(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        SummaryConfig(**kwargs)


def test_merging_different_configs_is_rejected():
    a = QuantileSummary.from_values([1.0], SummaryConfig(relative_accuracy=0.01))
    b = QuantileSummary.from_values([1.0], SummaryConfig(relative_accuracy=0.02))
    with pytest.raises(ValueError, match="different configs"):
        a.merge(b)


@pytest.mark.parametrize("data", [b"", b"XXXX" + bytes(60), b"junk"])
def test_corrupt_bytes_are_rejected(data):
    with pytest.raises(ValueError, match="AOMG summary"):
        QuantileSummary.from_bytes(data)


def test_non_numeric_values_are_rejected():
    with pytest.raises(ValueError, match="values must be numeric"):
        QuantileSummary.from_values(["a", "b"], CONFIG)


def test_subnormal_values_share_the_lowest_normal_bucket():
    config = SummaryConfig(relative_accuracy=1e-6)
    tiny = np.asarray([5e-324, 1e-310, 2.2250738585072014e-308])
    buckets = config.bucket_of(tiny)
    assert (buckets == buckets[-1]).all()


def test_a_summary_of_another_format_version_is_named():
    data = bytearray(QuantileSummary.from_values([1.0, 2.5], CONFIG).to_bytes())
    data[4] = 1
    with pytest.raises(ValueError, match="format version 1; this build reads version 2"):
        QuantileSummary.from_bytes(bytes(data))


def test_truncated_bytes_are_rejected():
    data = QuantileSummary.from_values(DISTRIBUTIONS["lognormal"][:500], CONFIG).to_bytes()
    for cut in (6, 20, len(data) - 1):
        with pytest.raises(ValueError, match="corrupt AOMG summary"):
            QuantileSummary.from_bytes(data[:cut])


@settings(max_examples=200, deadline=None)
@given(
    v=st.floats(min_value=2.2250738585072014e-308, max_value=1.7e308),
    alpha=st.sampled_from([1e-6, 0.001, 0.005, 0.1, 0.49]),
)
def test_a_value_lies_in_its_buckets_tabled_bounds(v, alpha):
    """The bucket is defined by the tabled bounds (what makes JVM and numpy agree), and its
    representative is within α of the value (above the subnormal doubles)."""
    config = SummaryConfig(relative_accuracy=alpha)
    (i,) = config.bucket_of(np.asarray([v]))
    lower, upper = config.bound(np.asarray([i - 1, i]))
    assert lower < v <= upper
    if upper < np.inf:
        rep = config.representative(np.asarray([i]))[0]
        assert abs(rep - v) <= alpha * v * (1 + 1e-9)
