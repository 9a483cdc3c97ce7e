"""The compiled kernels against the numpy reference they replaced: packing byte for byte,
decoding value for value, filter + aggregate answer for answer, on every integer type, edge
value, block kind and codec (and against DuckDB where SQL can say it)."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from streaming.tersecades import (
    Adaptive,
    BaseDelta,
    Dictionary,
    Predicate,
    TerseSpec,
    TimestampWindow,
    UnfitValueError,
    aggregate,
    select,
)
from streaming.tersecades.adaptive import CHOICES
from streaming.tersecades.bitpack import pack_blocks as reference_pack_blocks
from streaming.tersecades.blocks import pack_exceptions, reference_decode_int64
from streaming.tersecades.kernels.decode import decode_blocks
from streaming.tersecades.kernels.encode import pack_blocks, pack_column
from streaming.tersecades.kernels.scan import SLOTS
from streaming.tersecades.operators import OPS
from streaming.tersecades.operators_reference import reference_aggregate, reference_select

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
INT_TYPES = {
    pa.int8(): np.int8,
    pa.int16(): np.int16,
    pa.int32(): np.int32,
    pa.int64(): np.int64,
    pa.uint8(): np.uint8,
    pa.uint16(): np.uint16,
    pa.uint32(): np.uint32,
}
CODECS = [
    *(Adaptive(kind) for kind in (None, *CHOICES)),
    BaseDelta(),
    BaseDelta(bits=True),
    BaseDelta(stride=False),
    TimestampWindow(7),
]


@st.composite
def int_arrays(draw, n=None):
    """Integer columns of every type and shape: extremes, random bits, walks, few values,
    outliers; optionally with nulls."""
    arrow_type = draw(st.sampled_from(list(INT_TYPES)))
    dtype = INT_TYPES[arrow_type]
    info = np.iinfo(dtype)
    n = draw(st.integers(0, 300)) if n is None else n
    edges = [info.min, info.min + 1, 0, 1, info.max - 1, info.max]
    shape = draw(st.sampled_from(["edges", "random", "walk", "few", "outliers"]))
    if shape == "edges":
        values = draw(hnp.arrays(dtype, n, elements=st.sampled_from(edges)))
    elif shape == "random":
        values = draw(hnp.arrays(dtype, n, elements=st.integers(info.min, info.max)))
    elif shape == "walk":
        steps = draw(hnp.arrays(np.int64, n, elements=st.sampled_from([-3, 0, 1, 2, 90, 10**5])))
        values = (draw(st.integers(info.min, info.max)) + np.cumsum(steps)).astype(dtype)
    elif shape == "few":
        pool = draw(st.lists(st.sampled_from([*edges, 7, 42]), min_size=1, max_size=4))
        values = np.array(draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n)), dtype)
    else:
        body = draw(hnp.arrays(dtype, n, elements=st.integers(0, 5)))
        values = np.where(np.arange(n) % 9 == 4, np.array(info.max, dtype), body)
    mask = draw(hnp.arrays(bool, n, elements=st.booleans())) if draw(st.booleans()) else None
    return pa.array(np.asarray(values, dtype), arrow_type, mask=mask)


# ------------------------------------------------------------------------------ packing


@SETTINGS
@given(st.integers(1, 5), st.integers(0, 200), st.data())
def test_pack_kernel_writes_the_reference_bytes_at_every_width(blocks, n, data):
    width = data.draw(hnp.arrays(np.int64, blocks, elements=st.integers(0, 64)))
    limit = np.where(width >= 64, np.uint64(2**64 - 1), (np.uint64(1) << np.minimum(width, 63).astype(np.uint64)) - np.uint64(1))  # fmt: skip
    raw = data.draw(hnp.arrays(np.uint64, (blocks, n)))
    lanes = raw & limit[:, None]
    offsets, packed = pack_blocks(lanes, width)
    ref_offsets, ref_packed = reference_pack_blocks(lanes, width.astype(np.int8))
    np.testing.assert_array_equal(offsets, ref_offsets)
    np.testing.assert_array_equal(packed, ref_packed)


@SETTINGS
@given(st.integers(1, 4), st.integers(1, 150), st.data())
def test_exceptions_pack_like_the_reference(blocks, n, data):
    width = data.draw(hnp.arrays(np.int64, blocks, elements=st.integers(0, 63)))
    exact = data.draw(hnp.arrays(np.int64, (blocks, n)))
    exc = data.draw(hnp.arrays(bool, (blocks, n)))
    anchor = data.draw(hnp.arrays(np.int64, blocks))
    lanes = exact.view(np.uint64) & ((np.uint64(1) << width.astype(np.uint64)) - np.uint64(1))[:, None]  # fmt: skip
    lane_off, lane_data, _pos_off, pos_data, val_off, val_data = pack_column(
        lanes.copy(), width, exc, exact, anchor
    )
    block, row = np.nonzero(exc)
    ref_val = pack_exceptions(block, exact[block, row], anchor, blocks)
    np.testing.assert_array_equal(val_off, ref_val.offsets)
    np.testing.assert_array_equal(val_data, ref_val.data)
    np.testing.assert_array_equal(pos_data.view(np.uint16), row.astype(np.uint16))
    ref_lanes = np.where(exc, np.uint64(0), lanes)
    ref_off, ref_data = reference_pack_blocks(ref_lanes, width.astype(np.int8))
    np.testing.assert_array_equal(lane_off, ref_off)
    np.testing.assert_array_equal(lane_data, ref_data)


@SETTINGS
@given(int_arrays(), st.sampled_from([None, *CHOICES]), st.integers(1, 80))
def test_compiled_encoder_writes_the_numpy_encoders_blocks(array, kind, block_size):
    """Blocks without nulls go through one compiled pass; the numpy encoder is the reference:
    the same kinds, widths, frames and bytes."""
    from streaming.tersecades.adaptive import encode_adaptive
    from streaming.tersecades.codecs import _as_int64

    values = _as_int64(array.drop_null())
    compiled = encode_adaptive(values, None, block_size, only=kind)
    reference = encode_adaptive(values, None, block_size, only=kind, compiled=False)
    for name in ("rows", "base", "stride", "width", "vmin", "vmax", "nulls", "kind"):
        np.testing.assert_array_equal(getattr(compiled, name), getattr(reference, name), name)
    for name in ("deltas", "exc_pos", "exc_val", "null_pos", "aux"):
        got, want = getattr(compiled, name), getattr(reference, name)
        np.testing.assert_array_equal(got.lengths, want.lengths, name)
        np.testing.assert_array_equal(got.items(np.uint8), want.items(np.uint8), name)


# ------------------------------------------------------------------------------ decoding


@SETTINGS
@given(int_arrays(), st.sampled_from(CODECS), st.integers(1, 80))
@example(
    pa.array([-(2**63)], pa.int64()), TimestampWindow(window=7, origin=0), 1
)  # found by CI: the int64 minimum
def test_decode_kernel_equals_the_reference_and_round_trips(array, codec, block_size):
    batch = pa.RecordBatch.from_arrays([array], names=["x"])
    spec = TerseSpec(batch.schema, {"x": codec}, block_size=block_size)
    try:
        encoded = spec.encode_batch(batch)
    except UnfitValueError as refused:
        # a window codec refuses values whose window floor leaves int64 (one named error);
        # only such values may be refused
        live = array.drop_null().to_numpy()
        assert isinstance(codec, TimestampWindow) and "int64 limits" in str(refused)
        assert live.min() < -(2**63) + 2 * codec.window + abs(codec.origin) or (
            live.max() >= 2**63 - 1 - abs(codec.origin)
        )
        return
    blocks = encoded.columns["x"].blocks
    values, valid = decode_blocks(blocks)
    ref_values, ref_valid = reference_decode_int64(blocks)
    np.testing.assert_array_equal(values, ref_values)
    assert (valid is None) == (ref_valid is None)
    if valid is not None:
        np.testing.assert_array_equal(valid, ref_valid)
    if codec.lossless:
        assert spec.decode(encoded.to_arrow()).equals(batch)


# --------------------------------------------------------------------- filter + aggregate


def _table(n: int, data) -> pa.RecordBatch:
    """Five integer columns of different shapes (more than one fused scan's ``SLOTS``)."""
    columns = {f"c{i}": data.draw(int_arrays(n)) for i in range(SLOTS + 1)}
    columns["k"] = pa.array(data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, 3))))
    return pa.RecordBatch.from_pydict(columns)


