"""TerseCades benchmark: default (lossless) codecs on three telemetry generators, one core.

Encode, decode and the filter + aggregate on encoded data run through the compiled kernels
(``streaming/tersecades/kernels``, numba, compiled once and cached on disk; the warm-up call
of each measurement loads them). Generators (all seeded):

* ``pingmesh`` — the project's generator (regular timestamps, uniform ids, heavy-tailed RTTs);
* ``bursty``  — a table shaped unlike it: timestamps with gaps of 0-300 us and 2 % jumps of
  10k-500k us; int32 server ids uniform over a few thousand and a destination correlated with
  its source; RTTs that are 70 % five recurring values, the rest lognormal with rare values
  near 2^40; int64 clock skew in +-2,000; int8 error codes 99.5 % zero.
* ``shifted`` — a held-out-style third shape tuned on by nobody: millisecond timestamps with
  duplicates and late rows (negative steps), 64-bit hashed host ids from a pool, int16 ports,
  bimodal RTTs with a -1 sentinel and rare values near 2^50, int16 error codes in bursts, a
  counter with resets, and decimal float64 byte rates.

Per generator:

1. Compression ratio (raw Arrow value bytes / encoded bytes) per column and for the whole
   table: TerseCades' default codecs next to zstd and lz4 on each column's bytes, Parquet with
   zstd (default encodings), DELTA_BINARY_PACKED, and BYTE_STREAM_SPLIT + zstd (pyarrow).
2. Encode and decode MB/s of raw data (decode = parse + CRC check + decode, and without CRC).
3. Filter + aggregate (count/sum/min/max of the RTT where error code = 0 and RTT < 2000) on the
   encoded batches (already verified, and including parse + CRC of the columns read) vs raw
   numpy on the Arrow batches, twice: per 1 s tumbling window (the group-by runs on window
   codes, so ``ts`` is encoded with ``TimestampWindow``; every other column keeps its default
   codec, in blocks of ``--window-block-size`` rows so most blocks lie in one window), and over
   the whole batch on the all-default spec. Variants run interleaved in a
   shuffled order each round; the numpy reference operators run alongside for comparison.
4. ``--spark``: the windowed query as a Structured Streaming query (local[1]) over encoded
   files (kernels in the Python workers) vs Spark over raw Parquet and over Parquet + zstd
   (``tersecades_spark.py``).

Every target of the issue is printed as met / missed. Timings are single-process numpy; on a
shared machine they are indicative only.

Run: ``python benchmarks/tersecades_bench.py [--rows 1000000] [--spark] [--out benchmarks/results]``
(``--smoke``: 20k rows, one repeat, to prove the script end to end — not a measurement).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streaming.common.telemetry import TelemetryConfig, generate_range  # noqa: E402
from streaming.tersecades import Predicate, TerseSpec, TimestampWindow, aggregate  # noqa: E402
from streaming.tersecades.operators import windowed_filter_aggregate  # noqa: E402
from streaming.tersecades.operators_reference import reference_aggregate  # noqa: E402
from streaming.tersecades.reference import numpy_windowed_filter_aggregate  # noqa: E402

MB = 1e6
TARGETS = {
    "whole-table ratio / Parquet+zstd": 1.0,
    "worst column ratio / best of (zstd, Parquet DELTA)": 0.9,
    "encode MB/s": 1000.0,
    "decode MB/s (parse + CRC + decode)": 2000.0,
    "windowed filter+aggregate speedup vs raw numpy (incl. parse + CRC)": 1.5,
    "plain filter+aggregate speedup vs raw numpy (incl. parse + CRC)": 1.5,
}
WINDOW_US = 1_000_000
OTHERS = ("zstd", "lz4", "parquet zstd", "parquet DELTA_BINARY_PACKED", "parquet BSS+zstd")


# ------------------------------------------------------------------------------ generators


def pingmesh(rows: int, batch_rows: int, seed: int = 0) -> list[pa.RecordBatch]:
    config = TelemetryConfig(seed=seed)
    return [
        generate_range(config, first, min(batch_rows, rows - first))
        for first in range(0, rows, batch_rows)
    ]


BURSTY_SCHEMA = pa.schema(
    [
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("src", pa.int32(), nullable=False),
        pa.field("dst", pa.int32(), nullable=False),
        pa.field("rtt_us", pa.int64(), nullable=False),
        pa.field("skew_us", pa.int64(), nullable=False),
        pa.field("error_code", pa.int8(), nullable=False),
    ]
)


def bursty(rows: int, batch_rows: int, seed: int = 1) -> list[pa.RecordBatch]:
    rng = np.random.default_rng(seed)
    gaps = rng.integers(0, 301, rows)
    jumps = rng.random(rows) < 0.02
    gaps[jumps] = rng.integers(10_000, 500_001, int(jumps.sum()))
    ts = 1_767_225_600_000_000 + np.cumsum(gaps)
    servers = 4_000
    src = rng.integers(0, servers, rows).astype(np.int32)
    # destinations mostly in the source's own pod of 40 servers, sometimes anywhere
    local = (src // 40) * 40 + rng.integers(0, 40, rows)
    dst = np.where(rng.random(rows) < 0.8, local, rng.integers(0, servers, rows)).astype(np.int32)
    recurring = np.array([180, 210, 250, 320, 410])
    rtt = np.where(
        rng.random(rows) < 0.7,
        recurring[rng.integers(0, 5, rows)],
        np.rint(rng.lognormal(6.0, 0.8, rows)).astype(np.int64) + 50,
    )
    huge = rng.random(rows) < 0.0005
    rtt[huge] = 2**40 - rng.integers(0, 2**20, int(huge.sum()))
    skew = np.clip(np.rint(rng.normal(-300, 600, rows)), -2_000, 2_000).astype(np.int64)
    errors = np.where(rng.random(rows) < 0.995, 0, rng.integers(1, 120, rows)).astype(np.int8)
    table = pa.table(
        [pa.array(ts).cast(BURSTY_SCHEMA.field("ts").type), src, dst, rtt, skew, errors],
        schema=BURSTY_SCHEMA,
    )
    return table.to_batches(max_chunksize=batch_rows)


SHIFTED_SCHEMA = pa.schema(
    [
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("host", pa.int64(), nullable=False),
        pa.field("port", pa.int16(), nullable=False),
        pa.field("rtt_us", pa.int64(), nullable=False),
        pa.field("error_code", pa.int16(), nullable=False),
        pa.field("counter", pa.int64(), nullable=False),
        pa.field("mb_per_s", pa.float64(), nullable=False),
    ]
)


def shifted(rows: int, batch_rows: int, seed: int = 2) -> list[pa.RecordBatch]:
    rng = np.random.default_rng(seed)
    steps = rng.choice(np.array([0, 0, 1000, 1000, 2000]), rows)  # ms clock, duplicates
    ts = 1_780_000_000_000_000 + np.cumsum(steps)
    late = rng.random(rows) < 0.01
    ts[late] -= rng.integers(1, 50, int(late.sum())) * 1000  # late rows: negative steps
    pool = rng.integers(-(2**63), 2**63 - 1, 500, dtype=np.int64)
    host = pool[np.minimum(rng.zipf(1.3, rows) - 1, 499)]
    port = rng.choice(np.array([443, 80, 8080, 9092, 6379, -1]), rows).astype(np.int16)
    rtt = np.where(
        rng.random(rows) < 0.6,
        rng.integers(20, 80, rows),
        np.rint(rng.lognormal(8.0, 1.0, rows)).astype(np.int64),
    )
    rtt[rng.random(rows) < 0.001] = -1  # a sentinel
    rtt[rng.random(rows) < 0.0002] = 2**50 + rng.integers(0, 1000)
    burst = np.repeat(rng.random(rows // 256 + 1) < 0.05, 256)[:rows]
    errors = np.where(burst & (rng.random(rows) < 0.5), rng.integers(1, 600, rows), 0)
    counter = np.cumsum(rng.integers(0, 5000, rows))
    resets = np.flatnonzero(rng.random(rows) < 0.0005)
    for r in resets.tolist():  # per reset (a few), never per row
        counter[r:] -= counter[r]
    rate = np.round(rng.gamma(2.0, 30.0, rows), 2)
    table = pa.table(
        [
            pa.array(ts).cast(SHIFTED_SCHEMA.field("ts").type),
            host,
            port,
            rtt,
            errors.astype(np.int16),
            counter,
            rate,
        ],
        schema=SHIFTED_SCHEMA,
    )
    return table.to_batches(max_chunksize=batch_rows)


GENERATORS = {"pingmesh": pingmesh, "bursty": bursty, "shifted": shifted}


# ----------------------------------------------------------------------------- compression


def _column(batches: list[pa.RecordBatch], name: str) -> pa.Array:
    array = pa.concat_arrays([b.column(name) for b in batches])
    return array.cast(pa.int64()) if pa.types.is_timestamp(array.type) else array


def _value_bytes(array: pa.Array) -> bytes:
    width = array.type.bit_width // 8
    return array.buffers()[1].to_pybytes()[
        array.offset * width : (array.offset + len(array)) * width
    ]


def _parquet_size(table: pa.Table, **options) -> int:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, **options)
    return len(buffer.getvalue())


def _other_sizes(table: pa.Table) -> dict[str, int]:
    """Sizes of one column (or a whole table) under the general-purpose baselines."""
    data = b"".join(_value_bytes(c.combine_chunks()) for c in table.columns)
    return {
        "zstd": pa.Codec("zstd").compress(data).size,
        "lz4": pa.Codec("lz4").compress(data).size,
        "parquet zstd": _parquet_size(table, compression="zstd"),
        "parquet DELTA_BINARY_PACKED": _parquet_size(  # floats: BYTE_STREAM_SPLIT (no DELTA)
            table,
            use_dictionary=False,
            column_encoding={
                f.name: "BYTE_STREAM_SPLIT"
                if pa.types.is_floating(f.type)
                else "DELTA_BINARY_PACKED"
                for f in table.schema
            },
            compression="none",
        ),
        "parquet BSS+zstd": _parquet_size(
            table, use_dictionary=False, column_encoding="BYTE_STREAM_SPLIT", compression="zstd"
        ),
    }


def compression(batches: list[pa.RecordBatch], spec: TerseSpec) -> dict:
    names = spec.raw_schema.names
    encoded = [spec.encode_batch(b) for b in batches]
    columns: dict = {}
    totals = dict.fromkeys(("tersecades", *OTHERS), 0)
    raw_total = 0
    for name in names:
        array = _column(batches, name)
        raw = len(_value_bytes(array))
        sizes = {"tersecades": sum(e.columns[name].encoded_bytes for e in encoded)}
        sizes.update(_other_sizes(pa.table({name: array})))
        columns[name] = {"raw_bytes": raw, **{k: raw / v for k, v in sizes.items()}}
        kinds = np.bincount(
            np.concatenate([e.columns[name].blocks.kind for e in encoded]), minlength=5
        )
        columns[name]["block kinds (FOR, DELTA, DOD, DICT, ESC)"] = kinds.tolist()
        raw_total += raw
        for k, v in sizes.items():
            totals[k] += v
    totals["tersecades"] += sum(4 * e.num_blocks for e in encoded)  # the row counts
    whole = pa.table({n: _column(batches, n) for n in names})
    whole_file = _other_sizes(whole)
    overall = {k: raw_total / v for k, v in totals.items()}
    overall["parquet zstd (one file, whole table)"] = raw_total / whole_file["parquet zstd"]
    overall["tersecades (Arrow IPC bytes)"] = raw_total / sum(e.to_arrow().nbytes for e in encoded)
    return {"columns": columns, "overall": overall}


# ------------------------------------------------------------------------------ throughput


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: loads the compiled kernels from their disk cache (or compiles them)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def throughput(batches: list[pa.RecordBatch], spec: TerseSpec, repeats: int) -> dict:
    raw_mb = sum(b.nbytes for b in batches) / MB
    encoded = [spec.encode(b) for b in batches]
    data = b"".join(_value_bytes(_column(batches, n)) for n in spec.raw_schema.names)
    lz4, zstd = pa.Codec("lz4"), pa.Codec("zstd")
    lz4_blob, zstd_blob = lz4.compress(data), zstd.compress(data)
    timings = {
        "tersecades encode": lambda: [spec.encode(b) for b in batches],
        "tersecades decode (parse + CRC + decode)": lambda: [spec.decode(e) for e in encoded],
        "tersecades decode (no CRC)": lambda: [spec.decode(e, verify=False) for e in encoded],
        "zstd compress": lambda: zstd.compress(data),
        "zstd decompress": lambda: zstd.decompress(zstd_blob, decompressed_size=len(data)),
        "lz4 compress": lambda: lz4.compress(data),
        "lz4 decompress": lambda: lz4.decompress(lz4_blob, decompressed_size=len(data)),
    }
    return {name: raw_mb / _median_seconds(fn, repeats) for name, fn in timings.items()}


# ----------------------------------------------------------------------------------- query

WHERE = (Predicate("error_code", "==", 0), Predicate("rtt_us", "<", 2_000))
QUERY_COLUMNS = ("rtt_us", "error_code")


def _raw_numpy(batch: pa.RecordBatch) -> tuple[int, int, int, int]:
    rtt = batch.column("rtt_us").to_numpy()
    errors = batch.column("error_code").to_numpy()
    picked = rtt[(errors == 0) & (rtt < 2_000)]
    if len(picked) == 0:
        return (0, 0, 0, 0)
    return (len(picked), int(picked.sum()), int(picked.min()), int(picked.max()))


def _encoded_answer(parsed, operator=aggregate) -> tuple[int, int, int, int]:
    rows = operator(parsed, "rtt_us", where=WHERE).rows()
    return rows[0][1:] if rows else (0, 0, 0, 0)


def query(batches: list[pa.RecordBatch], spec: TerseSpec, rounds: int) -> dict:
    """Ungrouped filter + aggregate on the all-default spec."""
    arrow = [spec.encode(b) for b in batches]
    parsed = [spec.parse(e) for e in arrow]
    return _race(
        {
            "raw numpy": lambda: [_raw_numpy(b) for b in batches],
            "encoded (verified at ingest)": lambda: [_encoded_answer(p) for p in parsed],
            "encoded, numpy reference operators (verified at ingest)": lambda: [
                _encoded_answer(p, reference_aggregate) for p in parsed
            ],
            "encoded incl. parse + CRC of the columns read": lambda: [
                _encoded_answer(spec.parse(e, columns=QUERY_COLUMNS)) for e in arrow
            ],
        },
        rounds,
    )


def windowed_query(batches: list[pa.RecordBatch], block_size: int, rounds: int) -> dict:
    """Per 1 s window filter + aggregate: ts as window codes, other columns default."""
    spec = TerseSpec(batches[0].schema, {"ts": TimestampWindow(WINDOW_US)}, block_size=block_size)
    arrow = [spec.encode(b) for b in batches]
    parsed = [spec.parse(e) for e in arrow]
    columns = ("ts", *QUERY_COLUMNS)
    return _race(
        {
            "raw numpy": lambda: [
                numpy_windowed_filter_aggregate(b, "rtt_us", "ts", WINDOW_US, WHERE)
                for b in batches
            ],
            "encoded (verified at ingest)": lambda: [
                windowed_filter_aggregate(p, "rtt_us", "ts", WHERE).rows() for p in parsed
            ],
            "encoded, numpy reference operators (verified at ingest)": lambda: [
                reference_aggregate(p, "rtt_us", where=WHERE, by="ts").rows() for p in parsed
            ],
            "encoded incl. parse + CRC of the columns read": lambda: [
                windowed_filter_aggregate(
                    spec.parse(e, columns=columns), "rtt_us", "ts", WHERE
                ).rows()
                for e in arrow
            ],
        },
        rounds,
    )


def _race(variants: dict, rounds: int) -> dict:
    answers = {name: fn() for name, fn in variants.items()}  # warm-up + correctness
    for name, answer in answers.items():
        if answer != answers["raw numpy"]:
            raise SystemExit(f"benchmark aborted: {name} disagrees with raw numpy")
    samples: dict[str, list[float]] = {name: [] for name in variants}
    rng = random.Random(0)
    for _ in range(rounds):
        order = list(variants)
        rng.shuffle(order)
        for name in order:
            start = time.perf_counter()
            variants[name]()
            samples[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(s) for name, s in samples.items()}
    return {
        "median_ms": {n: 1e3 * t for n, t in medians.items()},
        "speedup_vs_raw_numpy": {
            n: medians["raw numpy"] / t for n, t in medians.items() if n != "raw numpy"
        },
    }


# --------------------------------------------------------------------------------- targets


def targets(result: dict) -> dict:
    comp, tp, q = result["compression"], result["throughput_mb_s"], result["query"]
    wq = result["windowed_query"]
    worst_name, worst = min(
        (
            (name, row["tersecades"] / max(row["zstd"], row["parquet DELTA_BINARY_PACKED"]))
            for name, row in comp["columns"].items()
        ),
        key=lambda item: item[1],
    )
    values = {
        "whole-table ratio / Parquet+zstd": comp["overall"]["tersecades"]
        / comp["overall"]["parquet zstd (one file, whole table)"],
        "worst column ratio / best of (zstd, Parquet DELTA)": worst,
        "encode MB/s": tp["tersecades encode"],
        "decode MB/s (parse + CRC + decode)": tp["tersecades decode (parse + CRC + decode)"],
        "windowed filter+aggregate speedup vs raw numpy (incl. parse + CRC)": wq[
            "speedup_vs_raw_numpy"
        ]["encoded incl. parse + CRC of the columns read"],
        "plain filter+aggregate speedup vs raw numpy (incl. parse + CRC)": q[
            "speedup_vs_raw_numpy"
        ]["encoded incl. parse + CRC of the columns read"],
    }
    out = {
        name: {"value": v, "target": TARGETS[name], "met": bool(v >= TARGETS[name])}
        for name, v in values.items()
    }
    out["worst column ratio / best of (zstd, Parquet DELTA)"]["column"] = worst_name
    return out


# ---------------------------------------------------------------------------------- output


def write_markdown(result: dict, path: Path) -> None:
    lines = [
        "# TerseCades benchmark (default lossless codecs)",
        "",
        f"{result['rows']:,} rows per generator in batches of {result['batch_rows']:,}, blocks "
        f"of {result['block_size']:,} rows ({result['window_block_size']:,} for the windowed "
        f"query); {result['machine']}; load average "
        f"{result['load_before']} → {result['load_after']}. Timings are one process, one core; "
        "encoded operators through the compiled kernels.",
        "",
    ]
    for gen, r in result["generators"].items():
        comp = r["compression"]
        codecs = ("tersecades", *OTHERS)
        lines += [
            f"## {gen}",
            "",
            "### Compression ratio (raw bytes / encoded bytes)",
            "",
            "| column | " + " | ".join(codecs) + " | block kinds (FOR, DELTA, DOD, DICT, ESC) |",
            "| --- | " + " | ".join("---:" for _ in codecs) + " | --- |",
        ]
        for name, row in comp["columns"].items():
            cells = " | ".join(f"{row[c]:.2f}" for c in codecs)
            lines.append(
                f"| {name} | {cells} | {row['block kinds (FOR, DELTA, DOD, DICT, ESC)']} |"
            )
        overall = " | ".join(f"**{comp['overall'][c]:.2f}**" for c in codecs)
        lines += [
            f"| **whole table** (sum of columns) | {overall} | |",
            "",
            f"Parquet + zstd as one file of the whole table: "
            f"{comp['overall']['parquet zstd (one file, whole table)']:.2f}x; TerseCades as real "
            f"Arrow IPC batches: {comp['overall']['tersecades (Arrow IPC bytes)']:.2f}x.",
            "",
            "### Throughput (MB/s of raw data, one core)",
            "",
            "| operation | MB/s |",
            "| --- | ---: |",
        ]
        lines += [f"| {k} | {v:,.0f} |" for k, v in r["throughput_mb_s"].items()]
        for key, title in (
            ("windowed_query", "per 1 s window (ts as window codes, other columns default)"),
            ("query", "whole batch, all-default spec"),
        ):
            q = r[key]
            lines += [
                "",
                f"### Filter + aggregate {title}",
                "",
                "error_code = 0 and rtt_us < 2000: count, sum, min, max of rtt_us.",
                "",
                "| variant | median ms | speedup vs raw numpy |",
                "| --- | ---: | ---: |",
            ]
            for k, v in q["median_ms"].items():
                speed = q["speedup_vs_raw_numpy"].get(k)
                lines.append(f"| {k} | {v:.2f} | {'' if speed is None else f'{speed:.2f}x'} |")
        lines += [
            "",
            "### Targets",
            "",
            "| target | value | needed | met |",
            "| --- | ---: | ---: | --- |",
        ]
        for name, t in r["targets"].items():
            extra = f" ({t['column']})" if "column" in t else ""
            lines.append(
                f"| {name}{extra} | {t['value']:.2f} | {t['target']:g} | {'yes' if t['met'] else '**no**'} |"
            )
        lines.append("")
    if "spark" in result:
        lines += [
            "## Spark: the windowed query as a Structured Streaming query (local[1])",
            "",
            "One file per batch, maxFilesPerTrigger=1, availableNow, memory sink; median of "
            "timed runs after a warm-up run. TerseCades: encoded blocks, kernels in the Python "
            "workers (mapInArrow); raw: Spark over uncompressed plain Parquet; Parquet+zstd: "
            "Spark over zstd Parquet. Answers checked equal.",
            "",
            "| generator | variant | seconds | MB/s of raw data | speed vs Spark raw | bytes on disk |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
        ]
        for gen, r in result["spark"].items():
            for variant, seconds in r["seconds"].items():
                lines.append(
                    f"| {gen} | {variant} | {seconds:.2f} | {r['mb_s'][variant]:,.1f} | "
                    f"{r['speedup_vs_spark_raw'][variant]:.2f}x | {r['bytes_on_disk'][variant]:,} |"
                )
        lines.append("")
    path.write_text("\n".join(lines) + "\n")


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gens = list(result["generators"])
    fig, axes = plt.subplots(1, len(gens) + 1, figsize=(7 * len(gens) + 5, 5.5))
    codecs = (
        "tersecades",
        "zstd",
        "parquet zstd",
        "parquet DELTA_BINARY_PACKED",
        "parquet BSS+zstd",
    )
    for ax, gen in zip(axes, gens):
        comp = result["generators"][gen]["compression"]
        columns = list(comp["columns"])
        x = np.arange(len(columns) + 1)
        width = 0.8 / len(codecs)
        for i, codec in enumerate(codecs):
            values = [comp["columns"][c][codec] for c in columns] + [comp["overall"][codec]]
            ax.bar(x + i * width, values, width, label=codec)
        ax.set_xticks(x + 0.4 - width / 2, [*columns, "table"])
        ax.set_yscale("log")
        ax.set_ylabel("compression ratio (log)")
        ax.set_title(f"{gen}: ratio per column")
        ax.legend(fontsize=7)
    ax = axes[-1]
    labels, values = [], []
    for gen in gens:
        tp = result["generators"][gen]["throughput_mb_s"]
        for key in ("tersecades encode", "tersecades decode (parse + CRC + decode)"):
            labels.append(f"{gen}: {key.split(' (')[0].replace('tersecades ', '')}")
            values.append(tp[key])
    ax.barh(labels, values, color="#2a7")
    ax.axvline(TARGETS["encode MB/s"], color="black", linestyle=":", linewidth=1)
    ax.axvline(
        TARGETS["decode MB/s (parse + CRC + decode)"], color="black", linestyle="--", linewidth=1
    )
    ax.set_xlabel("MB/s of raw data (dotted: encode target, dashed: decode target)")
    ax.set_title("Throughput, one core")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-rows", type=int, default=500_000)
    parser.add_argument("--block-size", type=int, default=None, help="default: TerseSpec's")
    parser.add_argument(
        "--window-block-size", type=int, default=4_096, help="rows per block of the windowed spec"
    )
    parser.add_argument("--repeats", type=int, default=5, help="throughput repeats")
    parser.add_argument("--rounds", type=int, default=21, help="interleaved query rounds")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--smoke", action="store_true", help="20k rows, 1 repeat, 3 rounds")
    parser.add_argument(
        "--spark",
        action="store_true",
        help="also run the windowed query in Spark: encoded files vs raw Parquet vs Parquet+zstd",
    )
    parser.add_argument("--spark-repeats", type=int, default=3, help="timed runs per variant")
    parser.add_argument(
        "--generators", default=",".join(GENERATORS), help="comma-separated subset to run"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.rows, args.batch_rows, args.repeats, args.rounds = 20_000, 10_000, 1, 3
        args.spark_repeats = 1
    chosen = [g for g in args.generators.split(",") if g]
    unknown = [g for g in chosen if g not in GENERATORS]
    if unknown:
        parser.error(f"unknown generators {unknown}; choose from {sorted(GENERATORS)}")

    if args.block_size is None:
        args.block_size = TerseSpec(pa.schema([])).block_size
    load_before = os.getloadavg()
    result: dict = {
        "rows": args.rows,
        "batch_rows": args.batch_rows,
        "block_size": args.block_size,
        "window_block_size": args.window_block_size,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}",
        "load_before": [round(v, 1) for v in load_before],
        "generators": {},
    }
    generated = {}
    for gen in chosen:
        batches = GENERATORS[gen](args.rows, args.batch_rows)
        generated[gen] = batches
        spec = TerseSpec(batches[0].schema, block_size=args.block_size)
        r = {
            "compression": compression(batches, spec),
            "throughput_mb_s": throughput(batches, spec, args.repeats),
            "windowed_query": windowed_query(batches, args.window_block_size, args.rounds),
            "query": query(batches, spec, args.rounds),
        }
        r["targets"] = targets(r)
        result["generators"][gen] = r
    if args.spark:
        from tersecades_spark import spark_comparison

        result["spark"] = spark_comparison(
            generated, WINDOW_US, args.window_block_size, WHERE, args.spark_repeats
        )
    result["load_after"] = [round(v, 1) for v in os.getloadavg()]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tersecades.json").write_text(json.dumps(result, indent=2) + "\n")
    write_markdown(result, args.out / "tersecades.md")
    plot(result, args.out / "tersecades.png")
    print((args.out / "tersecades.md").read_text())
    for gen, r in result["generators"].items():
        for name, t in r["targets"].items():
            print(
                f"{gen}: {name}: {t['value']:.2f} (needs {t['target']:g}) {'MET' if t['met'] else 'MISSED'}"
            )
    for gen, r in result.get("spark", {}).items():
        for variant, speed in r["speedup_vs_spark_raw"].items():
            print(f"{gen}: Spark {variant}: {r['mb_s'][variant]:,.1f} MB/s, {speed:.2f}x Spark raw")
    return 0


if __name__ == "__main__":
    sys.exit(main())
