"""Pingmesh-style datacenter telemetry, generated deterministically from a seed.

Pingmesh probes every server pair and records round-trip times. What matters for the
streaming operators built on it:

* RTTs are integers in microseconds, concentrated on a few hundred *recurring small values*
  (most probes land in the same few hundred microseconds), with a heavy Pareto tail
  (congestion, retransmits) and rare timeouts — the shape AOMG is designed for;
* timestamps are non-decreasing event times, so windows and base-delta encoding apply;
* error codes are almost always 0, so they compress to almost nothing.

Record ``n`` of a stream depends only on ``(seed, n)`` (records are drawn in fixed blocks of
``BLOCK_RECORDS`` keyed by the block number), so any range can be regenerated independently
and however it is batched: a source restarted from a checkpoint offset reproduces exactly the
records it produced before, which is what the exactly-once tests rely on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

__all__ = [
    "TELEMETRY_SCHEMA",
    "TOPOLOGY_SCHEMA",
    "TelemetryConfig",
    "generate_batch",
    "generate_range",
    "generate_table",
    "server_topology",
]

TELEMETRY_SCHEMA = pa.schema(
    [
        pa.field("src", pa.int32(), nullable=False),
        pa.field("dst", pa.int32(), nullable=False),
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("rtt_us", pa.int64(), nullable=False),
        pa.field("error_code", pa.int32(), nullable=False),
    ]
)

TOPOLOGY_SCHEMA = pa.schema(
    [
        pa.field("server", pa.int32(), nullable=False),
        pa.field("rack", pa.int32(), nullable=False),
        pa.field("pod", pa.int32(), nullable=False),
    ]
)

TIMEOUT_US = 3_000_000  # what a probe records when it times out
BLOCK_RECORDS = 8_192  # the unit of deterministic generation


@dataclass(frozen=True)
class TelemetryConfig:
    """Shape of the generated telemetry.

    ``records_per_second`` is the *event-time* rate: record ``n`` of the stream carries
    timestamp ``start_us + n * 1e6 / records_per_second``, independent of wall-clock speed.
    """

    num_servers: int = 1_000
    servers_per_rack: int = 20
    racks_per_pod: int = 10
    records_per_second: int = 100_000
    start_us: int = 1_700_000_000_000_000
    error_rate: float = 0.005
    tail_fraction: float = 0.02
    seed: int = 0

    def __post_init__(self) -> None:
        if self.num_servers < 2:
            raise ValueError(f"num_servers={self.num_servers} must be at least 2")
        if self.records_per_second <= 0:
            raise ValueError(f"records_per_second={self.records_per_second} must be positive")
        for name in ("error_rate", "tail_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}={value} must be within [0, 1]")


def _block_columns(config: TelemetryConfig, block: int) -> dict[str, np.ndarray]:
    first_record, count = block * BLOCK_RECORDS, BLOCK_RECORDS
    rng = np.random.default_rng([config.seed, block])
    src = rng.integers(0, config.num_servers, size=count, dtype=np.int32)
    # dst != src: shift by 1..n-1
    dst = (
        (src + rng.integers(1, config.num_servers, size=count, dtype=np.int32)) % config.num_servers
    ).astype(np.int32)
    index = np.arange(first_record, first_record + count, dtype=np.int64)
    ts = config.start_us + (index * 1_000_000) // config.records_per_second

    # body: same-rack vs cross-pod pairs differ in typical RTT; rounding to whole
    # microseconds of a narrow lognormal gives a few hundred recurring values
    same_pod = (src // (config.servers_per_rack * config.racks_per_pod)) == (
        dst // (config.servers_per_rack * config.racks_per_pod)
    )
    median = np.where(same_pod, 250.0, 600.0)
    body = np.rint(median * rng.lognormal(0.0, 0.25, size=count)).astype(np.int64)
    # heavy tail: Pareto(alpha=1.3) scaled from 2 ms, capped below the timeout
    tail = np.minimum(2_000.0 * (1.0 + rng.pareto(1.3, size=count)), TIMEOUT_US - 1).astype(
        np.int64
    )
    rtt = np.where(rng.random(count) < config.tail_fraction, tail, body)
    rtt = np.maximum(rtt, 1)

    error = np.zeros(count, dtype=np.int32)
    failed = rng.random(count) < config.error_rate
    error[failed] = rng.integers(1, 6, size=int(failed.sum()), dtype=np.int32)
    rtt[failed & (error == 1)] = TIMEOUT_US  # code 1 = timeout
    return {"src": src, "dst": dst, "ts": ts, "rtt_us": rtt, "error_code": error}


def generate_batch(config: TelemetryConfig, batch_index: int, batch_size: int) -> pa.RecordBatch:
    """Records ``[batch_index*batch_size, (batch_index+1)*batch_size)`` of the stream."""
    if batch_index < 0 or batch_size < 0:
        raise ValueError(f"batch_index={batch_index} and batch_size={batch_size} must be >= 0")
    return generate_range(config, batch_index * batch_size, batch_size)


def generate_range(config: TelemetryConfig, first_record: int, count: int) -> pa.RecordBatch:
    """``count`` records starting at stream position ``first_record`` (same records however
    the stream is cut into ranges)."""
    if first_record < 0 or count < 0:
        raise ValueError(f"first_record={first_record} and count={count} must be >= 0")
    first_block = first_record // BLOCK_RECORDS
    last_block = max(first_block, (first_record + count - 1) // BLOCK_RECORDS)
    blocks = [_block_columns(config, b) for b in range(first_block, last_block + 1)]
    start = first_record - first_block * BLOCK_RECORDS
    cols = {
        name: np.concatenate([b[name] for b in blocks])[start : start + count] for name in blocks[0]
    }
    arrays = [
        pa.array(cols["src"], pa.int32()),
        pa.array(cols["dst"], pa.int32()),
        pa.array(cols["ts"], pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        pa.array(cols["rtt_us"], pa.int64()),
        pa.array(cols["error_code"], pa.int32()),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=TELEMETRY_SCHEMA)


def generate_table(config: TelemetryConfig, num_records: int, batch_size: int = 65_536) -> pa.Table:
    """The first ``num_records`` records of the stream, as batches of ``batch_size``."""
    batches = [
        generate_range(config, first, min(batch_size, num_records - first))
        for first in range(0, num_records, batch_size)
    ]
    return pa.Table.from_batches(batches, schema=TELEMETRY_SCHEMA)


def server_topology(config: TelemetryConfig) -> pa.Table:
    """Static server -> rack -> pod table (the dimension table monitoring queries join)."""
    server = np.arange(config.num_servers, dtype=np.int32)
    rack = (server // config.servers_per_rack).astype(np.int32)
    pod = (rack // config.racks_per_pod).astype(np.int32)
    return pa.Table.from_arrays([server, rack, pod], schema=TOPOLOGY_SCHEMA)
