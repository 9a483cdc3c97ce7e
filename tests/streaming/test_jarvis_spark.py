"""Jarvis end to end: split query in Spark == unsplit query in Spark == DuckDB (exact)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from streaming.common.telemetry import TelemetryConfig, generate_range, server_topology
from streaming.jarvis.harness import AgentSupervisor
from streaming.jarvis.lifecycle import RUN_PREFIX, descendants, process_alive
from streaming.jarvis.query import columns_from_telemetry, default_query
from streaming.jarvis.runtime import SourceRuntime
from streaming.jarvis.source import JarvisSpoolDataSource
from streaming.jarvis.spark_ops import finish_query, run_unsplit, topology_frame
from streaming.jarvis.spool import list_entries, read_meta, write_entry

pytestmark = pytest.mark.spark

SHAPE = {"num_servers": 300, "error_rate": 0.05, "records_per_second": 50_000}
QUERY = default_query(window_us=100_000, level="rack")
KEYS = list(QUERY.aggregate.keys)
COLUMNS = [*KEYS, *QUERY.aggregate.agg_columns]


def _raw(seed: int, first: int, count: int) -> pa.Table:
    cols = columns_from_telemetry(generate_range(TelemetryConfig(seed=seed, **SHAPE), first, count))
    return pa.table(cols)


def _duckdb(raw: pa.Table, topology: pa.Table) -> list[tuple]:
    con = duckdb.connect()
    con.register("raw", raw)
    con.register("topo", topology)
    rows = con.execute(
        """
        SELECT r.ts_us - r.ts_us % 100000 AS window_start, s.rack AS src_rack,
               d.rack AS dst_rack,
               count(r.rtt_us) AS cnt, CAST(sum(r.rtt_us) AS BIGINT) AS rtt_us_sum,
               min(r.rtt_us) AS rtt_us_min, max(r.rtt_us) AS rtt_us_max
        FROM raw r JOIN topo s ON r.src = s.server JOIN topo d ON r.dst = d.server
        WHERE r.error_code = 0
        GROUP BY ALL ORDER BY ALL
        """
    ).fetchall()
    return [tuple(int(v) for v in row) for row in rows]


def _spark_rows(df) -> list[tuple]:
    return sorted(tuple(int(v) for v in row) for row in df.select(*COLUMNS).collect())


def _finish_spool(spark, spool, name: str) -> list[tuple]:
    spark.dataSource.register(JarvisSpoolDataSource)
    envelope = (
        spark.readStream.format("jarvis_spool")
        .option("path", str(spool))
        .option("query", json.dumps(QUERY.to_spec()))
        .load()
    )
    topology = topology_frame(spark, server_topology(TelemetryConfig(**SHAPE)))
    query = (
        finish_query(envelope, QUERY, topology)
        .writeStream.format("memory")
        .queryName(name)
        .outputMode("complete")
        .trigger(availableNow=True)
        .start()
    )
    try:
        query.awaitTermination(120)
        assert query.exception() is None
    finally:
        query.stop()
    return _spark_rows(spark.table(name))


def test_split_query_equals_unsplit_spark_and_duckdb(spark, stop_streams, tmp_path):
    topology = server_topology(TelemetryConfig(**SHAPE))
    tables = {"topology": topology}
    plans = [(0.0, 0.0, 0.0, 0.0), (1.0, 0.5, 0.3, 0.8), (1.0, 1.0, 1.0, 1.0), (0.7, 1.0, 0.0, 1.0)]
    raws = []
    for agent, factors in enumerate(plans):
        runtime = SourceRuntime(QUERY, tables, "fixed", 1.0, 1e9, factors)
        for seq, first in enumerate(range(0, 15_000, 5_000)):
            raw = _raw(agent, first, 5_000)
            raws.append(raw)
            runtime.process_chunk({n: raw.column(n).to_numpy() for n in raw.column_names})
            write_entry(tmp_path, agent, seq, first, first + 5_000, runtime.flush()[0])
    all_raw = pa.concat_tables(raws)

    split = _finish_spool(spark, tmp_path, "jarvis_split")
    unsplit = _spark_rows(
        run_unsplit(
            spark.createDataFrame(all_raw.to_pandas()), QUERY, topology_frame(spark, topology)
        )
    )
    reference = _duckdb(all_raw, topology)
    assert len(reference) > 50
    assert split == unsplit == reference


def _wait_for(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_killed_agent_is_reported_and_not_double_counted(spark, stop_streams, tmp_path):
    """Agent 0 is SIGKILLed mid-stream and restarted; agent 1 emits malformed records."""
    # 30,000 records: enough that the kill after the first entry is mid-stream, few enough
    # that the restarted agent finishes well inside its 60 s max runtime
    total = 30_000
    sup = AgentSupervisor(
        tmp_path,
        QUERY,
        strategy="jarvis",
        # 0.2 core: this row tests the restart, not the throughput (the tiny-budget stall it
        # once met at 0.01-0.05 core has its own row in test_jarvis_agents.py)
        cpu_budget=0.2,
        bandwidth=2e6,
        interval_s=0.2,
        chunk_records=4_096,
        max_records=total,
        max_runtime_s=60,
        telemetry=SHAPE,
    )
    try:
        sup.start(0)
        sup.start(1, corrupt_every=997)
        sup.go()
        # killed once its first entry is committed (mid-stream: 30,000 records take it far
        # longer): waiting for two entries within 30 s failed in a fresh-clone CI run here, the
        # agent's start-up and first flush at 0.05 core on a loaded machine taking longer
        assert _wait_for(lambda: len(list_entries(sup.spool, 0)) >= 1, 60)
        sup.kill(0)
        deaths = sup.check(restart=True)
        assert [(d.agent, d.returncode, d.restarted) for d in deaths] == [(0, -9, True)]
        # the restarted agent may run its whole max_runtime_s (60 s) from its restart, plus
        # its start-up: waiting only 60 s failed once in a fresh-clone CI run here
        assert sup.wait(90), "agents did not finish"
        assert all(p.returncode == 0 for p in sup.procs.values())
    finally:
        sup.stop_all(timeout_s=5)

    malformed = 0
    for agent in (0, 1):
        metas = [read_meta(sup.spool, agent, s) for s in list_entries(sup.spool, agent)]
        assert [m.seq for m in metas] == list(range(len(metas)))
        ranges = [(m.first_record, m.last_record) for m in metas]
        assert ranges[0][0] == 0 and ranges[-1][1] == total
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))  # contiguous, no overlap
        malformed += sum(m.malformed_skipped for m in metas)
    assert malformed == len(range(0, total, 997))
    assert not any(p.name.startswith(".tmp") for p in (sup.spool / "agent000").iterdir())

    raw0 = _raw(1000, 0, total)  # the supervisor seeds agent a with 1000 + a
    raw1 = _raw(1001, 0, total)
    keep = np.arange(total) % 997 != 0
    raw1 = raw1.filter(pa.array(keep))
    topology = server_topology(TelemetryConfig(**SHAPE))
    reference = _duckdb(pa.concat_tables([raw0, raw1]), topology)
    assert _finish_spool(spark, sup.spool, "jarvis_restart") == reference
    assert not os.path.exists(tmp_path / "spool" / "agent000" / ".tmp-0000000000")


@pytest.mark.slow
def test_sigkilled_spark_run_leaves_no_process_and_no_work_dir(tmp_path):
    """The benchmark's shape: the killed process is also the Spark driver. Its JVM and Python
    workers, the agents and the watchdog must all go, and the work directory too (the JVM
    may still be writing the query's checkpoint into it while it shuts down)."""
    script = textwrap.dedent(
        f"""
        import blaze
        from streaming.jarvis.harness import RunSpec, run_experiment
        spark = blaze.session({{"spark.master": "local[2]", "spark.ui.enabled": "false",
                                "spark.sql.shuffle.partitions": "2"}}, app_name="jarvis-kill")
        spec = RunSpec("jarvis", 2, 300.0, 0.01, 1e6, interval_s=0.2, telemetry={SHAPE!r})
        run_experiment(spec, spark=spark, base_dir={str(tmp_path)!r})
        """
    )
    run = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        # wait until Spark has committed a batch: its checkpoint is being written
        while not any(tmp_path.glob(f"{RUN_PREFIX}{run.pid}-*/checkpoint/commits/0")):
            assert run.poll() is None, "the run ended early"
            assert time.monotonic() < deadline, "Spark never committed a batch"
            time.sleep(0.5)
        (workdir,) = tmp_path.glob(f"{RUN_PREFIX}{run.pid}-*")
        started = descendants(run.pid)
        assert len(started) >= 4  # JVM, watchdog, two agents (and Python workers)
        run.send_signal(signal.SIGKILL)
        run.wait(10)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (
            workdir.exists() or any(process_alive(p, t) for p, t in started.items())
        ):
            time.sleep(0.5)
        left = [
            Path(f"/proc/{p}/cmdline").read_bytes()[:120]
            for p, t in started.items()
            if process_alive(p, t)
        ]
        assert not left, f"left running after SIGKILL: {left}"
        assert not workdir.exists(), "work directory survived the SIGKILL"
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(10)
