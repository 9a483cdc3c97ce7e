"""Operators on encoded data: every answer equals the same operator on the decoded data and a
DuckDB query on the raw data."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from streaming.common.telemetry import TELEMETRY_SCHEMA, TelemetryConfig, generate_table
from streaming.tersecades import (
    BaseDelta,
    Dictionary,
    Predicate,
    TerseSpec,
    TimestampWindow,
    aggregate,
    select,
    windowed_filter_aggregate,
)
from streaming.tersecades.operators import OPS
from streaming.tersecades.reference import (
    arrow_windowed_filter_aggregate,
    numpy_windowed_filter_aggregate,
)

I64 = np.iinfo(np.int64)
SQL_OP = {"==": "="}
SETTINGS = settings(max_examples=35, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _duckdb_rows(table: pa.Table, sql: str) -> list[tuple]:
    con = duckdb.connect()
    try:
        con.register("t", table)
        return [tuple(r) for r in con.execute(sql).fetchall()]
    finally:
        con.close()


def _decoded_rows(decoded: pa.RecordBatch, value: str, key: str | None, where) -> list[tuple]:
    """The operator on decompressed data: plain numpy/Python over the decoded columns."""
    x = pc.fill_null(decoded.column(value), 0).to_numpy(zero_copy_only=False)
    keep = decoded.column(value).is_valid().to_numpy(zero_copy_only=False)
    for p in where:
        col = decoded.column(p.column)
        v = pc.fill_null(col, 0).to_numpy(zero_copy_only=False)
        ok = col.is_valid().to_numpy(zero_copy_only=False)
        hit = {
            "<": np.less,
            "<=": np.less_equal,
            ">": np.greater,
            ">=": np.greater_equal,
            "==": np.equal,
            "!=": np.not_equal,
        }[p.op](v, p.value)
        keep &= ok & hit
    keys = [None] * len(x) if key is None else decoded.column(key).to_pylist()
    groups: dict = {}
    for k, value_, kept in zip(keys, x.tolist(), keep.tolist()):
        if kept:
            groups.setdefault(k, []).append(int(value_))
    order = sorted(groups, key=lambda k: (k is None, k if k is not None else 0))
    return [(k, len(groups[k]), sum(groups[k]), min(groups[k]), max(groups[k])) for k in order]


value_arrays = st.one_of(
    hnp.arrays(np.int64, st.integers(0, 400), elements=st.integers(-1000, 5000)),
    hnp.arrays(
        np.int64,
        st.integers(0, 400),
        elements=st.sampled_from([I64.min, -1, 0, 7, 255, 256, 70_000, 2**33, I64.max]),
    ),
    st.builds(
        lambda start, steps: start + np.cumsum(steps),
        st.integers(-(2**40), 2**40),
        hnp.arrays(np.int64, st.integers(1, 400), elements=st.integers(0, 5)),
    ),
)


@SETTINGS
@given(value_arrays, st.data())
def test_filter_aggregate_group_by_int_matches_decoded_and_duckdb(values, data):
    n = len(values)
    key = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, 3)))
    nulls = data.draw(hnp.arrays(bool, n, elements=st.sampled_from([False] * 9 + [True])))
    op = data.draw(st.sampled_from(OPS))
    constant = (
        int(values[data.draw(st.integers(0, n - 1))])
        if n and data.draw(st.booleans())
        else (data.draw(st.sampled_from([I64.min, -5, 0, 100, 256, 4999, 2**33, I64.max])))
    )
    block_size = data.draw(st.integers(1, 64))
    batch = pa.RecordBatch.from_arrays(
        [pa.array(values, pa.int64(), mask=nulls), pa.array(key, pa.int64())], names=["v", "k"]
    )
    codec = BaseDelta(bits=data.draw(st.booleans()))
    spec = TerseSpec(batch.schema, {"v": codec}, block_size=block_size)
    encoded = spec.parse(spec.encode(batch))
    where = [Predicate("v", op, constant)]
    result = aggregate(encoded, "v", where=where, by="k").rows()

    assert result == _decoded_rows(encoded.decode(), "v", "k", where)
    sql = (
        f"SELECT k, count(v), sum(v), min(v), max(v) FROM t WHERE v {SQL_OP.get(op, op)} "
        f"{constant} GROUP BY k HAVING count(v) > 0 ORDER BY k"
    )
    assert result == _duckdb_rows(pa.Table.from_batches([batch]), sql)


@SETTINGS
@given(
    st.lists(
        st.one_of(st.none(), st.sampled_from(["same_rack", "same_pod", "cross_pod"])), max_size=300
    ),
    st.integers(1, 50),
    st.sampled_from(OPS),
    st.integers(-50, 1050),
)
def test_group_by_dictionary_codes_matches_decoded_and_duckdb(labels, block_size, op, constant):
    n = len(labels)
    values = (np.arange(n, dtype=np.int64) * 7919) % 1000
    batch = pa.RecordBatch.from_arrays(
        [pa.array(labels, pa.string()), pa.array(values)], names=["path", "rtt"]
    )
    spec = TerseSpec(batch.schema, {"path": Dictionary()}, block_size=block_size)
    encoded = spec.parse(spec.encode(batch))
    where = [Predicate("rtt", op, constant)]
    result = aggregate(encoded, "rtt", where=where, by="path").rows()
    assert result == _decoded_rows(encoded.decode(), "rtt", "path", where)
    sql = (
        f"SELECT path, count(rtt), sum(rtt), min(rtt), max(rtt) FROM t WHERE rtt "
        f"{SQL_OP.get(op, op)} {constant} GROUP BY path ORDER BY path NULLS LAST"
    )
    assert result == _duckdb_rows(pa.Table.from_batches([batch]), sql)


@pytest.fixture(scope="module")
def telemetry() -> pa.RecordBatch:
    return generate_table(TelemetryConfig(seed=11), 120_000).combine_chunks().to_batches()[0]


WINDOW = 100_000  # 0.1 s of event time = 10,000 records per window


@pytest.mark.parametrize("bits", [False, True])
@pytest.mark.parametrize("block_size", [1000, 4096])
@pytest.mark.parametrize(
    "where",
    [
        (),
        (Predicate("error_code", "==", 0), Predicate("rtt_us", "<", 2000)),
        (Predicate("rtt_us", ">=", 10_000),),
        (Predicate("error_code", "!=", 0), Predicate("src", "<", 500)),
    ],
)
def test_windowed_filter_aggregate_matches_duckdb_and_raw_arrow(telemetry, block_size, where, bits):
    codecs = {n: BaseDelta(bits=bits) for n in ("src", "dst", "rtt_us", "error_code")}
    codecs["ts"] = TimestampWindow(WINDOW)
    spec = TerseSpec(TELEMETRY_SCHEMA, codecs, block_size=block_size)
    encoded = spec.parse(spec.encode(telemetry))
    result = windowed_filter_aggregate(encoded, "rtt_us", "ts", where).rows()
    condition = " AND ".join(f"{p.column} {SQL_OP.get(p.op, p.op)} {p.value}" for p in where)
    sql = (
        f"SELECT (epoch_us(ts) // {WINDOW}) * {WINDOW} AS w, count(rtt_us), sum(rtt_us), "
        f"min(rtt_us), max(rtt_us) FROM t {'WHERE ' + condition if where else ''} "
        "GROUP BY w ORDER BY w"
    )
    expected = _duckdb_rows(pa.Table.from_batches([telemetry]), sql)
    assert result == expected
    assert arrow_windowed_filter_aggregate(telemetry, "rtt_us", "ts", WINDOW, where) == expected
    assert numpy_windowed_filter_aggregate(telemetry, "rtt_us", "ts", WINDOW, where) == expected


def test_avg_is_sum_over_count(telemetry):
    spec = TerseSpec(TELEMETRY_SCHEMA, {"ts": TimestampWindow(WINDOW)})
    result = windowed_filter_aggregate(spec.parse(spec.encode(telemetry)), "rtt_us", "ts")
    sql = f"SELECT avg(rtt_us) FROM t GROUP BY epoch_us(ts) // {WINDOW} ORDER BY 1"
    expected = sorted(r[0] for r in _duckdb_rows(pa.Table.from_batches([telemetry]), sql))
    assert sorted(result.avgs.tolist()) == pytest.approx(expected, rel=1e-12)


def test_zone_maps_skip_or_accept_whole_blocks(telemetry):
    spec = TerseSpec(TELEMETRY_SCHEMA, block_size=4096)
    encoded = spec.parse(spec.encode(telemetry))
    ts = telemetry.column("ts").view(pa.int64()).to_numpy()
    cut = int(ts[50_000])  # a time in the middle: earlier blocks skipped, later accepted
    selection = select(encoded, [Predicate("ts", ">=", cut)])
    assert selection.blocks_compared <= 1
    assert selection.blocks_skipped >= 12 and selection.blocks_accepted >= 16
    assert selection.mask.sum() == (ts >= cut).sum()
    nothing = select(encoded, [Predicate("rtt_us", ">", 3_000_000)])
    assert nothing.blocks_skipped == encoded.num_blocks and not nothing.mask.any()


def test_sum_is_exact_beyond_int64(telemetry):
    values = np.full(10, I64.max, np.int64)
    batch = pa.RecordBatch.from_arrays([pa.array(values)], names=["v"])
    spec = TerseSpec(batch.schema, block_size=3)
    result = aggregate(spec.parse(spec.encode(batch)), "v")
    assert result.sums == [10 * int(I64.max)]
    assert result.to_table().column("sum").type == pa.decimal128(38, 0)


def test_operators_refuse_non_integer_columns():
    batch = pa.RecordBatch.from_arrays([pa.array([1.5, 2.5])], names=["f"])
    spec = TerseSpec(batch.schema)
    with pytest.raises(TypeError, match="integer-domain codec"):
        aggregate(spec.parse(spec.encode(batch)), "f")
    with pytest.raises(ValueError, match="operator"):
        Predicate("f", "=~", 1)


def test_projection_reads_only_the_queried_columns(telemetry):
    spec = TerseSpec(TELEMETRY_SCHEMA, {"ts": TimestampWindow(WINDOW)})
    encoded = spec.encode(telemetry)
    where = (Predicate("error_code", "==", 0),)
    projected = spec.parse(encoded, columns=["ts", "rtt_us", "error_code"])
    assert set(projected.columns) == {"ts", "rtt_us", "error_code"}
    whole = spec.parse(encoded)
    assert (
        windowed_filter_aggregate(projected, "rtt_us", "ts", where).rows()
        == windowed_filter_aggregate(whole, "rtt_us", "ts", where).rows()
    )
    with pytest.raises(ValueError, match="parsed without the columns"):
        projected.decode()
    with pytest.raises(KeyError, match="not in the spec"):
        spec.parse(encoded, columns=["latency"])
