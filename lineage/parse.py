"""Spark event-log JSON -> lineage records: the one parser for live events and log files.

The live listener asks the JVM for ``JsonProtocol.sparkEventToJsonString(event)`` — exactly
the line Spark's own event log would hold — so the same function reads both sources and a DAG
rebuilt from a log equals the one built live.

Only the events the lineage needs are read (stages, jobs, task ends, block updates,
unpersist, application end); every other event type gives ``[]``. A known event whose
required fields are missing or of the wrong type raises :class:`blaze.errors.InputError`
naming the event and the field; optional fields (metrics of a failed task, times of a stage
that never ran) default to zero or ``None``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from blaze_errors import InputError
from lineage.events import (
    NONE_LEVEL,
    ApplicationEnd,
    BlockEvent,
    JobRun,
    LineageEvent,
    RddNode,
    RddUnpersisted,
    StageRun,
    StorageLevelInfo,
    TaskRun,
    TaskStarted,
)

__all__ = ["HANDLED_EVENTS", "parse_block_id", "parse_event", "parse_json_line"]

_RDD_BLOCK = re.compile(r"^rdd_(\d+)_(\d+)$")


class _Fields:
    """Typed access to one JSON object; a missing or ill-typed field is an InputError."""

    def __init__(self, obj: Any, where: str) -> None:
        if not isinstance(obj, Mapping):
            raise InputError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        self.obj = obj
        self.where = where

    def integer(self, key: str, default: int | None = None, *, required: bool = True) -> int | None:
        value = self.obj.get(key)
        if value is None:
            if required and default is None:
                raise InputError(f"{self.where}: field {key!r} is missing")
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{self.where}: field {key!r} is not an integer: {value!r}")
        return value

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.obj.get(key, default)
        if value is not None and not isinstance(value, str):
            raise InputError(f"{self.where}: field {key!r} is not a string: {value!r}")
        return value

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.obj.get(key, default)
        if not isinstance(value, bool):
            raise InputError(f"{self.where}: field {key!r} is not a boolean: {value!r}")
        return value

    def integers(self, key: str) -> tuple[int, ...]:
        value = self.obj.get(key, [])
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise InputError(f"{self.where}: field {key!r} is not a list of integers")
        return tuple(value)

    def items(self, key: str) -> list[Any]:
        value = self.obj.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise InputError(f"{self.where}: field {key!r} is not a list")
        return value

    def child(self, key: str, *, required: bool = True) -> _Fields | None:
        value = self.obj.get(key)
        if value is None:
            if required:
                raise InputError(f"{self.where}: field {key!r} is missing")
            return None
        return _Fields(value, f"{self.where}.{key}")


def parse_block_id(block_id: str) -> tuple[int, int] | None:
    """``"rdd_5_3"`` -> ``(5, 3)``; any other block (broadcast, shuffle, ...) -> None."""
    match = _RDD_BLOCK.match(block_id)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _storage_level(f: _Fields | None) -> StorageLevelInfo:
    if f is None:
        return NONE_LEVEL
    return StorageLevelInfo(
        use_disk=f.flag("Use Disk"),
        use_memory=f.flag("Use Memory"),
        use_off_heap=f.flag("Use Off Heap"),
        deserialized=f.flag("Deserialized"),
        replication=f.integer("Replication", 1),
    )


def _scope_name(scope_json: str | None) -> str | None:
    if not scope_json:
        return None
    try:
        scope = json.loads(scope_json)
    except ValueError:
        return None
    return scope.get("name") if isinstance(scope, dict) else None


def _rdd(f: _Fields) -> RddNode:
    return RddNode(
        rdd_id=f.integer("RDD ID"),
        name=f.text("Name", ""),
        call_site=f.text("Callsite", ""),
        parent_ids=f.integers("Parent IDs"),
        num_partitions=f.integer("Number of Partitions", 0),
        storage_level=_storage_level(f.child("Storage Level", required=False)),
        scope_name=_scope_name(f.text("Scope")),
    )


def _stage(f: _Fields) -> StageRun:
    rdds = tuple(
        _rdd(_Fields(r, f"{f.where}.RDD Info[{i}]")) for i, r in enumerate(f.items("RDD Info"))
    )
    return StageRun(
        stage_id=f.integer("Stage ID"),
        attempt=f.integer("Stage Attempt ID", 0),
        name=f.text("Stage Name", ""),
        num_tasks=f.integer("Number of Tasks", 0),
        rdds=rdds,
        parent_stage_ids=f.integers("Parent IDs"),
        submission_time=f.integer("Submission Time", required=False),
        completion_time=f.integer("Completion Time", required=False),
        failure_reason=f.text("Failure Reason"),
        # StageInfo.fromStage lists the stage's own RDD first, then its narrow ancestors
        final_rdd_id=rdds[0].rdd_id if rdds else None,
    )


def _stage_submitted(f: _Fields) -> list[LineageEvent]:
    return [_stage(f.child("Stage Info"))]


def _stage_completed(f: _Fields) -> list[LineageEvent]:
    # The StageInfo is mutable and serialised when the (asynchronous) listener reads it, so a
    # *submitted* event of a fast stage may already carry a completion time: only the event
    # type says which one this is.
    return [dataclasses.replace(_stage(f.child("Stage Info")), completed=True)]


def _job_start(f: _Fields) -> list[LineageEvent]:
    stages = tuple(
        _stage(_Fields(s, f"{f.where}.Stage Infos[{i}]"))
        for i, s in enumerate(f.items("Stage Infos"))
    )
    props = f.child("Properties", required=False)
    return [
        JobRun(
            job_id=f.integer("Job ID"),
            stage_ids=f.integers("Stage IDs") or tuple(s.stage_id for s in stages),
            submission_time=f.integer("Submission Time", required=False),
            stages=stages,
            call_site=props.text("callSite.short") if props else None,
        )
    ]


def _job_end(f: _Fields) -> list[LineageEvent]:
    result = f.child("Job Result", required=False)
    succeeded = result.text("Result") == "JobSucceeded" if result else False
    return [
        JobRun(
            job_id=f.integer("Job ID"),
            stage_ids=(),
            completion_time=f.integer("Completion Time", required=False),
            succeeded=succeeded,
        )
    ]


def _block(f: _Fields, executor_id: str, time: int | None) -> BlockEvent:
    block_id = f.text("Block ID")
    if block_id is None:
        raise InputError(f"{f.where}: field 'Block ID' is missing")
    rdd_split = parse_block_id(block_id)
    return BlockEvent(
        block_id=block_id,
        executor_id=executor_id,
        storage_level=_storage_level(f.child("Storage Level", required=False)),
        memory_size=f.integer("Memory Size", 0),
        disk_size=f.integer("Disk Size", 0),
        time=time,
        rdd_id=rdd_split[0] if rdd_split else None,
        split_index=rdd_split[1] if rdd_split else None,
    )


def _block_updated(f: _Fields) -> list[LineageEvent]:
    info = f.child("Block Updated Info")
    manager = info.child("Block Manager ID", required=False)
    executor = (manager.text("Executor ID") if manager else None) or ""
    return [_block(info, executor, None)]


def _task_end(f: _Fields) -> list[LineageEvent]:
    info = f.child("Task Info")
    metrics = f.child("Task Metrics", required=False) or _Fields({}, f"{f.where}.Task Metrics")
    reason = f.child("Task End Reason", required=False)
    shuffle_read = metrics.child("Shuffle Read Metrics", required=False)
    shuffle_write = metrics.child("Shuffle Write Metrics", required=False)
    input_metrics = metrics.child("Input Metrics", required=False)
    executor = info.text("Executor ID") or ""
    finish = info.integer("Finish Time", 0)
    partition = info.integer("Partition ID", -1)
    if partition is None or partition < 0:  # logs older than Spark 3.3 have only "Index"
        partition = info.integer("Index")
    blocks = []
    for i, entry in enumerate(metrics.items("Updated Blocks")):
        entry_f = _Fields(entry, f"{metrics.where}.Updated Blocks[{i}]")
        status = entry_f.child("Status")
        merged = _Fields({**status.obj, "Block ID": entry_f.text("Block ID")}, entry_f.where)
        blocks.append(_block(merged, executor, finish or None))
    return [
        TaskRun(
            stage_id=f.integer("Stage ID"),
            stage_attempt=f.integer("Stage Attempt ID", 0),
            task_id=info.integer("Task ID"),
            partition_index=partition,
            executor_id=executor,
            launch_time=info.integer("Launch Time", 0),
            finish_time=finish,
            run_time_ms=metrics.integer("Executor Run Time", 0),
            cpu_time_ns=metrics.integer("Executor CPU Time", 0),
            deserialize_time_ms=metrics.integer("Executor Deserialize Time", 0),
            gc_time_ms=metrics.integer("JVM GC Time", 0),
            input_bytes=input_metrics.integer("Bytes Read", 0) if input_metrics else 0,
            shuffle_read_bytes=(
                shuffle_read.integer("Remote Bytes Read", 0)
                + shuffle_read.integer("Local Bytes Read", 0)
                if shuffle_read
                else 0
            ),
            shuffle_write_bytes=(
                shuffle_write.integer("Shuffle Bytes Written", 0) if shuffle_write else 0
            ),
            shuffle_write_time_ns=(
                shuffle_write.integer("Shuffle Write Time", 0) if shuffle_write else 0
            ),
            memory_spill_bytes=metrics.integer("Memory Bytes Spilled", 0),
            disk_spill_bytes=metrics.integer("Disk Bytes Spilled", 0),
            successful=(reason.text("Reason") if reason else "Success") == "Success",
            updated_blocks=tuple(blocks),
        )
    ]


def _task_start(f: _Fields) -> list[LineageEvent]:
    info = f.child("Task Info")
    partition = info.integer("Partition ID", -1)
    if partition is None or partition < 0:  # logs older than Spark 3.3 have only "Index"
        partition = info.integer("Index")
    return [
        TaskStarted(
            stage_id=f.integer("Stage ID"),
            stage_attempt=f.integer("Stage Attempt ID", 0),
            task_id=info.integer("Task ID"),
            partition_index=partition,
            executor_id=info.text("Executor ID") or "",
            launch_time=info.integer("Launch Time", 0),
        )
    ]


def _unpersist(f: _Fields) -> list[LineageEvent]:
    return [RddUnpersisted(rdd_id=f.integer("RDD ID"))]


def _application_end(f: _Fields) -> list[LineageEvent]:
    return [ApplicationEnd(time=f.integer("Timestamp", 0))]


_PARSERS: dict[str, Callable[[_Fields], list[LineageEvent]]] = {
    "SparkListenerStageSubmitted": _stage_submitted,
    "SparkListenerStageCompleted": _stage_completed,
    "SparkListenerJobStart": _job_start,
    "SparkListenerJobEnd": _job_end,
    "SparkListenerTaskStart": _task_start,
    "SparkListenerTaskEnd": _task_end,
    "SparkListenerBlockUpdated": _block_updated,
    "SparkListenerUnpersistRDD": _unpersist,
    "SparkListenerApplicationEnd": _application_end,
}

HANDLED_EVENTS = frozenset(_PARSERS)
"""The ``"Event"`` names that produce records; all others parse to ``[]``."""


def parse_event(event: Mapping[str, Any]) -> list[LineageEvent]:
    """Records for one Spark event-log JSON object (``[]`` for event types not needed).

    Raises :class:`InputError` if ``event`` is not an event object or a needed field is
    missing or ill-typed.
    """
    if not isinstance(event, Mapping):
        raise InputError(f"a Spark event must be a JSON object, got {type(event).__name__}")
    kind = event.get("Event")
    if not isinstance(kind, str):
        raise InputError("not a Spark event: the object has no 'Event' name")
    parser = _PARSERS.get(kind)
    return parser(_Fields(event, kind)) if parser else []


def parse_json_line(line: str) -> list[LineageEvent]:
    """:func:`parse_event` of one JSON text line (raises InputError if it is not JSON)."""
    try:
        event = json.loads(line)
    except ValueError as exc:
        raise InputError(f"not a JSON event line: {exc.msg} at column {exc.colno}") from None
    return parse_event(event)
