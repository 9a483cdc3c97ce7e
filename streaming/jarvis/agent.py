"""A data-source agent: a separate OS process that produces telemetry and runs its proxies.

Run as ``python -m streaming.jarvis.agent CONFIG.json``. Each control interval the agent:

1. reads its control file (CPU budget, bandwidth, stop flag) if it changed;
2. pulls chunks of its telemetry stream (the shared deterministic generator; record ``n``
   depends only on ``(seed, n)``) and runs them through the proxies while it has CPU budget
   and network tokens left. Under Jarvis, once the network tokens run out the remaining
   chunks of the interval are processed entirely locally (they ship only partial
   aggregates) until the CPU budget is used: a work-conserving spill that keeps both
   resources busy while the heuristic corrects the load factors, which are judged by the
   resource that ran out *first* (operator-level baselines cannot split data, so they stop);
3. writes the output as one atomic spool entry and appends one stats line (an entry covers
   one interval, or several at budgets too small for an entry's fixed cost: see below);
4. sleeps out the rest of the interval.

CPU budget emulation (the machine has 2 shared cores, so a budget cannot be a real core
share): the agent measures the CPU time (``time.thread_time``) of everything it does *for
the query* — decoding input, the operators, building and writing Arrow files — and stops
when ``budget x interval`` is used; an overshoot is carried into the next interval as debt.
The flush is reserved for in advance and the interval's last chunk is cut to the CPU left
(:class:`_ChunkSizer`), so overshoots stay small: an interval shortened by debt would run
its fixed costs over fewer records and mislead the controller about its plan.
An entry has a fixed CPU cost (merging partial aggregates, the directory, the metadata, the
rename), about a millisecond. At a budget where that is a large share of an interval's CPU
(0.01 core at 0.2 s intervals is 2 ms) an entry per interval would spend the budget on
entries and hardly any on records; so an entry then covers as many intervals as make its
fixed cost at most a quarter of their CPU (:func:`_entry_span`), never more than 1 s of
them (the latency an entry may add). The load factors are judged once per entry, on its
whole span.
Generating the telemetry is *not* charged: it stands for the monitored system producing the
data, which exists whatever the query does. The network is a token bucket of
``bandwidth x interval`` bytes per interval (one interval of burst), charged with the real
size of the files written.

Every agent stops by itself: after ``max_runtime_s``, when the control file says ``stop``,
after ``max_records``, and the moment its parent process dies (the kernel's parent-death
signal, :func:`streaming.jarvis.lifecycle.die_with_parent`; the parent is also checked every
interval). Everything it writes lies inside the run's work directory, which the run's
watchdog removes if the run is killed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from streaming.common.telemetry import TelemetryConfig, generate_range, server_topology
from streaming.jarvis.controller import IntervalObservation
from streaming.jarvis.lifecycle import die_with_parent
from streaming.jarvis.query import columns_from_telemetry, query_from_spec
from streaming.jarvis.runtime import SourceRuntime
from streaming.jarvis.search import sustained_rate
from streaming.jarvis.spool import resume_point, write_entry

__all__ = ["AgentConfig", "main", "run_agent"]

_MIN_CHUNK = 1_024  # records; a smaller chunk costs mostly per-call overhead
_MAX_RESERVE = 0.6  # of the interval's budget: a slow write must not starve every interval
_JUDGE_MIN_ALLOWANCE = 0.5  # an interval with less of its budget left after debt is not judged
_ENTRY_SHARE = 0.25  # at most this share of the CPU of the intervals an entry covers
_MAX_ENTRY_AGE_S = 1.0  # an entry covers at most this much time (the latency it may add)


@dataclass
class AgentConfig:
    """Everything an agent process needs (written as JSON by the harness)."""

    agent: int
    spool: str
    control: str
    stats: str
    query: list[dict[str, Any]]
    strategy: str
    cpu_budget: float
    bandwidth: float
    telemetry: dict[str, Any] = field(default_factory=dict)
    load_factors: list[float] | None = None
    interval_s: float = 0.5
    chunk_records: int = 8_192
    max_records: int | None = None
    max_runtime_s: float = 120.0
    parent_pid: int | None = None
    input_rate: float | None = None  # records/s arriving; None = always backlogged
    corrupt_every: int | None = None  # make every Nth record malformed (rtt_us = -1)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: str | Path) -> AgentConfig:
        return cls(**json.loads(Path(path).read_text()))


@dataclass
class _ChunkSizer:
    """Cuts a chunk to the CPU left in the interval, from the runtime's model cost of the
    chunk scaled by how the model has compared with measured chunks (it leaves out decoding
    the input, and the profile drifts)."""

    ratio: float = 1.0

    def size(self, records: int, predicted_s: float | None, room_s: float) -> int:
        if predicted_s is None or predicted_s <= 0:
            return records
        expected = predicted_s * self.ratio
        return records if expected <= room_s else int(records * room_s / expected)

    def learn(self, actual_s: float, predicted_s: float | None) -> None:
        if predicted_s is not None and predicted_s > 0:
            self.ratio = 0.7 * self.ratio + 0.3 * min(4.0, max(0.25, actual_s / predicted_s))


@dataclass
class _Span:
    """The intervals since the last entry: what the next entry will ship, and what they cost
    (the load factors are judged on the whole span once it is shipped)."""

    first_record: int
    intervals: int = 0
    cpu_used_s: float = 0.0
    cpu_allowance_s: float = 0.0
    est_bytes: float = 0.0
    byte_budget: float = 0.0

    def add(self, used: float, allowance: float, est_bytes: float, byte_budget: float) -> None:
        self.intervals += 1
        self.cpu_used_s += used
        self.cpu_allowance_s += max(allowance, 0.0)
        self.est_bytes += est_bytes
        self.byte_budget += byte_budget


def _entry_span(entry_cost_s: float | None, cpu_budget: float, interval_s: float) -> int:
    """How many intervals the next entry covers: enough that its fixed cost is at most
    ``_ENTRY_SHARE`` of their CPU budget, at most ``_MAX_ENTRY_AGE_S`` of them, at least one."""
    per_interval = cpu_budget * interval_s
    if not entry_cost_s or per_interval <= 0:
        return 1
    wanted = math.ceil(entry_cost_s / (_ENTRY_SHARE * per_interval))
    return max(1, min(wanted, int(_MAX_ENTRY_AGE_S / interval_s)))


def _read_control(path: Path, last_mtime: float) -> tuple[dict[str, Any] | None, float]:
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        return None, last_mtime
    if mtime == last_mtime:
        return None, last_mtime
    try:
        return json.loads(path.read_text()), mtime
    except ValueError:  # being rewritten; the harness writes atomically, so retry next time
        return None, last_mtime


def _parent_alive(parent_pid: int | None) -> bool:
    if parent_pid is None:
        return True
    if os.getppid() != parent_pid:
        return False
    try:
        os.kill(parent_pid, 0)
    except OSError:
        return False
    return True


def run_agent(cfg: AgentConfig) -> int:
    """The agent loop; returns the process exit code."""
    if not die_with_parent(cfg.parent_pid):
        return 0  # the parent died before the agent got this far
    query = query_from_spec(cfg.query)
    telemetry = TelemetryConfig(**cfg.telemetry)
    tables = {"topology": server_topology(telemetry)}
    runtime = SourceRuntime(
        query, tables, cfg.strategy, cfg.cpu_budget, cfg.bandwidth, cfg.load_factors
    )
    control_path, stats_path = Path(cfg.control), Path(cfg.stats)
    seq, next_record = resume_point(cfg.spool, cfg.agent)
    _warm_up(cfg, query, tables, telemetry)
    started = time.monotonic()
    if not _wait_for_start(control_path, stats_path, cfg, started):
        return 0
    started = time.monotonic()
    arrival_origin = time.monotonic()
    arrival_base = next_record
    debt, tokens, mtime = 0.0, 0.0, -1.0
    sizer = _ChunkSizer()
    span = _Span(next_record)
    stats = stats_path.open("a", buffering=1)
    try:
        while True:
            now = time.monotonic()
            if now - started > cfg.max_runtime_s or not _parent_alive(cfg.parent_pid):
                return 0
            control, mtime = _read_control(control_path, mtime)
            if control is not None:
                if control.get("stop"):
                    return 0
                runtime.set_budget(
                    float(control.get("cpu_budget", runtime.cpu_budget)),
                    float(control.get("bandwidth", runtime.bandwidth)),
                )
            interval_start, deadline = now, now + cfg.interval_s
            allowance = runtime.cpu_budget * cfg.interval_s - debt
            byte_budget = runtime.bandwidth * cfg.interval_s
            tokens = min(tokens + byte_budget, byte_budget)
            used, first, stopped_by, estimated = 0.0, next_record, "time", 0.0
            ships = span.intervals + 1 >= _entry_span(
                runtime.entry_cost_s, runtime.cpu_budget, cfg.interval_s
            )
            first_limit: tuple[str, float, float] | None = None  # what ran out first, when
            while True:
                limit = cfg.max_records
                available = None if limit is None else limit - next_record
                if cfg.input_rate is not None:
                    arrived = arrival_base + int(
                        (time.monotonic() - arrival_origin) * cfg.input_rate
                    )
                    available = (
                        arrived - next_record
                        if available is None
                        else min(available, arrived - next_record)
                    )
                if available is not None and available <= 0:
                    stopped_by = "input"
                    break
                reserve = (
                    min(
                        runtime.flush_estimate_s,
                        _MAX_RESERVE * runtime.cpu_budget * cfg.interval_s,
                    )
                    if ships
                    else 0.0
                )
                if used + reserve >= allowance:
                    stopped_by = "cpu"
                    break
                if tokens <= 0 and first_limit is None:
                    first_limit = ("network", used, estimated)
                    if not runtime.spill_local:
                        stopped_by = "network"
                        break
                if time.monotonic() >= deadline:
                    break
                n = cfg.chunk_records if available is None else min(cfg.chunk_records, available)
                spill = first_limit is not None
                n = sizer.size(n, runtime.chunk_cost_s(n, spill), allowance - used - reserve)
                smallest = min(_MIN_CHUNK, cfg.chunk_records)
                if n < smallest:
                    if next_record > first or (available is not None and available < smallest):
                        stopped_by = "cpu"
                        break
                    # nothing done yet this interval, CPU left: the smallest chunk even though
                    # the estimate says it will not fit — one slow chunk inflates the profile,
                    # and an agent that never processes never measures it again (it sat idle
                    # with its whole allowance for the rest of a run); an overrun is a debt
                    n = smallest
                predicted = runtime.chunk_cost_s(n, spill)
                batch = generate_range(telemetry, next_record, n)  # not charged: see docstring
                start = time.thread_time()
                cols = columns_from_telemetry(batch)
                if cfg.corrupt_every:
                    _corrupt(cols, next_record, cfg.corrupt_every)
                chunk_bytes = runtime.process_chunk(cols, all_local=spill)
                tokens -= chunk_bytes
                estimated += chunk_bytes
                spent = time.thread_time() - start
                used += spent
                sizer.learn(spent, predicted)
                next_record += n
            span.add(used, allowance, estimated, byte_budget)
            last_interval = cfg.max_records is not None and next_record >= cfg.max_records
            nbytes = malformed = shipped = 0
            flush_cpu = 0.0
            if (ships or last_interval) and next_record > span.first_record:
                start = time.thread_time()
                stage_tables, _, malformed = runtime.flush()
                meta = write_entry(
                    cfg.spool,
                    cfg.agent,
                    seq,
                    span.first_record,
                    next_record,
                    stage_tables,
                    malformed,
                )
                flush_cpu = spent = time.thread_time() - start
                used += spent
                span.cpu_used_s += spent
                runtime.record_flush(spent, meta.bytes)
                nbytes, shipped = meta.bytes, next_record - span.first_record
                seq += 1
                tokens += span.est_bytes - nbytes  # charge the real file size, not the estimate
            debt = max(0.0, used - allowance)
            full = _JUDGE_MIN_ALLOWANCE * runtime.cpu_budget * cfg.interval_s
            if span.intervals == 1 and first_limit is not None:
                # judge the load factors by the first limit hit
                obs = IntervalObservation(
                    first_limit[1], max(allowance, 0.0), first_limit[2], byte_budget, "network"
                )
            else:  # the whole span the entry covers (one interval at ordinary budgets)
                obs = IntervalObservation(
                    span.cpu_used_s, span.cpu_allowance_s, nbytes, span.byte_budget, stopped_by
                )
            rate = sustained_rate(
                shipped,
                span.cpu_used_s,
                nbytes,
                runtime.cpu_budget,
                runtime.bandwidth,
                wall_s=time.monotonic() - interval_start if stopped_by == "input" else None,
            )
            # an interval spent mostly paying CPU debt says little about the load factors
            judge = shipped > 0 and span.cpu_allowance_s >= full * span.intervals
            state = runtime.end_interval(obs, rate, judge=judge)
            records, covered = next_record - first, span.intervals
            if shipped:
                span = _Span(next_record)
            line = {
                "t": time.time(),
                "agent": cfg.agent,
                "strategy": cfg.strategy,
                "records": shipped,  # input records whose results left in this interval
                "processed": records,
                "entry_intervals": covered if shipped else None,
                "rate": rate,
                "next_record": next_record,
                "bytes": nbytes,
                "cpu_used_s": used,
                "flush_cpu_s": flush_cpu,
                "cpu_allowance_s": allowance,
                "cpu_budget": runtime.cpu_budget,
                "bandwidth": runtime.bandwidth,
                "stopped_by": stopped_by,
                "first_limit": None if first_limit is None else first_limit[0],
                "malformed": malformed,
                "state": state.value,
                "load_factors": list(runtime.load_factors),
                "settled": runtime.search.settled if runtime.search is not None else None,
                "profile": runtime.profile_summary(),
                "wall_s": time.monotonic() - interval_start,
            }
            stats.write(json.dumps(line) + "\n")
            if last_interval:
                return 0
            pause = deadline - time.monotonic()
            if pause > 0:
                time.sleep(pause)
    finally:
        stats.close()


def _warm_up(cfg: AgentConfig, query, tables, telemetry: TelemetryConfig) -> None:
    """Run the whole data path once before the clock starts (first calls pay one-off setup:
    lazy imports, kernel caches) so no strategy starts its measurement in debt. The scratch
    spool lies in the agent's own directory, inside the run's work directory."""
    import shutil

    scratch = Path(cfg.stats).parent / "warm-up"
    try:
        for factors in ([1.0] * query.num_operators, [0.0] * query.num_operators):
            rt = SourceRuntime(query, tables, "fixed", 1.0, 1.0, factors)
            rt.process_chunk(
                columns_from_telemetry(generate_range(telemetry, 0, cfg.chunk_records))
            )
            write_entry(scratch, 0, 0, 0, 1, rt.flush()[0])
            shutil.rmtree(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _wait_for_start(control: Path, stats: Path, cfg: AgentConfig, started: float) -> bool:
    """Say ``ready`` (a file next to the stats) and wait for ``start`` in the control file.

    Agents start in a few seconds on a loaded machine; the harness starts the clock only when
    every agent is ready, so no strategy is measured during another's Python start-up.
    """
    Path(str(stats) + ".ready").touch()
    while time.monotonic() - started < cfg.max_runtime_s and _parent_alive(cfg.parent_pid):
        try:
            state = json.loads(control.read_text())
        except (OSError, ValueError):
            state = {}
        if state.get("stop"):
            return False
        if state.get("start"):
            return True
        time.sleep(0.02)
    return False


def _corrupt(cols: dict[str, np.ndarray], first_record: int, every: int) -> None:
    """Deterministically damage records whose stream position is a multiple of ``every``."""
    index = np.arange(first_record, first_record + len(cols["rtt_us"]))
    cols["rtt_us"] = np.where(index % every == 0, -1, cols["rtt_us"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streaming.jarvis.agent")
    parser.add_argument("config", help="agent config JSON written by the harness")
    args = parser.parse_args(argv)
    return run_agent(AgentConfig.load(args.config))


if __name__ == "__main__":
    sys.exit(main())
