"""Overhead of the lineage listener on jobs of ~2,000 short tasks (target: ratio <= 1.03).

Usage: python benchmarks/listener_overhead.py [--tasks 2000] [--jvm-pairs 15]
       [--python-pairs 3] [--delivery batched|per_event] [--task-events cached_stages|all]
       [--out DIR]

``--delivery``: ``batched`` (default) — events buffered in the JVM by blaze-spark's
EventBuffer and drained in batches; ``per_event`` — the fallback path, one py4j callback and
one JsonProtocol call per event (what runs without the jar), to compare the two.
``--task-events``: ``cached_stages`` (default, how the cache manager attaches its listener)
— the JVM sends task events only of stages with a persisted RDD (plus shuffle-writing or
failed task ends), so these plain jobs' task events are not converted nor sent; ``all`` —
every task event crosses (the lineage package's default, and this benchmark before).

Each workload runs alternately without and with a :class:`lineage.LineageListener` attached
(ABBA order, so drift in the shared machine's load hits both sides alike), after a warm-up
pair, all in one process and one SparkContext. Two times per run:

- ``action``: until the action returns — the job's own time (Spark's listeners are
  asynchronous; this is what the application waits for);
- ``drained``: until every event is handled — Spark's listener bus empty and, with the
  listener, its own ``wait_until_empty`` (the batched path's Python side may still be
  parsing when the bus is empty) — so it counts the listener's work that outlasts the job;
- ``cpu``: CPU seconds used by the driver JVM plus the Python driver process (all threads,
  from /proc and getrusage) until the bus is empty. On this shared 2-core machine other
  tenants' load moves wall times by tens of percent between runs; CPU time is far steadier
  and counts exactly what the listener adds (py4j callbacks on both sides, JSON, the DAG).
  Python worker processes are not counted (the listener never runs in them).

Attach and detach happen outside the timed part (the listener lives as long as the
application). Ratio = median(with) / median(without); per-pair ratios' median and range are
reported too.

Workloads:
- ``jvm``: ``spark.range(..., numPartitions=n).count()`` — n tiny JVM-only tasks (~1-2 ms
  each): the worst case, each task costs the listener as much as any other, the task itself
  almost nothing;
- ``python``: ``sc.parallelize(range(n), n).count()`` — n Python tasks (PySpark RDD jobs,
  what the cache manager serves).

Writes listener_overhead.json, .md and .png into --out (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import blaze
from lineage.listener import LineageListener

RESULTS = Path(__file__).resolve().parent / "results"
TARGET = 1.03


def _workloads(spark, tasks: int):
    sc = spark.sparkContext
    return {
        "jvm": lambda: spark.range(0, tasks * 10, 1, tasks).count(),
        "python": lambda: sc.parallelize(range(tasks), tasks).count(),
    }


def _cpu_s(jvm_pid: int) -> float:
    """CPU seconds so far of the driver JVM (utime + stime) and of this Python process."""
    fields = Path(f"/proc/{jvm_pid}/stat").read_text().rsplit(")", 1)[1].split()
    jvm = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return jvm + usage.ru_utime + usage.ru_stime


def _timed(
    spark, job, *, with_listener: bool, batched: bool = True, cached_stages_only: bool = False
) -> tuple[float, float, float, int, int]:
    bus = spark.sparkContext._jsc.sc().listenerBus()
    jvm_pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    bus.waitUntilEmpty(60_000)
    listener = (
        LineageListener.attach(spark, batched=batched, cached_stages_only=cached_stages_only)
        if with_listener
        else None
    )
    try:
        cpu_started = _cpu_s(jvm_pid)
        started = time.perf_counter()
        job()
        action_s = time.perf_counter() - started
        bus.waitUntilEmpty(300_000)
        if listener:
            listener.wait_until_empty(300)
        drained_s = time.perf_counter() - started
        cpu_s = _cpu_s(jvm_pid) - cpu_started
        events = listener.dag.events_applied if listener else 0
        batches = listener.batches if listener else 0
        if listener and listener.errors:
            raise RuntimeError(f"listener errors during the benchmark: {listener.last_error}")
    finally:
        if listener:
            listener.detach()
    return action_s, drained_s, cpu_s, events, batches


def _summary(without: list[float], with_: list[float]) -> dict:
    pair_ratios = [w / wo for w, wo in zip(with_, without)]
    return {
        "without_s": without,
        "with_s": with_,
        "median_without_s": statistics.median(without),
        "median_with_s": statistics.median(with_),
        "ratio": statistics.median(with_) / statistics.median(without),
        "pair_ratios": pair_ratios,
        "median_pair_ratio": statistics.median(pair_ratios),
        "min_pair_ratio": min(pair_ratios),
        "max_pair_ratio": max(pair_ratios),
    }


def measure(
    spark, tasks: int, pairs: dict[str, int], *, batched: bool = True, cached_only: bool = False
) -> dict:
    results = {}
    for name, job in _workloads(spark, tasks).items():
        if not pairs.get(name):
            continue
        _timed(spark, job, with_listener=False)  # warm-up pair
        _timed(spark, job, with_listener=True, batched=batched, cached_stages_only=cached_only)
        runs: dict[bool, list[tuple[float, float, float]]] = {False: [], True: []}
        events, batches = [], []
        for i in range(pairs[name]):
            order = (False, True) if i % 2 == 0 else (True, False)  # ABBA
            for flag in order:
                action_s, drained_s, cpu_s, n_events, n_batches = _timed(
                    spark, job, with_listener=flag, batched=batched, cached_stages_only=cached_only
                )
                runs[flag].append((action_s, drained_s, cpu_s))
                if flag:
                    events.append(n_events)
                    batches.append(n_batches)
            print(
                f"{name:6s} pair {i + 1}/{pairs[name]}: action without "
                f"{runs[False][-1][0]:.2f} s, with {runs[True][-1][0]:.2f} s; until bus empty "
                f"{runs[False][-1][1]:.2f} s / {runs[True][-1][1]:.2f} s; CPU "
                f"{runs[False][-1][2]:.2f} s / {runs[True][-1][2]:.2f} s",
                flush=True,
            )
        results[name] = {
            "tasks": tasks,
            "pairs": pairs[name],
            "records_per_run": statistics.median(events),
            "py4j_batches_per_run": statistics.median(batches),
            "action": _summary([r[0] for r in runs[False]], [r[0] for r in runs[True]]),
            "drained": _summary([r[1] for r in runs[False]], [r[1] for r in runs[True]]),
            "cpu": _summary([r[2] for r in runs[False]], [r[2] for r in runs[True]]),
        }
    return results


def _markdown(report: dict) -> str:
    lines = [
        "# Lineage listener overhead",
        "",
        f"{report['when']} · {report['machine']} · load average (1 min) before "
        f"{report['load_before']}, after {report['load_after']} · alternating pairs after one "
        f"warm-up pair · target ratio <= {TARGET}",
        "",
        "| workload | tasks | pairs | time measured | median without (s) | median with (s) "
        "| ratio | pair ratios median [min, max] | target met |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for name, r in report["workloads"].items():
        for kind, label in (
            ("action", "wall: action returns"),
            ("drained", "wall: listener bus empty"),
            ("cpu", "CPU s: JVM + Python driver"),
        ):
            s = r[kind]
            lines.append(
                f"| {name} | {r['tasks']} | {r['pairs']} | {label} | {s['median_without_s']:.2f}"
                f" | {s['median_with_s']:.2f} | {s['ratio']:.3f} | {s['median_pair_ratio']:.3f}"
                f" [{s['min_pair_ratio']:.3f}, {s['max_pair_ratio']:.3f}] | "
                f"{'yes' if s['ratio'] <= TARGET else 'no'} |"
            )
    lines += [
        "",
        f"Event delivery: {report['delivery']}; task events: {report['task_events']}. "
        "Records per run (what the DAG applied), and "
        "py4j batches that carried them (0 on the per-event path): "
        + ", ".join(
            f"{n} {r['records_per_run']:.0f} / {r['py4j_batches_per_run']:.0f}"
            for n, r in report["workloads"].items()
        ),
        "",
        "Raw times are in listener_overhead.json; the plot is listener_overhead.png.",
        "",
    ]
    return "\n".join(lines)


def _plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(n, k) for n in report["workloads"] for k in ("action", "drained", "cpu")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4), squeeze=False)
    for ax, (name, kind) in zip(axes[0], panels):
        s = report["workloads"][name][kind]
        ax.boxplot([s["without_s"], s["with_s"]], tick_labels=["without", "with"])
        for x, values in ((1, s["without_s"]), (2, s["with_s"])):
            ax.scatter([x] * len(values), values, s=12, alpha=0.6)
        ax.set_title(f"{name}, {kind}: ratio {s['ratio']:.3f}", fontsize=10)
        ax.set_ylabel("CPU seconds" if kind == "cpu" else "wall seconds")
    fig.suptitle(f"Lineage listener overhead, {report['tasks']} tasks per job (one process)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--jvm-pairs", type=int, default=15)
    parser.add_argument("--python-pairs", type=int, default=3)
    parser.add_argument("--delivery", choices=("batched", "per_event"), default="batched")
    parser.add_argument("--task-events", choices=("cached_stages", "all"), default="cached_stages")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    # a spark.blaze.* key loads blaze-spark's jar and plugin (both arms: one SparkContext),
    # as a user's session with the flag does; the listener's batched path needs the jar
    conf = {"spark.ui.enabled": "false", "spark.blaze.enabled": "false"}
    spark = blaze.session(conf, app_name="listener-overhead")
    try:
        pairs = {"jvm": args.jvm_pairs, "python": args.python_pairs}
        workloads = measure(
            spark,
            args.tasks,
            pairs,
            batched=args.delivery == "batched",
            cached_only=args.task_events == "cached_stages",
        )
    finally:
        spark.stop()
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores (shared), Python {platform.python_version()}",
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "tasks": args.tasks,
        "delivery": args.delivery,
        "task_events": args.task_events,
        "target": TARGET,
        "workloads": workloads,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "listener_overhead.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "listener_overhead.md").write_text(_markdown(report))
    _plot(report, args.out / "listener_overhead.png")
    print(_markdown(report))


if __name__ == "__main__":
    main()
