"""The telemetry generator: deterministic, Pingmesh-shaped, independent of how it is cut."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streaming.common.telemetry import (
    TELEMETRY_SCHEMA,
    TIMEOUT_US,
    TelemetryConfig,
    generate_batch,
    generate_range,
    generate_table,
    server_topology,
)

CONFIG = TelemetryConfig(seed=7)


@settings(max_examples=25, deadline=None)
@given(first=st.integers(0, 50_000), count=st.integers(0, 20_000))
def test_any_range_equals_the_same_slice_of_the_stream(first, count):
    whole = generate_table(CONFIG, first + count)
    assert generate_range(CONFIG, first, count).equals(
        whole.slice(first, count).combine_chunks().to_batches()[0]
        if count
        else generate_range(CONFIG, 0, 0)
    )


def test_batches_are_reproducible_and_seeded():
    assert generate_batch(CONFIG, 3, 1000).equals(generate_batch(CONFIG, 3, 1000))
    other = generate_batch(TelemetryConfig(seed=8), 3, 1000)
    assert not generate_batch(CONFIG, 3, 1000).equals(other)


def test_shape_of_the_data():
    table = generate_table(CONFIG, 100_000)
    assert table.schema == TELEMETRY_SCHEMA
    rtt = table["rtt_us"].to_numpy()
    src, dst = table["src"].to_numpy(), table["dst"].to_numpy()
    assert (src != dst).all()
    assert rtt.min() >= 1 and rtt.max() <= TIMEOUT_US
    # recurring small values: the body takes far fewer distinct values than records
    assert len(np.unique(rtt)) < len(rtt) / 10
    # heavy tail: p99.9 is orders of magnitude above the median
    p50, p999 = np.percentile(rtt, [50, 99.9])
    assert p999 > 50 * p50
    ts = table["ts"].cast("int64").to_numpy()
    assert (np.diff(ts) >= 0).all()
    errors = table["error_code"].to_numpy()
    assert 0 < (errors != 0).mean() < 0.02


def test_topology_nests_servers_in_racks_in_pods():
    topo = server_topology(CONFIG).to_pandas()
    assert len(topo) == CONFIG.num_servers
    assert (topo.groupby("rack")["pod"].nunique() == 1).all()


@pytest.mark.parametrize(
    "kwargs", [{"num_servers": 1}, {"records_per_second": 0}, {"error_rate": 2.0}]
)
def test_bad_config_is_rejected(kwargs):
    with pytest.raises(ValueError):
        TelemetryConfig(**kwargs)
