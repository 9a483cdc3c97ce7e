"""What the application's own tasks tell the cost model, and what the manager learns per site.

Why one part: R, W and Rd are measured, not assumed, and every measurement arrives the same
way — with a task's end or a block's store. This part turns them into

- each timed partition's own compute time (:mod:`lineage.timing`: the dataset's pipeline on
  that partition, minus reading its stored parents) — and, for blocks the task stored that no
  timer covers, the task's run time less its shuffle write, shared between them;
- a write rate: Spark's own timing of the task's shuffle-file writes (buffered writes to the
  same local dir blocks spill to);
- a read rate: the extra run time of a task that read a block from disk over the tasks of the
  same stage that read theirs from memory (same work otherwise), per byte read;
- per site, what persisting costs and saves (:mod:`costmodel.persisting`): the timer's own
  compute time (fused), pickling and storing, and unpickling of each partition;
- per-site tables: the same program line makes a new dataset each iteration; sizes and own
  compute times measured on earlier generations price the partitions of a new one before it
  is computed (the engine's estimator), predict the sizes the report compares with Spark's,
  and go into a recorded profile.

The rates correct the probe's W and Rd (:class:`costmodel.disk.OnlineDiskCost`); when they
move, the engine's cost model is re-priced. The registry names the sites.
"""

from __future__ import annotations

import statistics
from collections import defaultdict, deque
from collections.abc import Callable, Mapping

from blaze.engine import Engine
from costmodel.cost import Estimate
from costmodel.disk import OnlineDiskCost
from costmodel.persisting import PersistCase
from costmodel.predict import Predictors
from lineage.events import TaskRun
from lineage.timing import PartitionTime, PartitionTimer

__all__ = ["SiteMeasurements"]

Key = tuple[int, int]
COMPUTE_SAMPLES = 64  # compute times kept per site
PIPELINE_SAMPLES = 16  # partitions per site timed own/pickling apart (per-record clock reads)
MEMORY_SAMPLES = 32  # memory-hit task times kept per stage (the baseline of a disk read)
# memory-hit tasks a stage needs before its disk reads are priced against their median: one or
# two tasks' noise became the baseline of every read (the suite's kmeans.common, first data
# shape: two memory hits corrected Rd from the probe's 0.52 to 2.9 ms/MiB, where reading the
# same pickled blocks from the page cache instead of memory cost at most about 0.7 ms/MiB of task
# time in a local[2] check: 51 MiB read from each, four repeats, 0.35 ms/MiB of wall at most)
MIN_BASELINE = 3
READ_SAMPLES = 64  # reads of stored copies kept per site: where its copies are read from