@SETTINGS
@given(st.integers(1, 300), st.data())
def test_fused_scan_equals_the_reference_on_every_kind(n, data):
    batch = _table(n, data)
    kind = data.draw(st.sampled_from([None, *CHOICES]))
    codecs = {name: Adaptive(kind) for name in batch.schema.names}
    if data.draw(st.booleans()):
        codecs["c1"] = BaseDelta(bits=data.draw(st.booleans()))
    spec = TerseSpec(batch.schema, codecs, block_size=data.draw(st.integers(1, 70)))
    encoded = spec.parse(spec.encode(batch))
    where = []
    for _ in range(data.draw(st.integers(0, 4))):
        column = data.draw(st.sampled_from([f"c{i}" for i in range(SLOTS + 1)]))
        values = batch.column(column).drop_null().to_pylist()
        constant = data.draw(st.sampled_from(values)) if values else 0
        constant += data.draw(st.sampled_from([0, 0, -1, 1]))
        where.append(Predicate(column, data.draw(st.sampled_from(OPS)), constant))
    value = data.draw(st.sampled_from([f"c{i}" for i in range(SLOTS + 1)]))
    by = data.draw(st.sampled_from([None, "k", "c0"]))
    got = aggregate(encoded, value, where=where, by=by)
    expected = reference_aggregate(encoded, value, where=where, by=by)
    assert got.rows() == expected.rows()
    assert got.stats == expected.stats
    if where:
        mask = select(encoded, where)
        ref = reference_select(encoded, where)
        np.testing.assert_array_equal(mask.mask, ref.mask)
        assert (mask.blocks_skipped, mask.blocks_accepted, mask.blocks_compared) == (
            ref.blocks_skipped,
            ref.blocks_accepted,
            ref.blocks_compared,
        )


