"""One (job, policy) run in its own Spark application: ``python -m jobs.run_one ARGS``.

The runner starts this module once per run so runs never share a JVM, a cache or warmed-up
Python workers. It squeezes the storage memory to the requested size, runs the job under the
policy, stops Spark, replays the event log for the cache metrics, and writes ``run.json``
(timings and metrics) and ``result.npz`` (the job's answer) into ``--out``.

Storage memory: Spark's unified pool is ``(system memory - 300 MiB) * spark.memory.fraction``.
``spark.testing.memory`` pins "system memory" to the heap size we set, so the pool is exactly
``storage_bytes`` (execution borrows from the same pool, as it always does).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import traceback
from pathlib import Path

__all__ = ["HEAP_BYTES", "RESERVED_BYTES", "main", "run_conf"]

HEAP_BYTES = 1536 << 20
RESERVED_BYTES = 300 << 20
UNLIMITED_FRACTION = 0.6
UNROLL_THRESHOLD_BYTES = 64 << 10


def run_conf(
    storage_bytes: int | None,
    event_dir: str | Path,
    app_name: str,
    *,
    local_dir: str | Path | None = None,
    pin_heap: bool = False,
) -> dict[str, str]:
    """The Spark conf of one run; ``storage_bytes=None`` keeps Spark's default pool (~740 MB).

    Node mode (:mod:`jobs.nodedisk`) names ``spark.local.dir`` (the directory on the
    throttled device) and pins the heap: committed and touched at start, so the driver's
    resident memory is the same under every policy and one sizing run measures it."""
    usable = HEAP_BYTES - RESERVED_BYTES
    if storage_bytes is None:
        fraction = UNLIMITED_FRACTION
    else:
        if not 0 < storage_bytes <= usable:
            raise ValueError(f"storage_bytes={storage_bytes} must be in (0, {usable}]")
        fraction = storage_bytes / usable
    conf = {
        "spark.master": "local[2]",
        "spark.app.name": app_name,
        "spark.driver.memory": str(HEAP_BYTES),
        "spark.testing.memory": str(HEAP_BYTES),
        "spark.memory.fraction": f"{fraction:.8f}",
        # execution may reclaim any cached block: in a squeezed pool the default protected
        # half would starve DataFrame aggregations (UNABLE_TO_ACQUIRE_MEMORY), and it is
        # the same rule for every policy
        "spark.memory.storageFraction": "0",
        "spark.ui.enabled": "false",
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": Path(event_dir).resolve().as_uri(),
        "spark.eventLog.logBlockUpdates.enabled": "true",
        "spark.eventLog.compress": "false",
        "spark.eventLog.rolling.enabled": "false",
        "spark.default.parallelism": "4",
        "spark.sql.shuffle.partitions": "4",
        "spark.python.worker.reuse": "true",
        # Spark reserves 1 MiB before unrolling a block; with pools of a few MiB that alone
        # refuses most blocks, so every run (unlimited included) reserves less up front
        "spark.storage.unrollMemoryThreshold": str(UNROLL_THRESHOLD_BYTES),
    }
    if local_dir is not None:
        conf["spark.local.dir"] = str(Path(local_dir).resolve())
    if pin_heap:
        conf["spark.driver.extraJavaOptions"] = f"-Xms{HEAP_BYTES} -XX:+AlwaysPreTouch"
    return conf


def execute(args: argparse.Namespace) -> dict:
    import blaze
    from blaze.manager import active_manager
    from jobs import dataset_spec, job_params, load_job, parse_param_overrides, split_job
    from jobs.caching import MANAGER_POLICIES, Cacher, manager_conf
    from jobs.datagen import ensure_dataset
    from jobs.eventlog import find_event_log, replay_block_updates

    job = load_job(args.job)
    _, variant = split_job(args.job)
    out = Path(args.out)
    events = out / "events"
    if events.exists():  # a previous bench into the same --out left its log: this run owns it
        shutil.rmtree(events)
    events.mkdir(parents=True)
    spec = dataset_spec(args.job, args.scale, args.seed, args.generator)
    data = ensure_dataset(args.data_dir, spec)
    params = job_params(args.job, args.scale, parse_param_overrides(args.param))
    record: dict = {"job": args.job, "policy": args.policy, "scale": args.scale}
    record["generator"] = args.generator
    record["variant"] = variant
    record["storage_bytes"] = args.storage_bytes
    conf = run_conf(
        args.storage_bytes,
        events,
        f"bench-{args.job}-{args.policy}",
        local_dir=args.local_dir,
        pin_heap=args.pin_heap,
    )
    conf.update(manager_conf(args.policy))  # the flag alone: the session attaches the manager
    if args.profile_mode != "off" and args.policy in MANAGER_POLICIES:
        conf["spark.blaze.profile.mode"] = args.profile_mode
        conf["spark.blaze.profile.path"] = str(Path(args.profile_path).resolve())
    started = time.perf_counter()
    spark = blaze.session(conf, app_name=conf["spark.app.name"])
    startup = time.perf_counter() - started
    report = None
    try:
        manager = active_manager(spark)
        if args.policy in MANAGER_POLICIES and manager is None:
            raise RuntimeError(f"spark.blaze.enabled=true attached no manager ({args.policy})")
        cacher = Cacher(spark, args.policy)
        started = time.perf_counter()
        result = job.run(spark, data, cacher, params, variant)
        elapsed = time.perf_counter() - started
        stats = cacher.stats()
        if manager is not None:
            report = manager.report()
    finally:
        spark.stop()
    trace = replay_block_updates(find_event_log(events))
    result.save(out / "result.npz")
    record.update(
        status="ok",
        seconds=elapsed,
        startup_seconds=startup,
        iteration_seconds=result.iteration_seconds,
        iterations=result.iterations,
        summary=result.summary,
        peak_memory_bytes=trace.peak_memory_bytes,
        disk_bytes_written=trace.disk_bytes_written,
        memory_exits=trace.memory_exits,
        **_cache_counters(stats, report),
        cache_reads=stats.reads,
        cache_computes=stats.computes,
        dead_writes=report.get("dead_writes") if report else None,
        per_dataset=stats.per_dataset,
        manager_report=_jsonable(report),
    )
    return record


def _cache_counters(stats, report) -> dict:
    """Recomputations and hit rate from the program's own cached datasets, or — when the
    manager chose what to cache itself (``blaze_auto``: the program's calls are ignored and
    no counted dataset is cached) — from the manager's own hit and miss books, said so."""
    if stats.datasets or not report:
        return {
            "recomputed_partitions": stats.recomputed_partitions if stats.datasets else None,
            "cache_hit_rate": stats.hit_rate,
            "cache_counters": "program",
        }
    lookups = report.get("hits", 0) + report.get("misses", 0)
    return {
        "recomputed_partitions": report.get("recomputed_partitions"),
        "cache_hit_rate": report["hits"] / lookups if lookups else None,
        "cache_counters": "manager",
    }


