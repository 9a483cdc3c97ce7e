"""Decision latency per block event of the manager's engine at 1k / 10k / 100k cached partitions.

Pure Python, no Spark: the manager's own block-event path (:class:`blaze.enforce.
EnforcementMixin` over the real :class:`blaze.ledger.Ledger`, :class:`blaze.engine.Engine`
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
import time
from collections import defaultdict
from pathlib import Path

from blaze.enforce import EnforcementMixin
from blaze.engine import Engine
from blaze.explain import DecisionLog
from blaze.ledger import Ledger
from blaze.measure import Measurements
from blaze.policies import get_manager_policy
from blaze.registry import ManagedDataset
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
    """Stands in for :class:`blaze._jvm.JvmBridge`: every command succeeds at once."""

    is_local = True

    def __init__(self) -> None:
        self.calls: dict[str, int] = defaultdict(int)

    def spill_to_disk(self, rdd_id: int, split: int) -> str:
        self.calls["spill"] += 1
        return "spilled"

    def remove_block(self, rdd_id: int, split: int) -> None:
        self.calls["remove"] += 1


class _NoTimer:
    """No Python workers here: nothing is timed; the task's time stands in."""

    def drain(self) -> dict:
        return {}

    def instrument(self, rdd, token: int) -> bool:
        return False


class _Harness(EnforcementMixin):
    """The manager's enforcement path with everything it reads, minus Spark."""

    def __init__(self, policy: str, budget: int) -> None:
        self.policy = get_manager_policy(policy)
        self.memory_budget = budget
        self._ledger = Ledger()
        self._datasets: dict[int, ManagedDataset] = {}
        disk = DiskCost(DISK_MS_PER_MIB, DISK_MS_PER_MIB)
        self._engine = Engine(LineageDag(), disk, site_of=self._site, later_reads=lambda rdd: 1.0)
        self._inputs = Measurements(self._engine, OnlineDiskCost(disk), _NoTimer())
        self._prefetcher = None
        self._rdd_of_token: dict[int, int] = {}
        self._token_by_rdd_id: dict[int, int] = {}
        self.disk_cost = disk
        self._explain = DecisionLog(100_000)
        self._bridge = _CountingBridge()
        self._deferred: dict = {}
        self._awaiting: dict = {}
        self._site_sizes: dict = defaultdict(dict)
        self._site_compute_ms: dict = defaultdict(list)
        self._observed: set = set()
        self._predictors = Predictors()
        self.errors = 0

    def _handle(self, event) -> None:
        self._engine.dag.apply(event)  # as the listener does before the manager sees it
        super()._handle(event)

    def _site(self, rdd_id: int) -> str | None:
        dataset = self._datasets.get(rdd_id)
        return dataset.site if dataset else None

    def _count_error(self, where: str, exc: BaseException) -> None:
        self.errors += 1

    def _on_job_started(self, job) -> None:
        return None

    def _forget_rdd(self, rdd_id: int, reason: str) -> None:
        self._ledger.forget_rdd(rdd_id, reason)


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