SQL_OP = {"==": "=", "!=": "<>"}


@pytest.mark.parametrize("kind", [None, *CHOICES])
def test_two_predicates_group_by_dictionary_equal_duckdb_on_every_kind(kind):
    rng = np.random.default_rng(CHOICES.index(kind) + 1 if kind else 0)
    n = 5_000
    rtt = np.where(rng.random(n) < 0.7, rng.choice([180, 210, 250], n), rng.integers(50, 5000, n))
    rtt[rng.random(n) < 0.002] = 2**40
    errors = np.where(rng.random(n) < 0.95, 0, rng.integers(1, 120, n))
    paths = rng.choice(np.array(["same_rack", "same_pod", "cross_pod"]), n).astype(object)
    paths[rng.random(n) < 0.05] = None
    batch = pa.RecordBatch.from_pydict(
        {"rtt": pa.array(rtt), "err": pa.array(errors), "path": pa.array(paths, pa.string())}
    )
    spec = TerseSpec(
        batch.schema,
        {"rtt": Adaptive(kind), "err": Adaptive(kind), "path": Dictionary()},
        block_size=512,
    )
    encoded = spec.parse(spec.encode(batch))
    where = [Predicate("err", "==", 0), Predicate("rtt", "<", 2000)]
    got = aggregate(encoded, "rtt", where=where, by="path").rows()
    con = duckdb.connect()
    con.register("t", pa.Table.from_batches([batch]))
    sql = (
        "SELECT path, count(rtt), sum(rtt), min(rtt), max(rtt) FROM t "
        "WHERE err = 0 AND rtt < 2000 GROUP BY path ORDER BY path NULLS LAST"
    )
    expected = [tuple(r) for r in con.execute(sql).fetchall()]
    con.close()
    assert got == expected


