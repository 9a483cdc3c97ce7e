"""The application's lineage DAG, built from lineage records (live or from an event log).

Nodes are JVM RDDs keyed by RDD id; edges are Spark's dependency parents. Each node also
knows which stages and jobs referenced it and, per partition, the block Spark last reported
(size, level, executor) with the run time of the task that produced it.

Why it is built the way it is:

- Events may arrive out of order or not at all (the listener bus drops events when a queue
  is full): every ``apply`` merges into what is known and never raises on a record that
  refers to stages, jobs or RDDs it has not seen. Duplicated records are idempotent.
- It is fed from callback threads while the manager reads it: one re-entrant lock guards all
  state, and queries return immutable values or fresh copies.
- PySpark creates the ``PythonRDD`` of a cached or pipelined Python RDD lazily, outside any
  Python call-site scope, so Spark reports it at a JVM frame (``RDD at PythonRDD.scala:59``).
  :meth:`LineageDag.call_site` therefore gives the *effective* call site: the RDD's own when it
  points at Python code, else the nearest ancestor's that does. ``by_call_site`` groups by it,
  which is what matching "the same RDD in the next iteration" needs.

Meanings of the derived values:

- ``stages_of(r)``: every stage whose RDD list contains ``r`` — planned (from job starts,
  including stages Spark later skipped) or run. A stage's list holds its own RDD and all its
  narrow ancestors, so a stage that reads a cached RDD lists it (and its ancestors) too.
- ``executed_stages_of(r)``: those of ``stages_of(r)`` that were actually submitted.
- ``reuse_count(r)`` = ``len(executed_stages_of(r)) - 1`` (at least 0): how many stages beyond
  the first used the RDD — by reading its cached blocks or by recomputing it. An RDD computed
  once and read by N later stages has reuse count N.
- ``partitions(r)[i].compute_time_ms``: executor run time of the task that produced block
  ``rdd_r_i`` — the first successful task, after the block was stored, of a submitted stage
  that lists ``r``, with partition index ``i``, on the block's executor (the latest such
  task before the store if the block event came late); ``None`` if no such task was seen.

Retirement (a live application only, :meth:`LineageDag.retire_finished`): a program of
thousands of short jobs must not keep a graph that grows with every job. Stages whose jobs
all ended are forgotten (with their tasks and jobs), and so are RDDs no stage still to run
lists, that hold no stored block, are not persisted, have no child left and that the caller
does not keep; ``first_job_of`` is kept per remaining RDD, so what the cost model reads of
an RDD (its first job, its stages still to run) is the same with or without retirement.

Other queries: ``first_job_of``, ``signature``, ``submitted_stage_ids``, ``skipped_stage_ids``, ``tasks``,
``stage_ids``, ``job_ids``, ``is_unpersisted``, ``events_applied``, ``ended_at``;
``snapshot`` (comparable with ``==``) and ``from_json_lines`` for recorded runs.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

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

__all__ = ["LineageDag", "PartitionObservation", "Retired", "is_python_call_site"]

# a JVM frame, or the JVM's placeholder when no user frame was on its stack (Spark builds the
# short form "<method> at <unknown>:0"; seen for the ShuffledRDD of partitionBy on py4j threads)
_JVM_FRAME = re.compile(r"(\.(scala|java):\d+|<unknown>:0)$")


def is_python_call_site(call_site: str) -> bool:
    """True if ``call_site`` points at user code, not a JVM frame PySpark went through.

    In a PySpark program every user call site is a Python file (or ``<stdin>``); ``*.scala``
    and ``*.java`` frames mean PySpark built the RDD internally.
    """
    return bool(call_site) and not _JVM_FRAME.search(call_site)


@dataclass(frozen=True)
class PartitionObservation:
    """One cached partition as Spark last reported it (sizes 0 and level NONE once gone)."""

    rdd_id: int
    split_index: int
    memory_size: int
    disk_size: int
    storage_level: StorageLevelInfo
    executor_id: str
    compute_time_ms: int | None  # run time of the task that produced the block
    task_id: int | None = None  # that task, if known

    @property
    def size(self) -> int:
        """Bytes the partition occupies (memory + disk)."""
        return self.memory_size + self.disk_size

    @property
    def is_stored(self) -> bool:
        return self.storage_level.is_valid


@dataclass(frozen=True)
class Retired:
    """What one :meth:`LineageDag.retire_finished` forgot, and the remaining RDDs whose stage
    lists lost finished stages (a mirror of the graph re-reads those)."""

    rdds: tuple[int, ...] = ()
    stages: tuple[int, ...] = ()
    trimmed: tuple[int, ...] = ()


@dataclass
class _BlockState:
    event: BlockEvent
    stored_seq: int  # sequence number of the event that (re)stored the block


def _merge(old: Any, new: Any) -> Any:
    """``new`` over ``old``, keeping old values where ``new`` has None or an empty tuple."""
    changes = {}
    for f in fields(new):
        value = getattr(new, f.name)
        if value is not None and value != ():
            changes[f.name] = value
    return replace(old, **changes)


class LineageDag:
    """Thread-safe lineage DAG; feed it with :meth:`apply`, query it from any thread."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._seq = 0
        self._rdds: dict[int, RddNode] = {}
        self._children: dict[int, set[int]] = defaultdict(set)
        self._attempts: dict[tuple[int, int], StageRun] = {}
        self._latest_attempt: dict[int, int] = {}
        self._planned: dict[int, StageRun] = {}
        self._ran: set[int] = set()
        self._rdd_stages: dict[int, set[int]] = defaultdict(set)
        self._first_job: dict[int, int] = {}  # rdd -> lowest job id of a stage listing it
        self._stage_jobs: dict[int, set[int]] = defaultdict(set)
        self._jobs: dict[int, JobRun] = {}
        self._tasks: dict[tuple[int, int], list[tuple[int, TaskRun]]] = defaultdict(list)
        self._stage_tasks: dict[int, list[TaskRun]] = defaultdict(list)
        self._task_ids: set[tuple[int, int]] = set()  # (task id, attempt stage) seen
        # rdd id -> split index -> executor id -> latest block state
        self._blocks: dict[int, dict[int, dict[str, _BlockState]]] = defaultdict(dict)
        self._unpersisted: set[int] = set()
        # rdd -> nearest (Python call site, hops) among it and its ancestors, or None if no
        # ancestor has one; only for RDDs whose whole ancestry is known (see ``signature``)
        self._nearest_site: dict[int, tuple[str, int] | None] = {}
        self._ended_at: int | None = None
        self.events_applied = 0

    # ------------------------------------------------------------------ building

    @classmethod
    def from_events(cls, events: Iterable[LineageEvent]) -> LineageDag:
        dag = cls()
        for event in events:
            dag.apply(event)
        return dag

    @classmethod
    def from_json_lines(cls, lines: Iterable[str]) -> LineageDag:
        """The DAG of Spark event JSON lines; strict: a malformed line raises InputError."""
        from lineage.parse import parse_json_line

        return cls.from_events(r for line in lines if line.strip() for r in parse_json_line(line))

    @classmethod
    def from_event_log(cls, path: str | Path) -> LineageDag:
        """The DAG of a past run. Lines skipped as malformed are in ``dag.log_stats``."""
        from lineage.eventlog import read_event_log

        records, stats = read_event_log(path)
        dag = cls.from_events(records)
        dag.log_stats = stats
        return dag

    def apply(self, event: LineageEvent) -> None:
        """Merge one record. Unknown references are kept, never an error."""
        with self._lock:
            self._seq += 1
            self.events_applied += 1
            if isinstance(event, TaskRun):
                self._apply_task(event)
            elif isinstance(event, BlockEvent):
                self._apply_block(event)
            elif isinstance(event, StageRun):
                self._apply_stage(self.described(event), ran=True)
            elif isinstance(event, JobRun):
                self._apply_job(event)
            elif isinstance(event, RddNode):
                self._add_rdd(event)
            elif isinstance(event, RddUnpersisted):
                self._apply_unpersist(event)
            elif isinstance(event, ApplicationEnd):
                self._ended_at = event.time
            elif isinstance(event, TaskStarted):
                pass  # a read under way: the cost model's concern, not the graph's
            else:
                self.events_applied -= 1
                raise TypeError(f"not a lineage event: {type(event).__name__}")

    def _add_rdd(self, node: RddNode) -> None:
        old = self._rdds.get(node.rdd_id)
        self._rdds[node.rdd_id] = node
        if old is not None and (old.parent_ids, old.call_site) != (node.parent_ids, node.call_site):
            # a checkpoint cut the RDD's lineage: its old parents lose it as a child (so they
            # can retire), and what was derived from its ancestry is derived again
            for parent in set(old.parent_ids) - set(node.parent_ids):
                siblings = self._children.get(parent)
                if siblings is not None:
                    siblings.discard(node.rdd_id)
                    if not siblings:
                        del self._children[parent]
            self._nearest_site.clear()
        for parent in node.parent_ids:
            self._children[parent].add(node.rdd_id)

    def _apply_stage(self, stage: StageRun, *, ran: bool) -> None:
        jobs = self._stage_jobs.get(stage.stage_id, ())
        first = min(jobs, default=None)
        for node in stage.rdds:
            self._add_rdd(node)
            self._rdd_stages[node.rdd_id].add(stage.stage_id)
            if first is not None and first < self._first_job.get(node.rdd_id, first + 1):
                self._first_job[node.rdd_id] = first
        if not ran:
            old = self._planned.get(stage.stage_id)
            self._planned[stage.stage_id] = _merge(old, stage) if old else stage
            return
        self._ran.add(stage.stage_id)
        key = (stage.stage_id, stage.attempt)
        old = self._attempts.get(key)
        self._attempts[key] = _merge(old, stage) if old else stage
        if stage.attempt >= self._latest_attempt.get(stage.stage_id, -1):
            self._latest_attempt[stage.stage_id] = stage.attempt

    def _apply_job(self, job: JobRun) -> None:
        old = self._jobs.get(job.job_id)
        self._jobs[job.job_id] = _merge(old, job) if old else job
        for stage_id in job.stage_ids:
            self._stage_jobs[stage_id].add(job.job_id)
        for stage in job.stages:
            self._apply_stage(stage, ran=False)

    def _apply_task(self, task: TaskRun) -> None:
        key = (task.task_id, task.stage_attempt)
        if key in self._task_ids:
            return
        self._task_ids.add(key)
        self._tasks[(task.stage_id, task.partition_index)].append((self._seq, task))
        self._stage_tasks[task.stage_id].append(task)
        for block in task.updated_blocks:
            self._apply_block(block)

    def _apply_block(self, block: BlockEvent) -> None:
        if block.rdd_id is None or block.split_index is None:
            return  # broadcast, shuffle, stream blocks are not lineage
        states = self._blocks[block.rdd_id].setdefault(block.split_index, {})
        old = states.get(block.executor_id)
        if block.storage_level.is_valid:
            self._unpersisted.discard(block.rdd_id)
        stored_seq = (
            old.stored_seq
            if old is not None and old.event.storage_level.is_valid and block.storage_level.is_valid
            else self._seq
        )
        states[block.executor_id] = _BlockState(block, stored_seq)

    def _apply_unpersist(self, event: RddUnpersisted) -> None:
        self._unpersisted.add(event.rdd_id)
        for states in self._blocks.get(event.rdd_id, {}).values():
            for executor, state in states.items():
                gone = replace(state.event, storage_level=NONE_LEVEL, memory_size=0, disk_size=0)
                states[executor] = _BlockState(gone, self._seq)

    # ------------------------------------------------------------------ queries

    @property
    def rdds(self) -> Mapping[int, RddNode]:
        """A read-only snapshot of every RDD seen, by id."""
        with self._lock:
            return MappingProxyType(dict(self._rdds))

    def node(self, rdd_id: int) -> RddNode | None:
        """One RDD as last described (None if never seen); no copy of the whole map."""
        with self._lock:
            return self._rdds.get(rdd_id)

    def parents(self, rdd_id: int) -> tuple[int, ...]:
        with self._lock:
            node = self._rdds.get(rdd_id)
            return node.parent_ids if node else ()

    def children(self, rdd_id: int) -> tuple[int, ...]:
        with self._lock:
            return tuple(sorted(self._children.get(rdd_id, ())))

    def call_site(self, rdd_id: int) -> str:
        """The effective call site: own if it is Python code, else the nearest ancestor's."""
        return self.signature(rdd_id)[0]

    def signature(self, rdd_id: int) -> tuple[str, int]:
        """(effective call site, hops to the RDD that carries it): stable across iterations.

        Several RDDs share a call site (PySpark builds a PairwiseRDD, a PythonRDD and a
        ShuffledRDD for one ``reduceByKey``); the hop count tells them apart, so the same
        ``signature`` in iteration i and i+1 marks the same step of the program. The nearest
        ancestor wins; between equally near ones, the one reached through the earlier parent.

        Why remembered per RDD: the question is asked for every RDD of every stage event, and
        a DataFrame's lineage has no Python call site at all — a walk up each time grew with
        every iteration of a loop (``frame = frame.select(...)``) and made each job dearer.
        An RDD's ancestry never changes but at a checkpoint (``_add_rdd`` forgets then).
        """
        with self._lock:
            node = self._rdds.get(rdd_id)
            if node is None:
                return ("", 0)
            found = self._nearest_python_site(rdd_id)
            return found if found is not None else (node.call_site, 0)

    def _nearest_python_site(self, rdd_id: int) -> tuple[str, int] | None:
        """Derived from the parents' answers, each RDD once (caller holds the lock)."""
        answers: dict[int, tuple[str, int] | None] = {}
        complete: dict[int, bool] = {}
        expanded: set[int] = set()  # waiting for its parents (a cycle back to one: no site)
        stack = [rdd_id]
        while stack:
            current = stack[-1]
            if current in answers or current in self._nearest_site:
                stack.pop()
                continue
            node = self._rdds.get(current)
            if node is None:  # not described (yet): no site, and nothing below it is final
                answers[current], complete[current] = None, False
                stack.pop()
                continue
            if is_python_call_site(node.call_site):
                answers[current], complete[current] = (node.call_site, 0), True
                stack.pop()
                continue
            parents = [p for p in node.parent_ids if p != current]
            known = self._nearest_site
            waiting = [p for p in parents if p not in answers and p not in known]
            if waiting and current not in expanded:
                expanded.add(current)
                stack.extend(reversed(waiting))
                continue
            stack.pop()
            best: tuple[str, int] | None = None
            final = True
            for parent in parents:
                if parent in answers:
                    found, final = answers[parent], final and complete[parent]
                elif parent in known:
                    found = known[parent]
                else:  # on the path being walked: malformed lineage
                    found, final = None, False
                if found is not None and (best is None or found[1] + 1 < best[1]):
                    best = (found[0], found[1] + 1)
            answers[current], complete[current] = best, final
        for current, found in answers.items():
            if complete[current]:
                self._nearest_site[current] = found
        return answers[rdd_id] if rdd_id in answers else self._nearest_site[rdd_id]

    def by_call_site(self) -> dict[str, list[int]]:
        """RDD ids grouped by effective call site (ids ascending)."""
        with self._lock:
            groups: dict[str, list[int]] = defaultdict(list)
            for rdd_id in sorted(self._rdds):
                groups[self.call_site(rdd_id)].append(rdd_id)
            return dict(groups)

    def stages_of(self, rdd_id: int) -> frozenset[int]:
        with self._lock:
            return frozenset(self._rdd_stages.get(rdd_id, ()))

    def executed_stages_of(self, rdd_id: int) -> frozenset[int]:
        with self._lock:
            return frozenset(s for s in self._rdd_stages.get(rdd_id, ()) if s in self._ran)

    def jobs_of(self, rdd_id: int) -> frozenset[int]:
        with self._lock:
            jobs: set[int] = set()
            for stage_id in self._rdd_stages.get(rdd_id, ()):
                jobs |= self._stage_jobs.get(stage_id, set())
            return frozenset(jobs)

    def first_job_of(self, rdd_id: int) -> int | None:
        """The lowest job id of a stage that lists the RDD (``min(jobs_of(r))``; kept when
        retirement forgets the RDD's finished stages)."""
        with self._lock:
            return self._first_job.get(rdd_id)

    def reuse_count(self, rdd_id: int) -> int:
        """Submitted stages that used the RDD after the first one (see the module docs)."""
        return max(0, len(self.executed_stages_of(rdd_id)) - 1)

    def is_unpersisted(self, rdd_id: int) -> bool:
        with self._lock:
            return rdd_id in self._unpersisted

    def partitions(self, rdd_id: int) -> dict[int, PartitionObservation]:
        """Per split index, the partition's block as last reported (stored ones preferred)."""
        with self._lock:
            result = {}
            for split, states in self._blocks.get(rdd_id, {}).items():
                if not states:
                    continue
                state = max(
                    states.values(),
                    key=lambda s: (s.event.storage_level.is_valid, s.stored_seq),
                )
                task = self._producer(rdd_id, split, state)
                result[split] = PartitionObservation(
                    rdd_id=rdd_id,
                    split_index=split,
                    memory_size=state.event.memory_held,
                    disk_size=state.event.disk_held,
                    storage_level=state.event.storage_level,
                    executor_id=state.event.executor_id,
                    compute_time_ms=task.run_time_ms if task else None,
                    task_id=task.task_id if task else None,
                )
            return dict(sorted(result.items()))

    def _producer(self, rdd_id: int, split: int, state: _BlockState) -> TaskRun | None:
        best: tuple[tuple[int, int, int], TaskRun] | None = None
        for stage_id in self._rdd_stages.get(rdd_id, ()):
            if stage_id not in self._ran:
                continue
            for seq, task in self._tasks.get((stage_id, split), ()):
                if not task.successful:
                    continue
                # same executor first; then the earliest task after the block was stored;
                # failing that the latest before it (the block event arrived late)
                after = seq > state.stored_seq
                rank = (
                    0 if task.executor_id == state.event.executor_id else 1,
                    0 if after else 1,
                    abs(seq - state.stored_seq),
                )
                if best is None or rank < best[0]:
                    best = (rank, task)
        return best[1] if best else None

    def described(self, stage: StageRun) -> StageRun:
        """``stage`` with its RDD list, taken from its plan when the event came without one.

        The live listener's JVM buffer sends a stage's RDDs once, in the job start that plans
        it (``org.blazespark.EventBuffer``); no stage has an empty list otherwise.
        """
        if stage.rdds:
            return stage
        with self._lock:
            known = self._attempts.get((stage.stage_id, stage.attempt))
            if known is None or not known.rdds:
                known = self._planned.get(stage.stage_id)
            if known is None or not known.rdds:
                return stage
            return replace(stage, rdds=known.rdds, final_rdd_id=known.final_rdd_id)

    def stage(self, stage_id: int) -> StageRun | None:
        """The latest attempt of a stage that ran, else its plan from a job start."""
        with self._lock:
            attempt = self._latest_attempt.get(stage_id)
            if attempt is not None:
                return self._attempts[(stage_id, attempt)]
            return self._planned.get(stage_id)

    def job(self, job_id: int) -> JobRun | None:
        with self._lock:
            return self._jobs.get(job_id)

    def stage_ids(self) -> tuple[int, ...]:
        with self._lock:
            return tuple(sorted(set(self._planned) | self._ran))

    def job_ids(self) -> tuple[int, ...]:
        with self._lock:
            return tuple(sorted(self._jobs))

    def tasks(self, stage_id: int) -> tuple[TaskRun, ...]:
        """Finished tasks of a stage (all attempts), by task id."""
        with self._lock:
            return tuple(sorted(self._stage_tasks.get(stage_id, ()), key=lambda t: t.task_id))

    def completed_stage_ids(self) -> frozenset[int]:
        """Stages whose latest attempt completed without failure."""
        with self._lock:
            return frozenset(
                stage_id
                for stage_id, attempt in self._latest_attempt.items()
                if self._attempts[(stage_id, attempt)].completion_time is not None
                and self._attempts[(stage_id, attempt)].failure_reason is None
            )

    def submitted_stage_ids(self) -> frozenset[int]:
        with self._lock:
            return frozenset(self._ran)

    def skipped_stage_ids(self) -> frozenset[int]:
        """Planned stages of finished jobs that never ran (their shuffle output existed)."""
        with self._lock:
            skipped = set()
            for job in self._jobs.values():
                if job.succeeded is not None:
                    skipped |= {s for s in job.stage_ids if s not in self._ran}
            return frozenset(skipped)

    # ------------------------------------------------------------------ retirement

    def retire_finished(self, keep: Callable[[int], bool]) -> Retired:
        """Forget the finished part of the graph (see the module docstring); ``keep(rdd)``
        names RDDs that must stay (the caller's live datasets, cached blocks it holds).

        For a live application only: a replayed log keeps everything for its summaries.
        Cost: one pass over the stages and RDDs still known, which retirement keeps to the
        program's live part.
        """
        with self._lock:
            ended = {j for j, job in self._jobs.items() if job.succeeded is not None}
            finished = {s for s, jobs in self._stage_jobs.items() if jobs and jobs <= ended}
            trimmed = []
            for rdd_id, stages in self._rdd_stages.items():
                if stages & finished:
                    stages -= finished
                    trimmed.append(rdd_id)
            retired = self._retire_rdds(keep)
            for rdd_id in [r for r in self._blocks if r not in self._rdds]:
                if not self._stored(rdd_id):
                    del self._blocks[rdd_id]  # a late block event of a retired RDD
            self._forget_stages(finished)
            for job_id in ended:
                del self._jobs[job_id]
            gone = set(retired)
            return Retired(
                rdds=tuple(sorted(retired)),
                stages=tuple(sorted(finished)),
                trimmed=tuple(sorted(r for r in trimmed if r not in gone)),
            )

    def _stored(self, rdd_id: int) -> bool:
        return any(
            state.event.storage_level.is_valid
            for states in self._blocks.get(rdd_id, {}).values()
            for state in states.values()
        )

    def _retire_rdds(self, keep: Callable[[int], bool]) -> list[int]:
        retired = []
        candidates = [r for r in self._rdds if not self._children.get(r)]
        while candidates:
            rdd_id = candidates.pop()
            node = self._rdds.get(rdd_id)
            if (
                node is None
                or self._children.get(rdd_id)
                or self._rdd_stages.get(rdd_id)
                or (node.storage_level.is_valid and rdd_id not in self._unpersisted)
                or self._stored(rdd_id)
                or keep(rdd_id)
            ):
                continue
            del self._rdds[rdd_id]
            tables = (
                self._children,
                self._rdd_stages,
                self._first_job,
                self._blocks,
                self._nearest_site,
            )
            for table in tables:
                table.pop(rdd_id, None)
            self._unpersisted.discard(rdd_id)
            retired.append(rdd_id)
            for parent in node.parent_ids:
                siblings = self._children.get(parent)
                if siblings is not None:
                    siblings.discard(rdd_id)
                    if not siblings:
                        del self._children[parent]
                        candidates.append(parent)
        return retired

    def _forget_stages(self, stage_ids: set[int]) -> None:
        for stage_id in stage_ids:
            for task in self._stage_tasks.pop(stage_id, ()):
                self._task_ids.discard((task.task_id, task.stage_attempt))
                self._tasks.pop((stage_id, task.partition_index), None)
            attempt = self._latest_attempt.pop(stage_id, None)
            for number in range(0 if attempt is None else attempt + 1):
                self._attempts.pop((stage_id, number), None)
            self._planned.pop(stage_id, None)
            self._ran.discard(stage_id)
            self._stage_jobs.pop(stage_id, None)

    @property
    def ended_at(self) -> int | None:
        """Epoch ms of the application end, if seen."""
        return self._ended_at

    def snapshot(self) -> dict[str, Any]:
        """Everything the DAG knows, as plain comparable values (for ``==`` and tests)."""
        with self._lock:
            return {
                "rdds": dict(sorted(self._rdds.items())),
                "stages": {s: self.stage(s) for s in self.stage_ids()},
                "jobs": dict(sorted(self._jobs.items())),
                "tasks": sorted(
                    (t for runs in self._tasks.values() for _, t in runs),
                    key=lambda t: (t.task_id, t.stage_attempt),
                ),
                "partitions": {r: self.partitions(r) for r in sorted(self._blocks)},
                "unpersisted": sorted(self._unpersisted),
            }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LineageDag):
            return NotImplemented
        return self.snapshot() == other.snapshot()

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        with self._lock:
            return (
                f"LineageDag(rdds={len(self._rdds)}, stages={len(self.stage_ids())}, "
                f"jobs={len(self._jobs)}, events={self.events_applied})"
            )
