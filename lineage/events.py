"""Plain records of what Spark did, made at the py4j boundary.

Nothing downstream of ``lineage`` ever holds a py4j ``JavaObject``: the listener adapter and
the event-log reader both turn each Spark event (in Spark's own event-log JSON form) into
these frozen dataclasses, so the cost model and the manager can be tested without a JVM.
Times are epoch milliseconds (Spark's convention); sizes are bytes.

Additions to the first version (all additive, with defaults): ``JobRun.stages`` (the stage
infos of the job at submission, skipped stages included — "job with its stages"),
``JobRun.call_site`` (the action's call site), :class:`RddUnpersisted` (an RDD's blocks
were all removed at once; Spark sends no per-block event for that), :class:`TaskStarted`
(a stage's read of a split is under way: the cost model stops counting it as a future
read) and ``TaskRun.shuffle_write_time_ns`` (Spark's own timing of its shuffle-file writes:
what a buffered write to the local dir costs this application).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ApplicationEnd",
    "BlockEvent",
    "JobRun",
    "LineageEvent",
    "RddNode",
    "RddUnpersisted",
    "StageRun",
    "StorageLevelInfo",
    "TaskRun",
    "TaskStarted",
]


@dataclass(frozen=True)
class StorageLevelInfo:
    """Spark's StorageLevel flags (``use_disk`` etc.); ``NONE`` is all False, replication 1."""

    use_disk: bool = False
    use_memory: bool = False
    use_off_heap: bool = False
    deserialized: bool = False
    replication: int = 1

    @property
    def is_valid(self) -> bool:
        """Spark's ``isValid``: the block is stored somewhere."""
        return (self.use_disk or self.use_memory) and self.replication > 0

    @property
    def name(self) -> str:
        if not self.is_valid:
            return "NONE"
        if self.use_memory and self.use_disk:
            return "MEMORY_AND_DISK"
        return "MEMORY_ONLY" if self.use_memory else "DISK_ONLY"


NONE_LEVEL = StorageLevelInfo()


@dataclass(frozen=True)
class RddNode:
    """One RDD as a stage info describes it."""

    rdd_id: int
    name: str
    call_site: str
    parent_ids: tuple[int, ...]
    num_partitions: int
    storage_level: StorageLevelInfo = NONE_LEVEL
    scope_name: str | None = None  # the operation scope ("map", "reduceByKey", ...) if known


@dataclass(frozen=True)
class StageRun:
    """A stage attempt: which RDDs it computes and which stages it waits for."""

    stage_id: int
    attempt: int
    name: str
    num_tasks: int
    rdds: tuple[RddNode, ...]
    parent_stage_ids: tuple[int, ...]
    submission_time: int | None = None
    completion_time: int | None = None
    failure_reason: str | None = None
    # the RDD whose partitions this stage's tasks produce (last RDD of the stage)
    final_rdd_id: int | None = None
    # True for a stage-completed event; a submitted event may already carry completion_time
    completed: bool = False


@dataclass(frozen=True)
class JobRun:
    """A job: from its start event (``stages`` set) or its end event (``succeeded`` set)."""

    job_id: int
    stage_ids: tuple[int, ...]
    submission_time: int | None = None
    completion_time: int | None = None
    succeeded: bool | None = None  # None until the job ends
    # every stage of the job as planned at submission (also those that will be skipped
    # because their shuffle output exists); empty on the end event
    stages: tuple[StageRun, ...] = ()
    call_site: str | None = None  # the action, e.g. "count at app.py:14"


@dataclass(frozen=True)
class TaskStarted:
    """A task began: from now on its stage is reading (or computing) its partition."""

    stage_id: int
    stage_attempt: int
    task_id: int
    partition_index: int
    executor_id: str
    launch_time: int = 0


@dataclass(frozen=True)
class TaskRun:
    """A finished task: one partition of one stage attempt."""

    stage_id: int
    stage_attempt: int
    task_id: int
    partition_index: int
    executor_id: str
    launch_time: int
    finish_time: int
    run_time_ms: int  # executor run time
    cpu_time_ns: int = 0
    deserialize_time_ms: int = 0
    gc_time_ms: int = 0
    input_bytes: int = 0
    shuffle_read_bytes: int = 0
    shuffle_write_bytes: int = 0
    shuffle_write_time_ns: int = 0
    memory_spill_bytes: int = 0
    disk_spill_bytes: int = 0
    successful: bool = True
    updated_blocks: tuple[BlockEvent, ...] = field(default=())


@dataclass(frozen=True)
class BlockEvent:
    """A block's storage changed (stored, moved, evicted, removed).

    ``rdd_id``/``split_index`` are set for RDD blocks (``rdd_<id>_<split>``), else None.
    A removal arrives with ``storage_level.is_valid`` False. The sizes are Spark's report, not
    what is held: a block dropped from memory to disk arrives with its level's memory flag
    off but ``memory_size`` still the dropped size (``BlockManager.reportBlockStatus`` sends
    the larger of the two) — :attr:`memory_held` and :attr:`disk_held` are what the block
    occupies after the event.
    """

    block_id: str
    executor_id: str
    storage_level: StorageLevelInfo
    memory_size: int
    disk_size: int
    time: int | None = None
    rdd_id: int | None = None
    split_index: int | None = None

    @property
    def memory_held(self) -> int:
        level = self.storage_level
        return self.memory_size if level.use_memory and level.is_valid else 0

    @property
    def disk_held(self) -> int:
        level = self.storage_level
        return self.disk_size if level.use_disk and level.is_valid else 0


@dataclass(frozen=True)
class RddUnpersisted:
    """``unpersist()``: every block of the RDD is gone (no per-block events follow)."""

    rdd_id: int


@dataclass(frozen=True)
class ApplicationEnd:
    time: int


LineageEvent = (
    RddNode
    | StageRun
    | JobRun
    | TaskStarted
    | TaskRun
    | BlockEvent
    | RddUnpersisted
    | ApplicationEnd
)
