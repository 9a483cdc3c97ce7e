"""Decision latency per block event of the manager's engine at 1k / 10k / 100k cached partitions.

Pure Python, no Spark: the manager's own block-event path (:class:`blaze.enforce.
Enforcement` over the real :class:`blaze.ledger.Ledger`, :class:`blaze.engine.Engine`
and policies) is driven with lineage records shaped like Spark's, and its calls into Spark
are replaced by a bridge that only counts them. Two phases per size, both timed per event:

- **fits**: partitions arrive while the budget still has room (the common case);
- **pressure**: the budget is full, every arrival makes the policy choose victims (read
  lazily from the executor's eviction index) and enforce them in the book.

Costs are spread (1..50 ms) so Blaze evicts cheaper partitions rather than refusing every
arrival; each row records the decisions taken and the bridge commands issued.
Target: median ≤ 2 ms at 10k cached partitions, and no linear growth with the count.
Writes benchmarks/results/decision_latency.{json,md,png}. Usage:
``python benchmarks/decision_latency.py [--sizes 1000 10000 100000] [--events 300]``;
``--smoke`` runs 200 / 1000 partitions with 100 events (seconds); the full run takes about a
minute on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections import defaultdict
from pathlib import Path

from blaze.enforce import Enforcement
from blaze.engine import Engine
from blaze.explain import DecisionLog
from blaze.ledger import Ledger
from blaze.measurements import SiteMeasurements
from blaze.policies import get_manager_policy
from blaze.registry import ManagedDataset, Registry
from blaze.tracker import UsageTracker
from costmodel.disk import DiskCost, OnlineDiskCost
from costmodel.predict import Predictors
from lineage.dag import LineageDag
from lineage.events import BlockEvent, JobRun, RddNode, StageRun, StorageLevelInfo, TaskRun

RESULTS = Path(__file__).resolve().parent / "results"
LEVEL = StorageLevelInfo(use_disk=True, use_memory=True)
PARTS_PER_RDD = 200
BLOCK = 64 * 1024
# a 64 KiB block costs 25 + 25 ms to spill and read back, and takes 1..60 ms to compute: the
# partitions' costs (min of the two) spread over 1..50 ms, so Blaze finds cheaper victims
# (some dropped, some spilled) instead of refusing every arrival
DISK_MS_PER_MIB = 400.0


class _CountingBridge:
    """Stands in for :class:`blaze.orders.ExecutorOrders`: every order is queued at once."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = defaultdict(int)

    def spill(self, rdd_id: int, split: int, executor: str) -> bool:
        self.calls["spill"] += 1
        return True

    def drop(self, rdd_id: int, split: int, executor: str) -> bool:
        self.calls["remove"] += 1
        return True


class _NoTimer:
    """No Python workers here: nothing is timed; the task's time stands in."""

    def drain(self) -> dict:
        return {}

    def instrument(self, rdd, token: int) -> bool:
        return False


class _Harness:
    """The manager's enforcement part with the real parts it reads, minus Spark."""

    def __init__(self, policy: str, budget: int) -> None:
        self.errors = 0
        self._registry = Registry(UsageTracker(), threading.RLock(), self._count_error)
        self._datasets = self._registry.datasets
        disk = DiskCost(DISK_MS_PER_MIB, DISK_MS_PER_MIB)
        self._ledger = Ledger()
        self._engine = Engine(
            LineageDag(), disk, site_of=self._registry.site_of, later_reads=lambda rdd: 1.0
        )
        measurements = SiteMeasurements(
            Predictors(),
            self._engine,
            OnlineDiskCost(disk),
            _NoTimer(),
            self._registry.site_of,
            self._count_error,
        )
        self._explain = DecisionLog(100_000)
        self._bridge = _CountingBridge()
        self._enforcement = Enforcement(
            ledger=self._ledger,
            engine=self._engine,
            registry=self._registry,
            measurements=measurements,
            policy=get_manager_policy(policy),
            memory_budget=budget,
            orders=self._bridge,
            storage=None,
            explain=self._explain,
            on_error=self._count_error,
        )

    def _count_error(self, where: str, exc: BaseException) -> None:
        self.errors += 1

    def _handle(self, event) -> None:
        """What :meth:`blaze.manager.BlazeManager._handle` does with the records used here."""
        self._engine.dag.apply(event)  # as the listener does before the manager sees it
        if isinstance(event, BlockEvent):
            self._enforcement.on_block(event)
        elif isinstance(event, TaskRun):
            self._enforcement.on_task(event)
        elif isinstance(event, StageRun):
            if not event.completed:
                self._ledger.apply_stage(event)
            self._engine.on_stage(event)
        elif isinstance(event, JobRun):
            self._engine.on_job(event)


def _rdd_nodes(rdds: int) -> list[RddNode]:
    nodes = []
    for index in range(rdds):
        cached_id = 2 * index + 1
        nodes.append(RddNode(cached_id - 1, "ParallelCollectionRDD", "x.py:1", (), PARTS_PER_RDD))
        nodes.append(
            RddNode(
                cached_id, "PythonRDD", f"app.py:{index}", (cached_id - 1,), PARTS_PER_RDD, LEVEL
            )
        )
    return nodes


