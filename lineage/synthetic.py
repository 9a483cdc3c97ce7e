"""Spark event-log JSON objects built by hand, for tests that must not need a JVM.

The builders write the fields :mod:`lineage.parse` reads, in Spark 4's JsonProtocol
format; :func:`iterative_app` strings them into a consistent run of an iterative program
(a cached ``links`` RDD read by every iteration, one cached ``ranks`` RDD per iteration), so
the cost model's and the manager's tests can build a :class:`LineageDag` without Spark.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "IterativeApp",
    "block_updated",
    "iterative_app",
    "job_end",
    "job_start",
    "rdd_info",
    "stage_info",
    "task_end",
    "unpersist",
]

Event = dict[str, Any]


def _level(memory: bool, disk: bool = False) -> dict[str, Any]:
    return {
        "Use Disk": disk,
        "Use Memory": memory,
        "Use Off Heap": False,
        "Deserialized": False,
        "Replication": 1,
    }


def rdd_info(
    rdd_id: int,
    parents: list[int],
    *,
    name: str = "PythonRDD",
    call_site: str = "RDD at PythonRDD.scala:59",
    partitions: int = 4,
    cached: bool = False,
) -> dict[str, Any]:
    return {
        "RDD ID": rdd_id,
        "Name": name,
        "Callsite": call_site,
        "Parent IDs": parents,
        "Storage Level": _level(cached),
        "Number of Partitions": partitions,
        "Number of Cached Partitions": 0,
        "Memory Size": 0,
        "Disk Size": 0,
    }


def stage_info(
    stage_id: int,
    rdds: list[dict[str, Any]],
    parents: tuple[int, ...] | list[int] = (),
    *,
    submitted: int | None = None,
    completed: int | None = None,
    failure: str | None = None,
) -> dict[str, Any]:
    info = {
        "Stage ID": stage_id,
        "Stage Attempt ID": 0,
        "Stage Name": rdds[0]["Callsite"] if rdds else "",
        "Number of Tasks": rdds[0]["Number of Partitions"] if rdds else 0,
        "RDD Info": rdds,
        "Parent IDs": list(parents),
    }
    if submitted is not None:
        info["Submission Time"] = submitted
    if completed is not None:
        info["Completion Time"] = completed
    if failure is not None:
        info["Failure Reason"] = failure
    return info


def stage_submitted(info: dict[str, Any]) -> Event:
    return {"Event": "SparkListenerStageSubmitted", "Stage Info": info}


def stage_completed(info: dict[str, Any]) -> Event:
    return {"Event": "SparkListenerStageCompleted", "Stage Info": info}


def job_start(job_id: int, stages: list[dict[str, Any]], time: int, call_site: str) -> Event:
    return {
        "Event": "SparkListenerJobStart",
        "Job ID": job_id,
        "Submission Time": time,
        "Stage Infos": stages,
        "Stage IDs": [s["Stage ID"] for s in stages],
        "Properties": {"callSite.short": call_site},
    }


def job_end(job_id: int, time: int, succeeded: bool = True) -> Event:
    result = {"Result": "JobSucceeded"} if succeeded else {"Result": "JobFailed"}
    return {
        "Event": "SparkListenerJobEnd",
        "Job ID": job_id,
        "Completion Time": time,
        "Job Result": result,
    }


def task_end(
    stage_id: int, task_id: int, partition: int, run_ms: int, finish: int, executor: str = "driver"
) -> Event:
    return {
        "Event": "SparkListenerTaskEnd",
        "Stage ID": stage_id,
        "Stage Attempt ID": 0,
        "Task Type": "ResultTask",
        "Task End Reason": {"Reason": "Success"},
        "Task Info": {
            "Task ID": task_id,
            "Index": partition,
            "Attempt": 0,
            "Partition ID": partition,
            "Launch Time": finish - run_ms,
            "Executor ID": executor,
            "Finish Time": finish,
        },
        "Task Metrics": {
            "Executor Run Time": run_ms,
            "Executor CPU Time": run_ms * 1_000_000,
            "JVM GC Time": 1,
            "Shuffle Read Metrics": {"Remote Bytes Read": 0, "Local Bytes Read": 100},
            "Shuffle Write Metrics": {"Shuffle Bytes Written": 50},
            "Input Metrics": {"Bytes Read": 0},
            "Updated Blocks": [],
        },
    }


def block_updated(
    rdd_id: int,
    split: int,
    memory: int,
    disk: int = 0,
    executor: str = "driver",
    *,
    level: dict[str, Any] | None = None,
) -> Event:
    if level is None:
        level = _level(memory > 0, disk > 0)
    return {
        "Event": "SparkListenerBlockUpdated",
        "Block Updated Info": {
            "Block Manager ID": {"Executor ID": executor, "Host": "127.0.0.1", "Port": 1},
            "Block ID": f"rdd_{rdd_id}_{split}",
            "Storage Level": level,
            "Memory Size": memory,
            "Disk Size": disk,
        },
    }


def unpersist(rdd_id: int) -> Event:
    return {"Event": "SparkListenerUnpersistRDD", "RDD ID": rdd_id}


@dataclass
class IterativeApp:
    """A generated run and the facts it was generated from (what tests compare against)."""

    events: list[Event]
    links_id: int
    ranks_ids: list[int]
    job_ids: list[int]
    block_sizes: dict[tuple[int, int], int] = field(default_factory=dict)
    task_run_ms: dict[tuple[int, int], int] = field(default_factory=dict)  # (rdd, split)
    call_sites: dict[int, str] = field(default_factory=dict)


def iterative_app(iterations: int = 3, partitions: int = 4, app: str = "app.py") -> IterativeApp:
    """Events of: links = parse().groupByKey().cache(); links.count(); then per iteration
    ranks_i = join(links, ranks_{i-1}).reduceByKey().cache(); ranks_i.count().

    RDD ids, stage ids and task ids grow like Spark's; sizes and run times are deterministic.
    """
    events: list[Event] = []
    clock = 1_000
    next_rdd, next_task = 0, 0
    facts = IterativeApp(events=events, links_id=-1, ranks_ids=[], job_ids=[])

    def new_rdd() -> int:
        nonlocal next_rdd
        next_rdd += 1
        return next_rdd - 1

    def run_stage(stage: dict[str, Any], cached: list[int]) -> None:
        nonlocal clock, next_task
        events.append(stage_submitted({**stage, "Submission Time": clock}))
        for split in range(partitions):
            run_ms = 10 + 7 * split + stage["Stage ID"]
            clock += run_ms
            for rdd_id in cached:  # the block is stored while the task runs
                size = 1000 * (rdd_id + 1) + split
                events.append(block_updated(rdd_id, split, size))
                facts.block_sizes[(rdd_id, split)] = size
                facts.task_run_ms[(rdd_id, split)] = run_ms
            events.append(task_end(stage["Stage ID"], next_task, split, run_ms, clock))
            next_task += 1
        events.append(
            stage_completed({**stage, "Submission Time": clock, "Completion Time": clock})
        )

    # job 0: links.count()
    source = rdd_info(
        new_rdd(), [], name="ParallelCollectionRDD", call_site=f"parallelize at {app}:3"
    )
    pairs = rdd_info(
        new_rdd(), [source["RDD ID"]], name="PairwiseRDD", call_site=f"groupByKey at {app}:4"
    )
    shuffled = rdd_info(
        new_rdd(),
        [pairs["RDD ID"]],
        name="ShuffledRDD",
        call_site="partitionBy at NativeMethodAccessorImpl.java:0",
    )
    links = rdd_info(new_rdd(), [shuffled["RDD ID"]], name="links", cached=True)
    count0 = rdd_info(new_rdd(), [links["RDD ID"]], call_site=f"count at {app}:5")
    facts.links_id = links["RDD ID"]
    facts.call_sites[links["RDD ID"]] = f"groupByKey at {app}:4"
    map_stage = stage_info(0, [pairs, source])
    result_stage = stage_info(1, [count0, links, shuffled], [0])
    next_stage = 2
    events.append(job_start(0, [map_stage, result_stage], clock, f"count at {app}:5"))
    facts.job_ids.append(0)
    run_stage(map_stage, [])
    run_stage(result_stage, [links["RDD ID"]])
    events.append(job_end(0, clock))

    previous = None
    for i in range(iterations):
        job_id = i + 1
        reads = [links, shuffled] + ([previous] if previous else [])
        joined = rdd_info(
            new_rdd(),
            [links["RDD ID"]] + ([previous["RDD ID"]] if previous else []),
            name="PairwiseRDD",
            call_site=f"reduceByKey at {app}:9",
        )
        shuffled_i = rdd_info(
            new_rdd(),
            [joined["RDD ID"]],
            name="ShuffledRDD",
            call_site="partitionBy at NativeMethodAccessorImpl.java:0",
        )
        ranks = rdd_info(new_rdd(), [shuffled_i["RDD ID"]], name=f"ranks{i}", cached=True)
        count = rdd_info(new_rdd(), [ranks["RDD ID"]], call_site=f"count at {app}:10")
        facts.ranks_ids.append(ranks["RDD ID"])
        facts.call_sites[ranks["RDD ID"]] = f"reduceByKey at {app}:9"
        skipped = stage_info(next_stage, [pairs, source])  # links' shuffle: output exists
        map_i = stage_info(next_stage + 1, [joined, *reads], [next_stage])
        result_i = stage_info(next_stage + 2, [count, ranks, shuffled_i], [next_stage + 1])
        next_stage += 3
        events.append(job_start(job_id, [skipped, map_i, result_i], clock, f"count at {app}:10"))
        facts.job_ids.append(job_id)
        run_stage(map_i, [])
        run_stage(result_i, [ranks["RDD ID"]])
        events.append(job_end(job_id, clock))
        previous = ranks
    return facts
