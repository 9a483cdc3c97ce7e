"""What the application's own tasks tell the cost model: compute times and disk rates.

Why one place: R, W and Rd are measured, not assumed, and every measurement arrives the
same way — with a task's end. This object turns one finished task into

- each timed partition's own compute time (:mod:`lineage.timing`: the dataset's pipeline
  on that partition, minus reading its stored parents) — and, for blocks the task stored
  that no timer covers, the task's run time less its shuffle write, shared between them;
- a write rate: Spark's own timing of the task's shuffle-file writes (buffered writes to
  the same local dir blocks spill to), plus the manager's timed spills;
- a read rate: the extra run time of a task that read a block from disk over the tasks of
  the same stage that read theirs from memory (same work otherwise), per byte read.

The rates correct the probe's W and Rd (:class:`costmodel.disk.OnlineDiskCost`); when they
move, the engine's cost model is re-priced.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping

from blaze.engine import Engine
from costmodel.disk import OnlineDiskCost
from lineage.events import TaskRun
from lineage.timing import PartitionTimer

__all__ = ["Measurements"]

Key = tuple[int, int]
MEMORY_SAMPLES = 32  # memory-hit task times kept per stage (the baseline of a disk read)


class Measurements:
    """Feeds measured compute times and disk rates to the engine (the manager's lock)."""

    def __init__(self, engine: Engine, disk: OnlineDiskCost, timer: PartitionTimer) -> None:
        self.engine = engine
        self.disk = disk
        self.timer = timer
        self._memory_hit_ms: dict[int, list[float]] = defaultdict(list)  # stage -> run times
        self._disk_reads: dict[int, list[tuple[float, float]]] = defaultdict(list)
        self._instrumented: set[int] = set()  # tokens of the datasets a timer wraps
        self.timed_partitions = 0
        self.task_share_partitions = 0

    def instrument(self, rdd, token: int) -> bool:
        """Time the partitions of a dataset about to be persisted (see lineage.timing)."""
        if self.timer.instrument(rdd, token):
            self._instrumented.add(token)
            return True
        return False

    def on_task(
        self,
        task: TaskRun,
        outcomes: list[tuple[Key, str]],
        rdd_of_token: Mapping[int, int],
        token_of_rdd: Mapping[int, int],
    ) -> dict[Key, float]:
        """One finished task; returns the own compute time recorded per partition.

        The timer's reports may include partitions of other tasks that ended at the same
        moment (their times reach the driver before their ends are handled): they are
        recorded now, and those tasks fall back on their share only for untimed datasets.
        """
        recorded: dict[Key, float] = {}
        for (token, split), wall_ms in self.timer.drain().items():
            rdd_id = rdd_of_token.get(token)
            if rdd_id is not None:
                recorded[(rdd_id, split)] = self.engine.on_compute_time((rdd_id, split), wall_ms)
        self.timed_partitions += len(recorded)
        untimed = [
            key
            for key, outcome in outcomes
            if outcome == "miss" and token_of_rdd.get(key[0]) not in self._instrumented
        ]
        if untimed and task.successful:
            shuffle_write_ms = task.shuffle_write_time_ns / 1e6
            share = self.engine.on_task_time(untimed, task.run_time_ms - shuffle_write_ms)
            recorded.update(dict.fromkeys(untimed, share))
            self.task_share_partitions += len(untimed)
        changed = False
        if task.shuffle_write_bytes and task.shuffle_write_time_ns:
            changed |= self.disk.observe_write(
                task.shuffle_write_bytes, task.shuffle_write_time_ns / 1e6
            )
        changed |= self._observe_reads(task, outcomes)
        if changed:
            self.engine.set_disk(self.disk.current())
        return recorded

    def observe_spill(self, size_bytes: int, ms: float) -> None:
        """The manager moved a block of ``size_bytes`` to disk in ``ms``."""
        if self.disk.observe_write(size_bytes, ms):
            self.engine.set_disk(self.disk.current())

    def _observe_reads(self, task: TaskRun, outcomes: list[tuple[Key, str]]) -> bool:
        if not task.successful or not outcomes:
            return False
        kinds = {outcome for _, outcome in outcomes}
        stage = task.stage_id
        if kinds == {"memory_hit"}:
            samples = self._memory_hit_ms[stage]
            samples.append(float(task.run_time_ms))
            del samples[:-MEMORY_SAMPLES]
            pending, self._disk_reads[stage] = self._disk_reads.pop(stage, []), []
            return any([self._read(stage, size, ms) for size, ms in pending])
        if kinds == {"disk_hit"}:
            model = self.engine.model
            size = sum(model.size_bytes(key) for key, _ in outcomes)
            if self._memory_hit_ms.get(stage):
                return self._read(stage, size, float(task.run_time_ms))
            self._disk_reads[stage].append((size, float(task.run_time_ms)))
        return False

    def _read(self, stage: int, size: float, run_ms: float) -> bool:
        extra = run_ms - statistics.median(self._memory_hit_ms[stage])
        return self.disk.observe_read(size, max(extra, 0.0))

    def stage_done(self, stage_id: int) -> None:
        """Forget a finished stage's baselines (reads after it belong to other stages)."""
        self._memory_hit_ms.pop(stage_id, None)
        self._disk_reads.pop(stage_id, None)

    def report(self) -> dict:
        return {
            **self.disk.report(),
            "timed_partitions": self.timed_partitions,
            "task_share_partitions": self.task_share_partitions,
        }