def _compute_ms(rdd_id: int, split: int) -> int:
    return 1 + (split * 37 + rdd_id * 11) % 60


def _store(harness: _Harness, rdd_id: int, split: int, stage_id: int) -> None:
    harness._handle(
        BlockEvent(f"rdd_{rdd_id}_{split}", "driver", LEVEL, BLOCK, 0, None, rdd_id, split)
    )
    harness._handle(
        TaskRun(
            stage_id, 0, rdd_id * 10_000 + split, split, "driver", 0, 1, _compute_ms(rdd_id, split)
        )
    )


def run_size(partitions: int, events: int, policy: str) -> dict:
    rdds = max(partitions // PARTS_PER_RDD, 1) + events // PARTS_PER_RDD + 1
    harness = _Harness(policy, budget=partitions * BLOCK)
    nodes = _rdd_nodes(rdds)
    for index in range(rdds):
        cached_id = 2 * index + 1
        harness._datasets[cached_id] = ManagedDataset(
            cached_id, cached_id, f"app.py:{index}", "rdd", None, True
        )
    stages = [
        StageRun(i, 0, f"s{i}", PARTS_PER_RDD, (nodes[2 * i + 1], nodes[2 * i]), ())
        for i in range(rdds)
    ]
    harness._handle(JobRun(0, tuple(range(rdds)), stages=tuple(stages)))
    for stage in stages:
        harness._handle(stage)

    fits, pressure = [], []
    stored = 0
    clock = time.perf_counter
    for index in range(rdds):
        for split in range(PARTS_PER_RDD):
            started = clock()
            _store(harness, 2 * index + 1, split, index)
            elapsed = (clock() - started) * 1000
            stored += 1
            if stored <= partitions:
                if stored > partitions - events:
                    fits.append(elapsed)
            else:
                pressure.append(elapsed)
            if len(pressure) >= events:
                break
        if len(pressure) >= events:
            break
    assert harness.errors == 0, "the harness raised inside the manager's path"
    return {
        "partitions": partitions,
        "policy": policy,
        "fits_ms": _summary(fits),
        "pressure_ms": _summary(pressure),
        "bridge_calls": dict(harness._bridge.calls),
        "decisions": dict(harness._ledger.counters.decisions),
        "decisions_logged": harness._explain.recorded,
    }


def _summary(samples: list[float]) -> dict:
    if not samples:
        return {"n": 0}
    ordered = sorted(samples)
    return {
        "n": len(samples),
        "median": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "mean": statistics.fmean(ordered),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--policies", nargs="+", default=["blaze", "mrd", "lrc"])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    args = parser.parse_args()
    if args.smoke:
        args.sizes, args.events, args.policies = [200, 1000], 100, ["blaze", "mrd"]
    rows = [run_size(n, args.events, p) for p in args.policies for n in args.sizes]
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "decision_latency_smoke" if args.smoke else "decision_latency"
    (RESULTS / f"{stem}.json").write_text(
        json.dumps({"events": args.events, "rows": rows}, indent=2)
    )
    lines = [
        "# Decision latency per block event (pure Python engine)",
        "",
        f"{args.events} timed events per phase; block size {BLOCK} bytes.",
        "",
        "| policy | cached partitions | fits median ms | fits p99 ms | pressure median ms | pressure p99 ms |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        f, p = r["fits_ms"], r["pressure_ms"]
        lines.append(
            f"| {r['policy']} | {r['partitions']} | {f.get('median', 0):.3f} | {f.get('p99', 0):.3f} "
            f"| {p.get('median', 0):.3f} | {p.get('p99', 0):.3f} |"
        )
    lines += ["", "Growth of the pressure median from the smallest to the largest size:", ""]
    for policy in args.policies:
        mine = sorted((r for r in rows if r["policy"] == policy), key=lambda r: r["partitions"])
        low, high = mine[0]["pressure_ms"], mine[-1]["pressure_ms"]
        if low.get("median") and high.get("median"):
            lines.append(
                f"- {policy}: {mine[0]['partitions']} -> {mine[-1]['partitions']} partitions, "
                f"x{high['median'] / low['median']:.2f}"
            )
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for policy in args.policies:
        mine = [r for r in rows if r["policy"] == policy]
        ax.plot(
            [r["partitions"] for r in mine],
            [r["pressure_ms"].get("median", 0) for r in mine],
            marker="o",
            label=f"{policy} pressure",
        )
        ax.plot(
            [r["partitions"] for r in mine],
            [r["fits_ms"].get("median", 0) for r in mine],
            marker="x",
            linestyle="--",
            label=f"{policy} fits",
        )
    ax.set_xscale("log")
    ax.set_xlabel("cached partitions")
    ax.set_ylabel("median ms per block event")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / f"{stem}.png", dpi=100)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
