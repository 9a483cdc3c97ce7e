"""Jarvis query model, proxies, spool and runtime without a JVM."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blaze_errors import InputError
from streaming.common.telemetry import TelemetryConfig, generate_range, server_topology
from streaming.jarvis.controller import IntervalObservation, best_operator_level
from streaming.jarvis.proxy import ChunkRouter, run_proxies, split_weights, validate_load_factors
from streaming.jarvis.query import (
    Aggregate,
    Filter,
    Query,
    columns_from_telemetry,
    default_query,
    query_from_spec,
    sanitize,
)
from streaming.jarvis.runtime import SETTLE_WITHIN_INTERVALS, SourceRuntime
from streaming.jarvis.spool import list_entries, read_entry_tables, resume_point, write_entry

CONFIG = TelemetryConfig(num_servers=200, seed=7, error_rate=0.05)
TABLES = {"topology": server_topology(CONFIG)}
QUERY = default_query(window_us=50_000)


def _sorted(cols):
    order = np.lexsort(tuple(cols[k] for k in reversed(QUERY.aggregate.keys)))
    return {k: v[order] for k, v in cols.items()}


def _assert_same(a, b):
    a, b = _sorted(a), _sorted(b)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


load_factor = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(load_factor, min_size=4, max_size=4),
    st.integers(0, 50_000),
    st.integers(1, 5_000),
)
def test_split_then_finish_equals_whole_query(factors, first, count):
    cols = columns_from_telemetry(generate_range(CONFIG, first, count))
    run = run_proxies(QUERY, cols, factors, TABLES)
    finished = QUERY.finish_local({s: [c] for s, c in run.outputs.items()}, TABLES)
    _assert_same(finished, QUERY.run_local(cols, TABLES))
    # every record left the source exactly once, at some stage
    assert sum(run.arrived[:1]) == count


def test_partial_aggregates_merge_exactly_across_batches():
    parts = [columns_from_telemetry(generate_range(CONFIG, i * 3_000, 3_000)) for i in range(4)]
    partials = [QUERY.run_local(c, TABLES) for c in parts]
    merged = QUERY.aggregate.merge(
        {k: np.concatenate([p[k] for p in partials]) for k in partials[0]}
    )
    whole = {k: np.concatenate([c[k] for c in parts]) for k in parts[0]}
    _assert_same(merged, QUERY.run_local(whole, TABLES))


@pytest.mark.parametrize(
    ("factors", "error"),
    [
        ((1.0, 1.0, 1.0), ValueError),
        ((1.0, 1.5, 0.0, 0.0), ValueError),
        ((1.0, -0.1, 0.0, 0.0), ValueError),
        ((1.0, float("nan"), 0.0, 0.0), ValueError),
        ((1.0, "x", 0.0, 0.0), TypeError),
        ("1000", TypeError),
    ],
)
def test_invalid_load_factors_are_rejected(factors, error):
    with pytest.raises(error, match="load factor"):
        validate_load_factors(factors, 4)


def test_unknown_operator_is_a_clear_error():
    spec = [*QUERY.to_spec()[:-1], {"op": "median", "column": "rtt_us"}, QUERY.to_spec()[-1]]
    with pytest.raises(InputError, match="unknown operator 'median'"):
        query_from_spec(spec)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("filter", "must be a list"),
        ([{"column": "x"}], "'op' field"),
        ([{"op": "filter", "column": "error_code", "cmp": "==", "value": 0}], "last operator"),
        (
            [
                {"op": "filter", "column": "nope", "cmp": "==", "value": 0},
                {"op": "aggregate", "keys": ["src"]},
            ],
            "no column",
        ),
        ([{"op": "filter", "column": "error_code", "cmp": "~", "value": 0}], "comparison"),
        ([{"op": "aggregate"}], "missing field 'keys'"),
    ],
)
def test_bad_query_specs(spec, message):
    with pytest.raises(InputError, match=message):
        query_from_spec(spec)


def test_spec_round_trip():
    assert query_from_spec(json.loads(json.dumps(QUERY.to_spec()))) == QUERY


def test_aggregate_must_be_last():
    with pytest.raises(ValueError, match="only the last"):
        Query((Aggregate(("src",)), Filter("src", ">", 1), Aggregate(("src",))))


def test_malformed_records_are_counted_and_skipped():
    cols = {
        k: v.copy() for k, v in columns_from_telemetry(generate_range(CONFIG, 0, 1_000)).items()
    }
    cols["rtt_us"][[3, 500]] = -1
    cols["src"][7] = -5
    clean, skipped = sanitize(cols)
    assert skipped == 3
    assert len(clean["src"]) == 997
    assert (clean["rtt_us"] >= 0).all()


def test_join_drops_servers_missing_from_the_table():
    cols = {
        k: v.copy() for k, v in columns_from_telemetry(generate_range(CONFIG, 0, 2_000)).items()
    }
    cols["dst"][:10] = 10_000  # not in the topology
    out = QUERY.operators[2].apply(QUERY.operators[1].apply(cols, TABLES), TABLES)
    assert len(out["src_pod"]) == 1_990


def test_spool_resume_skips_complete_entries_and_cleans_temporaries(tmp_path):
    rt = SourceRuntime(QUERY, TABLES, "fixed", 1.0, 1e6, [1.0, 1.0, 0.5, 1.0])
    for seq in range(3):
        for first in (seq * 1_000, seq * 1_000 + 500):  # two chunks per entry
            rt.process_chunk(columns_from_telemetry(generate_range(CONFIG, first, 500)))
        tables, records, _ = rt.flush()
        assert records == 1_000
        write_entry(tmp_path, 4, seq, seq * 1_000, (seq + 1) * 1_000, tables)
    (tmp_path / "agent004" / ".tmp-0000000003").mkdir()  # a crash mid-write
    assert resume_point(tmp_path, 4) == (3, 3_000)
    assert not (tmp_path / "agent004" / ".tmp-0000000003").exists()
    assert list_entries(tmp_path, 4) == [0, 1, 2]
    stages = read_entry_tables(tmp_path, 4, 1)
    assert set(stages) == {2, 4}  # one chunk forwarded before the join, one aggregated


@settings(max_examples=100, deadline=None)
@given(
    st.lists(load_factor, min_size=4, max_size=4),
    st.lists(st.integers(1, 8_192), min_size=1, max_size=200),
)
def test_chunk_router_gives_every_proxy_its_share_within_one_chunk(factors, sizes):
    router = ChunkRouter(4)
    routed = np.zeros(5)
    for n in sizes:
        expected = router.peek(factors, n)
        split = router.route(factors, n)
        assert split == expected
        routed[split] += n
    total, biggest = sum(sizes), max(sizes)
    weights = split_weights(factors)
    assert weights.sum() == pytest.approx(1.0)
    assert np.all(np.abs(routed - weights * total) <= biggest * (1 + 1e-9))
    # proxy k processed locally the records of splits k+1..K: its factor's share of what reached it
    reached = total
    for k, p in enumerate(factors):
        local = routed[k + 1 :].sum()
        assert abs(local - p * reached) <= 5 * biggest
        reached = local


def test_unreadable_spool_file_names_the_file(tmp_path):
    rt = SourceRuntime(QUERY, TABLES, "all_sp", 1.0, 1e6)
    rt.process_chunk(columns_from_telemetry(generate_range(CONFIG, 0, 100)))
    write_entry(tmp_path, 0, 0, 0, 100, rt.flush()[0])
    bad = tmp_path / "agent000" / "0000000000" / "stage0.arrow"
    bad.write_bytes(b"not arrow")
    with pytest.raises(InputError, match=r"stage0\.arrow"):
        read_entry_tables(tmp_path, 0, 0)


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("all_sp", (0.0, 0.0, 0.0, 0.0)),
        ("filter_src", (1.0, 0.0, 0.0, 0.0)),
    ],
)
def test_baseline_strategies_fix_their_factors(strategy, expected):
    assert SourceRuntime(QUERY, TABLES, strategy, 0.1, 1e6).load_factors == expected


def test_unknown_strategy():
    with pytest.raises(ValueError, match="unknown strategy"):
        SourceRuntime(QUERY, TABLES, "magic", 0.1, 1e6)


def test_jarvis_runtime_profiles_then_starts_at_the_best_split_and_replans_on_budget_change():
    rt = SourceRuntime(QUERY, TABLES, "jarvis", 0.01, 1e6)
    assert rt.profiling
    rt.process_chunk(columns_from_telemetry(generate_range(CONFIG, 0, 8_192)))
    assert not rt.profiling and rt.profile() is not None
    assert rt.load_factors == best_operator_level(rt.profile(), 0.01, 1e6).load_factors
    # every operator was measured a moment ago: the new plan comes at once, no profiling chunk
    assert rt.set_budget(0.02, 1e6) and not rt.profiling
    assert rt.load_factors == best_operator_level(rt.profile(), 0.02, 1e6).load_factors
    assert not rt.set_budget(0.02, 1e6)


def test_stale_profile_is_measured_again_and_that_interval_is_not_judged():
    rt = SourceRuntime(QUERY, TABLES, "jarvis", 0.01, 1e6)
    chunk = columns_from_telemetry(generate_range(CONFIG, 0, 1_000))
    rt.process_chunk(chunk)  # the first profiling chunk
    rt.load_factors = (0.0, 0.0, 0.0, 0.0)  # nothing runs locally: the profile ages
    for _ in range(64):
        rt.process_chunk(chunk)
    assert rt.set_budget(0.02, 1e6) and rt.profiling
    rt.process_chunk(chunk)  # runs every proxy at p = 1, then replans
    start = rt.load_factors
    obs = IntervalObservation(0.01, 0.01, 1e3, 1e6, "cpu")  # congested: would shed work
    rt.end_interval(obs, rate=1e5)
    assert rt.load_factors == start and rt.search.measured(start) is None
    rt.end_interval(obs, rate=1e5)  # a clean interval is judged
    assert rt.search.measured(start) == 1e5


def test_search_settles_within_a_bounded_number_of_intervals_judged_or_not():
    rt = SourceRuntime(QUERY, TABLES, "jarvis", 0.01, 1e6)
    rt.process_chunk(columns_from_telemetry(generate_range(CONFIG, 0, 2_000)))
    start = rt.load_factors
    congested = IntervalObservation(0.01, 0.01, 1e3, 1e6, "cpu")
    for _ in range(SETTLE_WITHIN_INTERVALS - 1):
        rt.end_interval(congested, rate=1e5, judge=False)  # e.g. paying CPU debt
    assert not rt.search.settled
    rt.end_interval(congested, rate=1e5, judge=False)
    assert rt.search.settled and rt.load_factors == start  # nothing measured: the start


@pytest.mark.parametrize(("strategy", "spills"), [("jarvis", True), ("best_op", False)])
def test_network_exhausted_spill_is_data_level_only(strategy, spills):
    rt = SourceRuntime(QUERY, TABLES, strategy, 0.01, 1e6)
    cols = columns_from_telemetry(generate_range(CONFIG, 0, 8_192))
    rt.process_chunk(cols)  # the profiling chunk
    rt.load_factors = (1.0, 0.0, 0.0, 0.0)
    rt.flush()
    rt.process_chunk(columns_from_telemetry(generate_range(CONFIG, 8_192, 8_192)), all_local=True)
    stages = set(rt.flush()[0])
    assert stages == ({4} if spills else {1})