def _jsonable(value):
    return json.loads(json.dumps(value, default=str)) if value is not None else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.run_one", description=__doc__)
    parser.add_argument("--job", required=True)
    parser.add_argument("--policy", required=True)
    parser.add_argument("--scale", type=float, required=True)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--generator", type=int, default=1, help="data shape: 1 or 2")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--local-dir", default=None, help="spark.local.dir (node mode)")
    parser.add_argument(
        "--pin-heap", action="store_true", help="commit and touch the heap at start (node mode)"
    )
    parser.add_argument("--storage-bytes", type=int, default=None)
    parser.add_argument("--out", required=True)
    parser.add_argument("--param", action="append", default=[], help="name=number override")
    parser.add_argument(
        "--profile-mode",
        choices=("off", "record", "use"),
        default="off",
        help="spark.blaze.profile.mode of a manager policy's run (record: write the profile at "
        "the end; use: read it at the start)",
    )
    parser.add_argument("--profile-path", default=None, help="spark.blaze.profile.path")
    args = parser.parse_args(argv)
    if args.profile_mode != "off" and not args.profile_path:
        parser.error(f"--profile-mode {args.profile_mode} needs --profile-path")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    try:
        record = execute(args)
    except Exception as exc:  # the parent shows this line; the traceback goes to the log
        traceback.print_exc()
        record = {"job": args.job, "policy": args.policy, "status": "failed"}
        record["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
    (Path(args.out) / "run.json").write_text(json.dumps(record, indent=1))
    return 0 if record["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