class SiteMeasurements:
    """Measured compute times and disk rates fed to the engine; per-site sizes, compute times
    and the predictors fitted to them (called under the manager's lock)."""

    def __init__(
        self,
        predictors: Predictors,
        engine: Engine,
        disk: OnlineDiskCost,
        timer: PartitionTimer,
        site_of: Callable[[int], str | None],
        on_error: Callable[[str, Exception], None],
    ) -> None:
        self.predictors = predictors
        self.engine = engine
        self.disk = disk
        self.timer = timer
        self._site_of = site_of
        self._on_error = on_error
        self.compute_ms: dict[str, list[float]] = defaultdict(list)
        self.pipeline_times: dict[str, list[PartitionTime]] = defaultdict(list)
        self.sizes: dict[str, dict[int, int]] = defaultdict(dict)
        self.observed: dict[int, set[int]] = {}  # rdd id -> splits fed to the predictors
        self._memory_hit_ms: dict[int, list[float]] = defaultdict(list)  # stage -> run times
        self._disk_reads: dict[int, list[tuple[float, float]]] = defaultdict(list)
        # site -> its latest reads of stored copies, True for a read from disk
        self._read_from_disk: dict[str, deque[bool]] = defaultdict(
            lambda: deque(maxlen=READ_SAMPLES)
        )
        self._instrumented: set[int] = set()  # tokens of the datasets a timer wraps
        self.timed_partitions = 0
        self.task_share_partitions = 0

    # ---- measurements in -------------------------------------------------------------------
    def instrument(self, rdd, token: int, site: str | None = None) -> bool:
        """Time the partitions of a dataset about to be persisted (see lineage.timing): its
        own time apart from pickling and storing until its site has enough such samples."""
        split = site is None or len(self.pipeline_times.get(site, ())) < PIPELINE_SAMPLES
        if self.timer.instrument(rdd, token, split=split):
            self._instrumented.add(token)
            return True
        return False

    def on_stored(self, key: Key, site: str, size: int) -> None:
        """A partition of a dataset of ``site`` was stored in memory, ``size`` bytes."""
        self.sizes[site][key[1]] = size
        observed = self.observed.setdefault(key[0], set())
        if key[1] in observed:
            return
        observed.add(key[1])
        try:
            self.predictors.observe_rdd(key[0], site, key[1], size)
        except Exception as exc:
            self._on_error("predict", exc)

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
        for (token, split), timing in self.timer.drain().items():
            rdd_id = rdd_of_token.get(token)
            if rdd_id is not None:
                key = (rdd_id, split)
                recorded[key] = self.engine.on_compute_time(key, timing.wall_ms)
                self._keep_pipeline_time(rdd_id, timing)
        self.timed_partitions += len(recorded)
        # untimed: no timer wraps the dataset, or its report has not reached the driver yet
        # (then the share is provisional — an upper bound the report corrects when it comes;
        # without it the block would be decided on R = 0, "costs nothing")
        untimed = [
            key
            for key, outcome in outcomes
            if outcome == "miss"
            and key not in recorded
            and (token_of_rdd.get(key[0]) not in self._instrumented or self._untimed(key))
        ]
        if untimed and task.successful:
            shuffle_write_ms = task.shuffle_write_time_ns / 1e6
            share = self.engine.on_task_time(untimed, task.run_time_ms - shuffle_write_ms)
            recorded.update(dict.fromkeys(untimed, share))
            self.task_share_partitions += len(untimed)
        for key, own_ms in recorded.items():
            site = self._site_of(key[0])
            if site is not None:
                samples = self.compute_ms[site]
                samples.append(float(own_ms))
                del samples[:-COMPUTE_SAMPLES]
        changed = False
        if task.shuffle_write_bytes and task.shuffle_write_time_ns:
            changed |= self.disk.observe_write(
                task.shuffle_write_bytes, task.shuffle_write_time_ns / 1e6
            )
        changed |= self._observe_reads(task, outcomes)
        if task.successful:
            self._count_reads(outcomes)
        if changed:
            self.engine.set_disk(self.disk.current())
        return recorded

    def _keep_pipeline_time(self, rdd_id: int, timing: PartitionTime) -> None:
        site = self._site_of(rdd_id)
        if site is not None and timing.own_ms is not None and timing.load_ms is not None:
            samples = self.pipeline_times[site]
            samples.append(timing)
            del samples[:-COMPUTE_SAMPLES]

    def _untimed(self, key: Key) -> bool:
        measured = self.engine.model.measurements_of(key)
        return measured is None or measured.compute_ms is None

    def _observe_reads(self, task: TaskRun, outcomes: list[tuple[Key, str]]) -> bool:
        if not task.successful or not outcomes:
            return False
        kinds = {outcome for _, outcome in outcomes}
        stage = task.stage_id
        if kinds == {"memory_hit"}:
            samples = self._memory_hit_ms[stage]
            samples.append(float(task.run_time_ms))
            del samples[:-MEMORY_SAMPLES]
            if len(samples) < MIN_BASELINE:
                return False
            pending, self._disk_reads[stage] = self._disk_reads.pop(stage, []), []
            return any([self._read(stage, size, ms) for size, ms in pending])
        if kinds == {"disk_hit"}:
            model = self.engine.model
            size = sum(model.size_bytes(key) for key, _ in outcomes)
            if len(self._memory_hit_ms.get(stage, ())) >= MIN_BASELINE:
                return self._read(stage, size, float(task.run_time_ms))
            self._disk_reads[stage].append((size, float(task.run_time_ms)))
        return False

    def _count_reads(self, outcomes: list[tuple[Key, str]]) -> None:
        for key, outcome in outcomes:
            if outcome in ("memory_hit", "disk_hit"):
                site = self._site_of(key[0])
                if site is not None:
                    self._read_from_disk[site].append(outcome == "disk_hit")

    def disk_read_share(self, site: str) -> float:
        """The share of the site's latest reads of stored copies that came from disk (0
        before any): where a new generation's copies are expected to be read from."""
        reads = self._read_from_disk.get(site)
        return sum(reads) / len(reads) if reads else 0.0

    def _read(self, stage: int, size: float, run_ms: float) -> bool:
        extra = run_ms - statistics.median(self._memory_hit_ms[stage])
        return self.disk.observe_read(size, extra)  # signed: see OnlineDiskCost.observe_read

    def stage_done(self, stage_id: int) -> None:
        """Forget a finished stage's baselines (reads after it belong to other stages)."""
        self._memory_hit_ms.pop(stage_id, None)
        self._disk_reads.pop(stage_id, None)

    def forget_rdd(self, rdd_id: int) -> None:
        self.observed.pop(rdd_id, None)

    # ---- questions -----------------------------------------------------------------------
    def time_unknown(self, key: Key) -> bool:
        """Neither measured nor predictable yet: R would be a guess, so wait for its task."""
        model = self.engine.model
        measured = model.measurements_of(key)
        if measured is not None and measured.compute_ms is not None:
            return False
        spec = model.rdds.get(key[0])
        return spec is None or self.estimate(spec, key[1]) is None

    def estimate(self, spec, split: int) -> Estimate | None:
        """Size and compute time of a dataset's partition nobody has measured yet: the fitted
        predictor of its site if it has one, else the mean own compute time of the site's
        earlier generations; nothing when the site was never measured (its first block is
        decided once the task that computed it reports its time)."""
        site = self._site_of(spec.rdd_id)
        if site is None:
            return None
        predicted = self._predicted(spec, split, site)
        if predicted is not None:
            return predicted
        samples = self.compute_ms.get(site)
        if not samples:
            return None
        measured = self.engine.model.measurements_of((spec.rdd_id, split))
        size = measured.size_bytes if measured and measured.size_bytes else 0.0
        return Estimate(size, sum(samples) / len(samples))

    def _predicted(self, spec, split: int, site: str) -> Estimate | None:
        if site not in self.predictors.datasets:
            return None
        _, iteration = self.predictors.register_rdd(spec.rdd_id, site)
        # from the earlier generations only: the fit is made once per generation (the same
        # one that scores this generation's sizes), not again after each of its partitions
        guess = self.predictors.datasets[site].predict(iteration, 1.0, split, before=iteration)
        if guess is None or not guess.compute_ms > 0:  # no time fitted: not an estimate of R
            return None
        return Estimate(guess.size_bytes, guess.compute_ms)

    def persist_case(self, site: str, reads: float) -> PersistCase | None:
        """What persisting a new generation of ``site`` read ``reads`` times costs and saves
        per partition, from its earlier generations' timed partitions (None: none timed): the
        medians (one partition's clock caught by a pause, or a load extrapolated from a small
        sample, must not decide: on kmeans.common one such outlier moved the load eightfold),
        and the share of its copies read from disk (priced at W and Rd of its stored size)."""
        samples = self.pipeline_times.get(site)
        if not samples:
            return None
        stored = self.sizes.get(site)
        size = statistics.fmean(stored.values()) if stored else 0.0
        disk = self.disk.current()
        return PersistCase(
            reads=reads,
            own_ms=statistics.median(t.own_ms for t in samples),
            wall_ms=statistics.median(t.wall_ms for t in samples),
            load_ms=statistics.median(t.load_ms for t in samples),
            disk_share=self.disk_read_share(site),
            disk_write_ms=disk.write_ms(size),
            disk_read_ms=disk.read_ms(size),
        )

    def predicted_sizes(self, rdd_id: int, site: str) -> dict[int, float]:
        """Each partition size predicted for a new dataset of ``site``, by split: the
        ``costmodel.predict`` regressions over earlier datasets of the same site (the last
        size until it has enough points)."""
        try:
            self.predictors.register_rdd(rdd_id, site)
            result = {}
            for split, last_size in self.sizes.get(site, {}).items():
                guess = self.predictors.predict(site, split=split)
                result[split] = guess.size_bytes if guess is not None else last_size
            return result
        except Exception as exc:
            self._on_error("predict", exc)
            return {}

    def profile_sites(self, sites: dict) -> dict:
        """``sites`` (the tracker's profile) with each site's mean partition size and time."""
        for site, sizes in self.sizes.items():
            if site in sites and sizes:
                sites[site]["partition_bytes"] = sum(sizes.values()) / len(sizes)
        for site, samples in self.compute_ms.items():
            if site in sites and samples:
                sites[site]["compute_ms"] = sum(samples) / len(samples)
        return sites

    def report(self) -> dict:
        """W and Rd as probed and as corrected, and how partitions got their R."""
        return {
            **self.disk.report(),
            "timed_partitions": self.timed_partitions,
            "task_share_partitions": self.task_share_partitions,
        }
