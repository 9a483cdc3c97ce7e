"""Cost of the attached cache manager on many short jobs, and its effect under squeezed memory.

Two measurements in one SparkContext (local[2]), alternating the variants round by round and
taking the median, so machine noise (a shared 2-core box) hits every variant alike:

1. **overhead**: an iterative loop of short jobs (a cached RDD read by 20 small actions per
   round) with no manager, with the manager observing (``spark``) and deciding (``blaze``,
   ample budget). Per-job work the manager adds: a listener-bus sync, a JVM lineage walk,
   block decisions. Ratio = variant / no manager.
2. **squeezed**: a dataset of 16 partitions with an expensive map (per-record Python work)
   read 4 times, the budget holding ~1/3 of it: ``none`` (every read recomputes) vs
   ``mem_only`` (LRU drop) vs ``blaze`` (cost-based: spills what is cheaper to re-read).

Writes benchmarks/results/manager_overhead.{json,md,png}. Usage:
``python benchmarks/manager_overhead.py [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import blaze

RESULTS = Path(__file__).resolve().parent / "results"


def _overhead_round(sc, variant: str) -> float:
    manager = None
    if variant != "no manager":
        manager = blaze.attach(sc, policy=variant, disk_write_ms_per_mib=1, disk_read_ms_per_mib=1)
    try:
        data = sc.parallelize(range(20_000), 4).map(lambda x: x * 2).persist(blaze.BLAZE)
        data.count()
        started = time.perf_counter()
        for i in range(20):
            data.map(lambda x, i=i: x + i).sum()
        elapsed = time.perf_counter() - started
        data.unpersist(blocking=True)
        return elapsed
    finally:
        if manager is not None:
            manager.detach()


def _expensive(x: int) -> tuple[int, str]:
    total = 0
    for k in range(300):
        total = (total + x * k) % 1_000_003
    return (total, "p" * 40)


def _squeezed_round(sc, policy: str, budget: int) -> tuple[float, dict]:
    manager = blaze.attach(sc, policy=policy, memory_budget=budget)
    try:
        data = sc.parallelize(range(24_000), 16).map(_expensive).persist(blaze.BLAZE)
        started = time.perf_counter()
        checks = [data.map(lambda kv: kv[0]).sum() for _ in range(4)]
        elapsed = time.perf_counter() - started
        assert len(set(checks)) == 1
        report = manager.report()
        data.unpersist(blocking=True)
        return elapsed, report
    finally:
        manager.detach()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    spark = blaze.session({"spark.master": "local[2]"}, app_name="manager-overhead")
    sc = spark.sparkContext
    try:
        overhead_variants = ["no manager", "spark", "blaze"]
        times: dict[str, list[float]] = {v: [] for v in overhead_variants}
        _overhead_round(sc, "no manager")  # warm the Python workers
        for _ in range(args.rounds):
            for variant in overhead_variants:
                times[variant].append(_overhead_round(sc, variant))
        base = statistics.median(times["no manager"])
        overhead = {
            v: {
                "median_s": statistics.median(t),
                "ratio": statistics.median(t) / base,
                "runs_s": t,
            }
            for v, t in times.items()
        }

        # size one copy of the dataset, then give the budget a third of it
        probe = blaze.attach(sc, policy="blaze")
        data = sc.parallelize(range(24_000), 16).map(_expensive).persist(blaze.BLAZE)
        data.count()
        total = sum(v["memory"] for v in probe.report()["cached_bytes_by_executor"].values())
        data.unpersist(blocking=True)
        probe.detach()
        budget = max(total // 3, 1)
        squeezed_policies = ["none", "mem_only", "blaze"]
        squeezed: dict[str, dict] = {p: {"runs_s": []} for p in squeezed_policies}
        for _ in range(args.rounds):
            for policy in squeezed_policies:
                elapsed, report = _squeezed_round(sc, policy, budget)
                squeezed[policy]["runs_s"].append(elapsed)
                squeezed[policy]["last_report"] = {
                    k: report[k]
                    for k in (
                        "hits",
                        "misses",
                        "recomputed_partitions",
                        "disk_bytes_written",
                        "disk_bytes_read",
                        "decisions",
                    )
                }
        none_median = statistics.median(squeezed["none"]["runs_s"])
        for entry in squeezed.values():
            entry["median_s"] = statistics.median(entry["runs_s"])
            entry["ratio_to_none"] = entry["median_s"] / none_median
    finally:
        spark.stop()

    result = {
        "rounds": args.rounds,
        "overhead_20_short_jobs": overhead,
        "squeezed": {"dataset_bytes": total, "budget_bytes": budget, "policies": squeezed},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "manager_overhead.json").write_text(json.dumps(result, indent=2))
    lines = [
        "# Cache manager: overhead and squeezed-memory effect",
        "",
        f"local[2], shared 2-core machine, median of {args.rounds} alternating rounds.",
        "",
        "| 20 short jobs | median s | ratio to no manager |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {v} | {e['median_s']:.2f} | {e['ratio']:.2f} |" for v, e in overhead.items()]
    lines += [
        "",
        f"Squeezed: dataset {total} bytes, budget {budget} bytes per executor, 4 reads.",
        "",
        "| policy | median s | ratio to none | recomputed | disk written |",
        "| --- | --- | --- | --- | --- |",
    ]
    for policy, e in squeezed.items():
        r = e["last_report"]
        lines.append(
            f"| {policy} | {e['median_s']:.2f} | {e['ratio_to_none']:.2f} | "
            f"{r['recomputed_partitions']} | {r['disk_bytes_written']} |"
        )
    (RESULTS / "manager_overhead.md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.bar(list(overhead), [e["median_s"] for e in overhead.values()])
    left.set_title("20 short jobs (s)")
    right.bar(list(squeezed), [e["median_s"] for e in squeezed.values()])
    right.set_title("squeezed memory, 4 reads (s)")
    fig.tight_layout()
    fig.savefig(RESULTS / "manager_overhead.png", dpi=100)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
