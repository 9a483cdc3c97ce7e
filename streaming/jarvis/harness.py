"""Run N agent processes against one Spark streaming query and measure what happened.

The harness starts each agent as ``python -m streaming.jarvis.agent`` (a separate OS
process in its own session, so a signal meant for the harness's terminal group reaches the
harness, which stops its agents in order), changes budgets through the agents' control files
on a schedule, watches for agents that die (reported as :class:`AgentDeath`; optionally
restarted, and the spool's resume rule guarantees nothing is shipped twice), and stops
everything it started: a stop flag first, then SIGTERM, then SIGKILL by pid. Nothing
survives a *killed* harness either (:mod:`streaming.jarvis.lifecycle`): agents die with
their parent, and each run's work directory has a watchdog that removes it.

All traffic is local: agents write to a spool directory; Spark reads it through the
``jarvis_spool`` Python data source. Nothing listens on a network port.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from streaming.jarvis.agent import AgentConfig
from streaming.jarvis.lifecycle import RunGuard, default_base
from streaming.jarvis.query import Query, default_query
from streaming.jarvis.spool import list_entries, read_meta

__all__ = ["AgentDeath", "AgentSupervisor", "RunResult", "RunSpec", "run_experiment"]


@dataclass(frozen=True)
class AgentDeath:
    agent: int
    returncode: int
    at_s: float  # seconds since the supervisor started
    restarted: bool


class AgentSupervisor:
    """Start, watch, re-budget and stop agent processes."""

    def __init__(self, workdir: str | Path, query: Query, **agent_kwargs: Any) -> None:
        self.workdir = Path(workdir)
        self.spool = self.workdir / "spool"
        self.spool.mkdir(parents=True, exist_ok=True)
        self.query = query
        self.agent_kwargs = agent_kwargs
        self.procs: dict[int, subprocess.Popen] = {}
        self.deaths: list[AgentDeath] = []
        self.budgets: dict[int, tuple[float, float]] = {}
        self.going = False
        self.started = time.monotonic()

    def paths(self, agent: int) -> dict[str, Path]:
        base = self.workdir / f"agent{agent:03d}"
        base.mkdir(exist_ok=True)
        return {
            "config": base / "config.json",
            "control": base / "control.json",
            "stats": base / "stats.jsonl",
            "log": base / "agent.log",
        }

    def start(self, agent: int, **overrides: Any) -> subprocess.Popen:
        paths = self.paths(agent)
        kwargs = {**self.agent_kwargs, **overrides}
        telemetry = dict(kwargs.pop("telemetry", {}))
        telemetry.setdefault("seed", 1000 + agent)
        cfg = AgentConfig(
            agent=agent,
            spool=str(self.spool),
            control=str(paths["control"]),
            stats=str(paths["stats"]),
            query=self.query.to_spec(),
            telemetry=telemetry,
            parent_pid=os.getpid(),
            **kwargs,
        )
        cfg.save(paths["config"])
        if not paths["control"].exists():
            self.set_budget(agent, cfg.cpu_budget, cfg.bandwidth)
        log = paths["log"].open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "streaming.jarvis.agent", str(paths["config"])],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.procs[agent] = proc
        return proc

    def _write_control(self, agent: int, state: dict[str, Any]) -> None:
        path = self.paths(agent)["control"]
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, path)

    def set_budget(self, agent: int, cpu_budget: float, bandwidth: float) -> None:
        self.budgets[agent] = (cpu_budget, bandwidth)
        cpu, bw = self.budgets[agent]
        self._write_control(agent, {"cpu_budget": cpu, "bandwidth": bw, "start": self.going})

    def go(self, timeout_s: float = 90.0) -> None:
        """Wait until every started agent is ready, then let them all start at once."""
        deadline = time.monotonic() + timeout_s
        for agent, proc in self.procs.items():
            ready = Path(str(self.paths(agent)["stats"]) + ".ready")
            while not ready.exists():
                if proc.poll() is not None:
                    raise RuntimeError(f"agent {agent} exited with {proc.returncode} before ready")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"agent {agent} not ready after {timeout_s} s")
                time.sleep(0.05)
        self.going = True
        for agent in self.procs:
            self.set_budget(agent, *self.budgets[agent])

    def kill(self, agent: int) -> None:
        """SIGKILL one agent (failure injection)."""
        self.procs[agent].kill()
        self.procs[agent].wait(timeout=10)

    def check(self, restart: bool = False) -> list[AgentDeath]:
        """Report agents that exited abnormally since the last check (and restart them)."""
        found = []
        for agent, proc in list(self.procs.items()):
            code = proc.poll()
            if code is None or code == 0:
                continue
            death = AgentDeath(agent, code, time.monotonic() - self.started, restart)
            found.append(death)
            self.deaths.append(death)
            if restart:
                self.start(agent)
            else:
                del self.procs[agent]
        return found

    def wait(self, timeout_s: float) -> bool:
        """Wait until every agent exited; True if they all did in time."""
        deadline = time.monotonic() + timeout_s
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                return False
        return True

    def stop_all(self, timeout_s: float = 10.0) -> None:
        for agent in self.procs:
            self._write_control(agent, {"stop": True})
        if not self.wait(timeout_s):
            for proc in self.procs.values():
                if proc.poll() is None:
                    proc.terminate()
            if not self.wait(5):
                for proc in self.procs.values():
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait(5)

    def stats(self) -> list[dict[str, Any]]:
        lines = []
        for agent in self.procs:
            path = self.paths(agent)["stats"]
            if path.exists():
                lines.extend(json.loads(x) for x in path.read_text().splitlines() if x.strip())
        return lines


@dataclass
class RunSpec:
    """One benchmark run: a strategy, N agents, a budget schedule."""

    strategy: str
    num_agents: int
    duration_s: float
    cpu_budget: float
    bandwidth: float
    schedule: Sequence[tuple[float, float]] = ()  # (at second, new cpu budget)
    interval_s: float = 0.5
    chunk_records: int = 8_192
    telemetry: dict[str, Any] = field(default_factory=dict)
    load_factors: Sequence[float] | None = None  # strategy "fixed" only


@dataclass
class RunResult:
    spec: RunSpec
    stats: list[dict[str, Any]]
    batches: list[dict[str, Any]]  # Spark micro-batches: end time, records, latencies
    deaths: list[AgentDeath]
    started_wall: float
    leftover_processes: int
    spark_failures: list[str] = field(default_factory=list)  # restarted from the checkpoint
    workdir: Path | None = None  # removed when run_experiment returns


def _spark_batches(progress: list[dict], spool: Path, started_wall: float) -> list[dict]:
    """Per Spark micro-batch: finish time, input records it covered, entry latencies."""
    out = []
    prev: dict[str, int] = {}
    for p in progress:
        if not p.get("sources"):
            continue
        end = p["sources"][0].get("endOffset")
        if isinstance(end, str):
            end = json.loads(end)
        if not end:
            continue
        start_wall = datetime.fromisoformat(p["timestamp"].replace("Z", "+00:00")).timestamp()
        finished = start_wall + p["durationMs"].get("triggerExecution", 0) / 1000
        records, latencies = 0, []
        for key, last in end.items():
            for seq in range(int(prev.get(key, -1)) + 1, int(last) + 1):
                meta = read_meta(spool, int(key), seq)
                records += meta.last_record - meta.first_record
                latencies.append(finished - meta.created_s)
        prev = {k: int(v) for k, v in end.items()}
        out.append(
            {
                "t": finished - started_wall,
                "records": records,
                "latencies": latencies,
                "rows": p.get("numInputRows", 0),
            }
        )
    return out


def run_experiment(
    spec: RunSpec, spark=None, query: Query | None = None, base_dir: str | Path | None = None
) -> RunResult:
    """Start agents (and a Spark query over their spool if ``spark`` is given), run, stop.

    The work directory (spool, agent files, Spark checkpoint) is created under ``base_dir``
    (default: tmpfs, see :func:`~streaming.jarvis.lifecycle.default_base`) and removed on
    return, or by its watchdog if this process is killed."""
    with RunGuard(base_dir if base_dir is not None else default_base(), spec.strategy) as workdir:
        result = _run_in(workdir, spec, spark, query or default_query())
    result.workdir = workdir
    return result


def _run_in(workdir: Path, spec: RunSpec, spark, query: Query) -> RunResult:
    extra = {} if spec.load_factors is None else {"load_factors": list(spec.load_factors)}
    sup = AgentSupervisor(
        workdir,
        query,
        strategy=spec.strategy,
        cpu_budget=spec.cpu_budget,
        bandwidth=spec.bandwidth,
        interval_s=spec.interval_s,
        chunk_records=spec.chunk_records,
        telemetry=spec.telemetry,
        max_runtime_s=spec.duration_s + 30,
        **extra,
    )
    sq = None
    progress: list[dict] = []
    failures: list[str] = []
    started_wall = time.time()
    try:
        if spark is not None:
            sq = _start_spark_query(spark, sup.spool, query, workdir, spec.telemetry)
        for agent in range(spec.num_agents):
            sup.start(agent)
        sup.go()
        started_wall = time.time()
        t0 = time.monotonic()
        pending = sorted(spec.schedule)
        while (elapsed := time.monotonic() - t0) < spec.duration_s:
            while pending and pending[0][0] <= elapsed:
                _, budget = pending.pop(0)
                for agent in range(spec.num_agents):
                    sup.set_budget(agent, budget, spec.bandwidth)
            sup.check(restart=True)
            if sq is not None and not sq.isActive:
                sq = _restart_query(sq, spark, sup.spool, query, workdir, spec, progress, failures)
            time.sleep(0.1)
        sup.stop_all()
        batches: list[dict] = []
        if sq is not None:
            _drain(sq, sup.spool)
            if not sq.isActive:  # failed while draining: one more attempt
                sq = _restart_query(sq, spark, sup.spool, query, workdir, spec, progress, failures)
                _drain(sq, sup.spool)
            progress.extend(json.loads(p.json) for p in sq.recentProgress)
            batches = _spark_batches(progress, sup.spool, started_wall)
        leftovers = sum(1 for p in sup.procs.values() if p.poll() is None)
        return RunResult(
            spec, sup.stats(), batches, list(sup.deaths), started_wall, leftovers, failures
        )
    finally:
        if sq is not None and sq.isActive:
            sq.stop()
        sup.stop_all(timeout_s=2)


def _restart_query(sq, spark, spool, query, workdir, spec, progress, failures):
    """A failed Spark query (e.g. a Python worker that could not connect back on a loaded
    machine) is reported and restarted from its checkpoint: offsets make it exactly-once."""
    progress.extend(json.loads(p.json) for p in sq.recentProgress)
    error = sq.exception()
    failures.append(str(error).splitlines()[0] if error else "stopped")
    if len(failures) > 5:
        raise RuntimeError(f"Spark query failed {len(failures)} times; last: {failures[-1]}")
    return _start_spark_query(spark, spool, query, workdir, spec.telemetry)


def _start_spark_query(spark, spool: Path, query: Query, workdir: Path, telemetry: dict):
    from streaming.common.telemetry import TelemetryConfig, server_topology
    from streaming.jarvis.source import JarvisSpoolDataSource
    from streaming.jarvis.spark_ops import finish_query, topology_frame

    spark.dataSource.register(JarvisSpoolDataSource)
    envelope = (
        spark.readStream.format("jarvis_spool")
        .option("path", str(spool))
        .option("query", json.dumps(query.to_spec()))
        .load()
    )
    shape = {k: v for k, v in telemetry.items() if k != "seed"}
    topology = topology_frame(spark, server_topology(TelemetryConfig(**shape)))
    result = finish_query(envelope, query, topology)
    return (
        result.writeStream.format("noop")
        .outputMode("update")
        .option("checkpointLocation", str(workdir / "checkpoint"))
        .start()
    )


def _drain(sq, spool: Path, timeout_s: float = 60.0) -> None:
    """Let Spark catch up with every entry the agents wrote (bounded wait)."""
    from streaming.jarvis.spool import list_agents

    target = {
        str(a): list_entries(spool, a)[-1] for a in list_agents(spool) if list_entries(spool, a)
    }
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and sq.isActive:
        last = sq.lastProgress
        progress = json.loads(last.json) if last is not None else None
        if progress and progress.get("sources"):
            end = progress["sources"][0].get("endOffset")
            end = json.loads(end) if isinstance(end, str) else end
            if end and all(int(end.get(k, -1)) >= v for k, v in target.items()):
                return
        time.sleep(0.2)
