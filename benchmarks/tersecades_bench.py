"""TerseCades benchmark on the Pingmesh telemetry generator (pure Python, no JVM).

1. Compression ratio per column and overall (raw Arrow buffer bytes / encoded bytes), for the
   lossless spec (Base-Delta with byte lanes everywhere; and with bit lanes) and the lossy one (timestamps keep only 1 s window
   membership), next to general codecs on the same column bytes: lz4 and zstd (pyarrow), and
   Parquet files written with DELTA_BINARY_PACKED or BYTE_STREAM_SPLIT (uncompressed, and
   BYTE_STREAM_SPLIT + zstd). Also the encoded batches' real Arrow IPC size.
2. Encode and decode throughput in MB/s of raw data (decode = parse + CRC verify + decode),
   with lz4/zstd compress/decompress for reference.
3. The same query — per 1 s window: count/sum/min/max/avg of rtt_us where error_code = 0 and
   rtt_us < 2000 — on raw Arrow data (Arrow compute kernels; numpy) and on encoded data
   (already verified, byte lanes and bit lanes; and including parse + CRC verification of every
   block), batch by batch
   as a stream processor would. Variants run interleaved in a shuffled order each round, and
   the median of the rounds is reported, because the machine is shared (load average logged).

Run: ``python benchmarks/tersecades_bench.py [--rows 2000000] [--out benchmarks/results]``
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

from streaming.common.telemetry import TELEMETRY_SCHEMA, TelemetryConfig, generate_range  # noqa: E402
from streaming.tersecades import BaseDelta, Predicate, TerseSpec, TimestampWindow  # noqa: E402
from streaming.tersecades.operators import windowed_filter_aggregate  # noqa: E402
from streaming.tersecades.reference import (  # noqa: E402
    arrow_windowed_filter_aggregate,
    numpy_windowed_filter_aggregate,
)

MB = 1e6
WINDOW_US = 1_000_000
WHERE = (Predicate("error_code", "==", 0), Predicate("rtt_us", "<", 2_000))
QUERY_COLUMNS = ("ts", "rtt_us", "error_code")
INTEGER_COLUMNS = TELEMETRY_SCHEMA.names  # all five telemetry columns are integer-typed


def column_bytes(batches: list[pa.RecordBatch], name: str) -> bytes:
    """The raw values buffer of a column (what a general codec would compress)."""
    array = pa.concat_arrays([b.column(name) for b in batches])
    return array.buffers()[1].to_pybytes()[: len(array) * array.type.bit_width // 8]


def parquet_size(array: pa.Array, encoding: str, compression: str = "none") -> int:
    buffer = io.BytesIO()
    pq.write_table(
        pa.table({"c": array}),
        buffer,
        use_dictionary=False,
        column_encoding=encoding,
        compression=compression,
    )
    return len(buffer.getvalue())


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def compression(batches, specs) -> dict:
    out: dict = {"columns": {}, "overall": {}}
    raw_total = {name: sum(b.column(name).nbytes for b in batches) for name in INTEGER_COLUMNS}
    for label, spec in specs.items():
        encoded = [spec.encode_batch(b) for b in batches]
        ipc = sum(e.to_arrow().nbytes for e in encoded)
        per_column = {
            name: sum(e.columns[name].encoded_bytes for e in encoded) for name in INTEGER_COLUMNS
        }
        for name in INTEGER_COLUMNS:
            out["columns"].setdefault(name, {"raw_bytes": raw_total[name]})[label] = (
                raw_total[name] / per_column[name]
            )
        total_raw = sum(raw_total.values())
        out["overall"][label] = total_raw / (sum(per_column.values()) + 4 * len(encoded[0].rows))
        out["overall"][f"{label} (Arrow IPC bytes)"] = total_raw / ipc
    for name in INTEGER_COLUMNS:
        data = column_bytes(batches, name)
        array = pa.concat_arrays([b.column(name) for b in batches])
        if pa.types.is_timestamp(array.type):
            array = array.cast(pa.int64())
        sizes = {
            "lz4": pa.Codec("lz4").compress(data).size,
            "zstd": pa.Codec("zstd").compress(data).size,
            "parquet DELTA_BINARY_PACKED": parquet_size(array, "DELTA_BINARY_PACKED"),
            "parquet BYTE_STREAM_SPLIT": parquet_size(array, "BYTE_STREAM_SPLIT"),
            "parquet BYTE_STREAM_SPLIT+zstd": parquet_size(array, "BYTE_STREAM_SPLIT", "zstd"),
        }
        for codec, size in sizes.items():
            out["columns"][name][codec] = len(data) / size
            out["overall"][codec] = out["overall"].get(codec, 0) + size
    total = sum(out["columns"][n]["raw_bytes"] for n in INTEGER_COLUMNS)
    for codec in ("lz4", "zstd", *[c for c in out["overall"] if c.startswith("parquet")]):
        out["overall"][codec] = total / out["overall"][codec]
    return out


def throughput(batches, spec, repeats: int) -> dict:
    raw_mb = sum(b.nbytes for b in batches) / MB
    encoded = [spec.encode(b) for b in batches]
    data = b"".join(column_bytes(batches, n) for n in INTEGER_COLUMNS)
    lz4, zstd = pa.Codec("lz4"), pa.Codec("zstd")
    lz4_blob, zstd_blob = lz4.compress(data), zstd.compress(data)
    timings = {
        "tersecades encode": median_time(lambda: [spec.encode(b) for b in batches], repeats),
        "tersecades decode (parse+CRC+decode)": median_time(
            lambda: [spec.decode(e) for e in encoded], repeats
        ),
        "tersecades decode (no CRC)": median_time(
            lambda: [spec.decode(e, verify=False) for e in encoded], repeats
        ),
        "lz4 compress": median_time(lambda: lz4.compress(data), repeats),
        "lz4 decompress": median_time(
            lambda: lz4.decompress(lz4_blob, decompressed_size=len(data)), repeats
        ),
        "zstd compress": median_time(lambda: zstd.compress(data), repeats),
        "zstd decompress": median_time(
            lambda: zstd.decompress(zstd_blob, decompressed_size=len(data)), repeats
        ),
    }
    return {name: raw_mb / seconds for name, seconds in timings.items()}


def query(batches, spec, bits_spec, rounds: int) -> dict:
    encoded_arrow = [spec.encode(b) for b in batches]
    parsed = [spec.parse(e) for e in encoded_arrow]
    parsed_bits = [bits_spec.encode_batch(b) for b in batches]
    variants = {
        "raw: Arrow compute": lambda: [
            arrow_windowed_filter_aggregate(b, "rtt_us", "ts", WINDOW_US, WHERE) for b in batches
        ],
        "raw: numpy": lambda: [
            numpy_windowed_filter_aggregate(b, "rtt_us", "ts", WINDOW_US, WHERE) for b in batches
        ],
        "encoded (verified at ingest)": lambda: [
            windowed_filter_aggregate(p, "rtt_us", "ts", WHERE).rows() for p in parsed
        ],
        "encoded, bit lanes (verified at ingest)": lambda: [
            windowed_filter_aggregate(p, "rtt_us", "ts", WHERE).rows() for p in parsed_bits
        ],
        "encoded incl. parse + CRC of the 3 columns read": lambda: [
            windowed_filter_aggregate(
                spec.parse(e, columns=QUERY_COLUMNS), "rtt_us", "ts", WHERE
            ).rows()
            for e in encoded_arrow
        ],
    }
    answers = {name: fn() for name, fn in variants.items()}  # warm-up + correctness
    reference = answers["raw: Arrow compute"]
    for name, answer in answers.items():
        if answer != reference:
            raise SystemExit(f"benchmark aborted: {name} disagrees with the raw Arrow answer")
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
    best_raw = min(medians["raw: Arrow compute"], medians["raw: numpy"])
    return {
        "median_ms": {n: 1e3 * t for n, t in medians.items()},
        "p90_ms": {n: 1e3 * float(np.percentile(s, 90)) for n, s in samples.items()},
        "speedup_vs_best_raw": {
            n: best_raw / medians[n] for n in variants if n.startswith("encoded")
        },
        "speedup_vs_arrow": {
            n: medians["raw: Arrow compute"] / medians[n]
            for n in variants
            if n.startswith("encoded")
        },
        "windows": sum(len(a) for a in reference),
    }


def write_markdown(result: dict, path: Path) -> None:
    comp = result["compression"]
    codecs = [c for c in next(iter(comp["columns"].values())) if c != "raw_bytes"]
    lines = [
        "# TerseCades benchmark",
        "",
        f"{result['rows']:,} telemetry records in batches of {result['batch_rows']:,}, "
        f"blocks of {result['block_size']:,} rows; load average {result['load_before']} → "
        f"{result['load_after']} (shared 2-core machine).",
        "",
        "## Compression ratio (raw Arrow bytes / encoded bytes)",
        "",
        "| column | " + " | ".join(codecs) + " |",
        "| --- | " + " | ".join("---:" for _ in codecs) + " |",
    ]
    for name, row in comp["columns"].items():
        lines.append(f"| {name} | " + " | ".join(f"{row[c]:.2f}" for c in codecs) + " |")
    lines.append(
        "| **overall** | " + " | ".join(f"**{comp['overall'][c]:.2f}**" for c in codecs) + " |"
    )
    lines += [
        "",
        "Encoded batches as real Arrow IPC record batches: "
        + ", ".join(
            f"{k.split(' (')[0]} {v:.2f}x" for k, v in comp["overall"].items() if "IPC" in k
        ),
        "",
    ]
    lines += ["## Throughput (MB/s of raw data)", "", "| operation | MB/s |", "| --- | ---: |"]
    lines += [f"| {k} | {v:,.0f} |" for k, v in result["throughput_mb_s"].items()]
    q = result["query"]
    lines += [
        "",
        "## Windowed filter + aggregate, raw vs encoded (same run, interleaved)",
        "",
        "| variant | median ms | p90 ms |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {k} | {v:.2f} | {q['p90_ms'][k]:.2f} |" for k, v in q["median_ms"].items()]
    lines += [""] + [
        f"- {k}: **{v:.2f}x** faster than the best raw baseline, "
        f"{q['speedup_vs_arrow'][k]:.2f}x faster than Arrow compute"
        for k, v in q["speedup_vs_best_raw"].items()
    ]
    lines += [
        "",
        "## Reading the numbers",
        "",
        "- Byte lanes (1/2/4/8-byte deltas, the paper's SIMD-friendly layout) are what the",
        "  operators run on. `src`/`dst` are uniform server ids in [0, 1000): ~10 bits of",
        "  entropy in a 32-bit int, so no lossless codec exceeds 3.2x on them, and a byte lane",
        "  stores them in 16 bits (2x). Bit lanes (any width 0-64) reach 3.16x there and lift",
        "  the lossless total above 6x, at the cost of an unpack before operators touch them.",
        "- `rtt_us` body values span ~100-1700 us (11 bits); the 2% heavy tail is stored as",
        "  exceptions instead of widening every block.",
        "- `encoded incl. parse + CRC` is the cost a stream stage pays when it receives encoded",
        "  blocks from upstream and re-verifies them (only the 3 columns the query reads).",
    ]
    path.write_text("\n".join(lines) + "\n")


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    comp = result["compression"]
    columns = list(comp["columns"])
    codecs = [c for c in next(iter(comp["columns"].values())) if c != "raw_bytes"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 5.5), gridspec_kw={"width_ratios": [3, 1]})
    width = 0.8 / len(codecs)
    x = np.arange(len(columns) + 1)
    for i, codec in enumerate(codecs):
        values = [comp["columns"][c][codec] for c in columns] + [comp["overall"][codec]]
        left.bar(x + i * width, values, width, label=codec)
    left.set_xticks(x + 0.4 - width / 2, [*columns, "overall"])
    left.set_yscale("log")
    left.axhline(6, color="black", linestyle=":", linewidth=1)
    left.set_ylabel("compression ratio (log)")
    left.set_title("Compression ratio per telemetry column (dotted: 6x target)")
    left.legend(fontsize=7, ncol=2)
    q = result["query"]["median_ms"]
    right.barh(list(q), list(q.values()), color=["#888", "#aaa", "#2a7", "#7c5", "#5b9"])
    right.set_xlabel("median ms for all batches")
    right.set_title("Windowed filter + aggregate")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--batch-rows", type=int, default=500_000)
    parser.add_argument("--block-size", type=int, default=4_096)
    parser.add_argument("--repeats", type=int, default=5, help="throughput repeats")
    parser.add_argument("--rounds", type=int, default=21, help="interleaved query rounds")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    config = TelemetryConfig(seed=0)
    batches = [
        generate_range(config, first, min(args.batch_rows, args.rows - first))
        for first in range(0, args.rows, args.batch_rows)
    ]
    lossless = TerseSpec(TELEMETRY_SCHEMA, block_size=args.block_size)
    lossy = TerseSpec(
        TELEMETRY_SCHEMA, {"ts": TimestampWindow(WINDOW_US)}, block_size=args.block_size
    )
    bit_lanes = {n: BaseDelta(bits=True) for n in INTEGER_COLUMNS}
    lossless_bits = TerseSpec(TELEMETRY_SCHEMA, bit_lanes, block_size=args.block_size)
    lossy_bits = TerseSpec(
        TELEMETRY_SCHEMA,
        {**bit_lanes, "ts": TimestampWindow(WINDOW_US)},
        block_size=args.block_size,
    )
    specs = {
        "tersecades lossless": lossless,
        "tersecades lossless, bit lanes": lossless_bits,
        "tersecades ts=1s window": lossy,
    }
    result = {
        "rows": args.rows,
        "batch_rows": args.batch_rows,
        "block_size": args.block_size,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}",
        "load_before": [round(v, 1) for v in load_before],
        "compression": compression(batches, specs),
        "throughput_mb_s": {
            **throughput(batches, lossless, args.repeats),
            **{
                f"{k} (bit lanes)": v
                for k, v in throughput(batches, lossless_bits, args.repeats).items()
                if k.startswith("tersecades")
            },
        },
        "query": query(batches, lossy, lossy_bits, args.rounds),
        "load_after": [round(v, 1) for v in os.getloadavg()],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tersecades.json").write_text(json.dumps(result, indent=2) + "\n")
    write_markdown(result, args.out / "tersecades.md")
    plot(result, args.out / "tersecades.png")
    print((args.out / "tersecades.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