@pytest.mark.parametrize(
    ("op", "constant", "expected"),
    [("==", -(2**63) - 1, 0), ("<", -(2**63), 0), (">", 2**63 - 1, 0), ("!=", 2**63, 3)],
)
def test_constants_beyond_int64_select_what_sql_would(op, constant, expected):
    """A constant outside int64 empties (or fills) the interval after clipping; it must not
    be clipped into a real value first (x == -2**63 - 1 is not x == -2**63)."""
    values = pa.array([-(2**63), 0, 2**63 - 1])
    batch = pa.RecordBatch.from_arrays([values], names=["v"])
    spec = TerseSpec(batch.schema, block_size=2)
    encoded = spec.parse(spec.encode(batch))
    got = aggregate(encoded, "v", where=[Predicate("v", op, constant)]).rows()
    assert sum(row[1] for row in got) == expected
    assert got == reference_aggregate(encoded, "v", where=[Predicate("v", op, constant)]).rows()


@pytest.mark.parametrize(("op", "constant"), [("!=", -(2**63) - 1), ("!=", 2**63)])
def test_a_negated_empty_interval_keeps_every_non_null_row_of_a_block_with_nulls(op, constant):
    """Found by the fused-scan property test: a block with nulls is compared row by row, and
    the empty interval of ``x != -2**63 - 1`` must match no value there before negation
    (clipped to [-2**63, -2**63] it dropped the rows holding -2**63)."""
    values = pa.array([-(2**63), None, 0, 2**63 - 1, -(2**63)], pa.int64())
    batch = pa.RecordBatch.from_arrays([values], names=["v"])
    spec = TerseSpec(batch.schema, block_size=3)
    encoded = spec.parse(spec.encode(batch))
    where = [Predicate("v", op, constant)]
    got = aggregate(encoded, "v", where=where).rows()
    assert sum(row[1] for row in got) == 4  # the non-null rows, as SQL's v <> c keeps them
    assert got == reference_aggregate(encoded, "v", where=where).rows()
    assert select(encoded, where).mask.tolist() == [1, 0, 1, 1, 1]


def _with_payload(blocks, name: str, offsets, data):
    import dataclasses

    from streaming.tersecades.blocks import Payload

    return dataclasses.replace(blocks, **{name: Payload(np.array(offsets, np.int64), data)})


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        ("exc_pos", "beyond", "block 1: exception position beyond the block"),
        ("exc_pos", "descending", "block 1: exception positions not ascending"),
        ("null_pos", "beyond", "block 0: null position beyond the block"),
        ("deltas", "decreasing", "deltas offsets are malformed"),
        ("exc_val", "short", "exc_val buffer is truncated"),
    ],
)
def test_compiled_validation_names_each_structural_problem(name, change, message):
    """The validate kernel's checks, one corruption at a time (Arrow cannot carry most of these:
    the payloads are altered directly)."""
    from streaming.tersecades import CorruptEncodingError

    values = np.arange(64, dtype=np.int64) % 5
    values[[3, 9, 40, 50]] = 10**9  # two exceptions in each 32-row block
    mask = np.zeros(64, bool)
    mask[[1, 2]] = True
    batch = pa.RecordBatch.from_arrays([pa.array(values, mask=mask)], names=["v"])
    spec = TerseSpec(batch.schema, {"v": Adaptive("for")}, block_size=32)
    blocks = spec.encode_batch(batch).columns["v"].blocks
    blocks.validate("v")  # intact
    payload = getattr(blocks, name)
    data = payload.data.copy()
    offsets = payload.offsets.copy()
    if change == "beyond":
        first = int(offsets[1]) if name == "exc_pos" else int(offsets[0])
        data[first : first + 2] = np.array([200], np.uint16).view(np.uint8)
    elif change == "descending":
        first = int(offsets[1])
        data[first : first + 4] = np.array([9, 8], np.uint16).view(np.uint8)
    elif change == "decreasing":
        offsets[1] = offsets[2] + 1
    else:
        data = data[: int(offsets[-1]) - 1]
    corrupt = _with_payload(blocks, name, offsets, data)
    with pytest.raises(CorruptEncodingError, match=f"column 'v'.*{message}"):
        corrupt.validate("v", check_crc=False)
