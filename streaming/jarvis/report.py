"""Turning a run's raw stats into the figures the benchmark and the demo report.

Definitions (one place, so the demo and the benchmark agree):

* throughput: input records per second whose results left the sources, summed over agents,
  in ``BIN_S`` bins; *sustained* = mean over a budget phase after a settling period;
* bytes/s: real spool bytes written (what crossed to Spark);
* Spark throughput: input records per second covered by completed Spark micro-batches;
* latency: Spark batch completion minus the time the spool entry became visible;
* convergence: seconds after a budget change until total throughput stays within ±15% of
  the phase's steady level (median of its second half) for 2 s.
"""

from __future__ import annotations

import statistics

import numpy as np

from streaming.jarvis.harness import RunResult, RunSpec

__all__ = ["BIN_S", "SETTLE_S", "summarise"]

BIN_S = 1.0
SETTLE_S = 3.0


def _series(result: RunResult, key: str) -> tuple[np.ndarray, np.ndarray]:
    """Total ``key`` per second across agents, in BIN_S bins since the run started."""
    duration = result.spec.duration_s
    edges = np.arange(0.0, duration + BIN_S, BIN_S)
    totals = np.zeros(len(edges) - 1)
    for line in result.stats:
        t = line["t"] - result.started_wall
        i = int(t // BIN_S)
        if 0 <= i < len(totals):
            totals[i] += line[key]
    return edges[:-1] + BIN_S / 2, totals / BIN_S


def _phases(spec: RunSpec) -> list[tuple[float, float, float]]:
    """(start, end, cpu budget) of each budget phase."""
    bounds = [(0.0, spec.cpu_budget), *sorted(spec.schedule)]
    out = []
    for i, (start, budget) in enumerate(bounds):
        end = bounds[i + 1][0] if i + 1 < len(bounds) else spec.duration_s
        out.append((start, end, budget))
    return out


def _convergence(t: np.ndarray, rate: np.ndarray, start: float, end: float) -> float | None:
    inside = (t >= start) & (t < end)
    tt, rr = t[inside], rate[inside]
    if len(rr) < 6:
        return None
    steady = float(np.median(rr[len(rr) // 2 :]))
    if steady <= 0:
        return None
    ok = np.abs(rr - steady) <= 0.15 * steady
    need = max(2, round(2.0 / BIN_S))
    for i in range(len(ok) - need + 1):
        if ok[i : i + need].all():
            return float(tt[i] - BIN_S / 2 - start)
    return None


def summarise(result: RunResult) -> dict:
    spec = result.spec
    t, rate = _series(result, "records")
    _, nbytes = _series(result, "bytes")
    phases = []
    for i, (start, end, budget) in enumerate(_phases(spec)):
        # short phases (a demo) keep at least 60% of their length for measuring
        settle = min(SETTLE_S if i == 0 else 2.0, 0.4 * (end - start))
        steady = (t >= start + settle) & (t < end)
        phases.append(
            {
                "start_s": start,
                "cpu_budget": budget,
                "throughput_rps": float(rate[steady].mean()) if steady.any() else 0.0,
                "bytes_per_s": float(nbytes[steady].mean()) if steady.any() else 0.0,
                "converge_s": None if i == 0 else _convergence(t, rate, start, end),
            }
        )
    latencies = [x for b in result.batches for x in b["latencies"]]
    spark_records = sum(b["records"] for b in result.batches)
    produced = sum(line["records"] for line in result.stats)
    span = max((b["t"] for b in result.batches), default=0.0)
    cpu_used = sum(line["cpu_used_s"] for line in result.stats)
    return {
        "strategy": spec.strategy,
        "agents": spec.num_agents,
        "phases": phases,
        "records_total": produced,
        "bytes_total": int(sum(line["bytes"] for line in result.stats)),
        "agent_cpu_s": cpu_used,
        "spark_records": spark_records,
        "spark_rps": spark_records / span if span > 0 else 0.0,
        "latency_mean_s": statistics.fmean(latencies) if latencies else None,
        "latency_p95_s": float(np.percentile(latencies, 95)) if latencies else None,
        "spark_batches": len(result.batches),
        "deaths": len(result.deaths),
        "spark_failures": result.spark_failures,
        "leftover_processes": result.leftover_processes,
        "load_factors_end": [line["load_factors"] for line in result.stats if line["agent"] == 0][
            -1:
        ],
        "timeline": {"t": t.tolist(), "rps": rate.tolist(), "bytes_per_s": nbytes.tolist()},
    }
