"""Which datasets each job uses: the online basis of autoCache and auto-unpersist (pure Python).

Why job-level and Python-side: decisions that must precede computation (persist a reused RDD
before the job that computes it) can only be taken in the driver before the job is submitted,
and PySpark pipelines chained Python transformations into one JVM RDD, so the JVM never sees
the intermediate datasets a user names. The manager therefore stamps every Python RDD with the
user's source line that created it (its *site*) and tells this tracker, before each job, which
datasets the job will read. The tracker learns, per site, how often a dataset is used:

- **autoCache**: a dataset used by a second job is reused → persist it now; every later dataset
  created at the same site (the next iteration's) is persisted before its first job. A
  candidate is skipped when the job reads it only through a dataset derived from it that is
  persisted or chosen (caching the descendant makes the ancestor unnecessary). A profile may
  name reused sites up front (the paper's rule: out-degree > 1 in the profiled DAG).
- **auto-unpersist**: a managed dataset has no future use when a newer dataset of its site was
  used by a job that did not use it (a *retired* generation), or when it reached the number of
  uses its site's earlier generations had (those cached from their first job once there is
  one; or the profile recorded). Unpersisting early never changes results in Spark; at worst a
  partition is recomputed. Two exceptions to the second rule: the newest generation of
  iteration *state* (derived from an earlier generation of its own site, ``ranks =
  f(ranks)``) stays until a newer one supersedes it — a wrong guess would recompute the whole
  chain, and programs read the final state after the loop; and a profiled loop input still
  read by every job stays until a job does not read it (the loop may run longer on this data).
- **F of later jobs** for the engine (:mod:`blaze.engine`, added to the pending reads of the
  submitted jobs): a dataset's remaining *reads* — jobs that read it, not only the cached
  dataset derived from it, as its site's generations had them (learnt or profiled) minus
  those so far — times the reads one use makes (the most stages a job of the site was planned
  with reading it; the engine counts them at each job's start). When nothing is known of its
  site yet, the uses to come are as many as the run of consecutive jobs that read it up to
  now (at least 1) — a loop's input, read by every iteration, is worth more than a dataset
  read once. One no longer read by each job is worth ``1 / (k + 1)`` after ``k`` jobs that
  did not read it: the longer it lies unread, the less likely another read (PageRank's
  ``edges``, read once to build ``links``, would otherwise stay worth as much as ``links``
  and take its memory for the whole run).

Uses and reads differ where a dataset was cached to make another cached one: kmeans caches
its parsed records and the features derived from them, and every iteration's lineage holds
both, but only the first job reads the records — later ones read the features' blocks. The
*uses* (jobs whose lineage holds a dataset) keep it alive: auto-unpersist waits for them,
because what shields the ancestor may be lost (an evicted or declined partition of the
features is recomputed from the records). The *reads* are what the cost model's F counts:
a partition is written to disk only for reads that come.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from blaze.usage import DatasetUse, SiteStats
from lineage.walk import reachable

__all__ = ["UsageTracker"]


def _read_through(
    used: set[int], parents: Mapping[int, tuple[int, ...]], *, stops: set[int]
) -> set[int]:
    """The datasets a job reads on its own, not only on the way to a cached (or chosen)
    descendant: walked from the job's results (datasets no other one was derived from) down
    the derivation edges, stopping at ``stops``. An ancestor also read by another path (the
    graph's ``links``, read by each iteration's join and by the ``ranks`` derived from it)
    is reached; one read only through a stop is not (caching the descendant makes it
    unnecessary)."""
    derived_from = {p for t in used for p in parents.get(t, ())}
    results = [t for t in used if t not in derived_from]
    return reachable(results, lambda t: () if t in stops else parents.get(t, ()))


def _innermost(site: str) -> str:
    """The innermost ``file:line`` of a site (sites list frames innermost first)."""
    return site.split(" < ", 1)[0]


class UsageTracker:
    """Counts dataset uses per job and turns them into autoCache / auto-unpersist choices."""

    def __init__(
        self,
        *,
        profile_uses: Mapping[str, int] | None = None,
        profile_reused: Iterable[str] = (),
        profile_reads: Mapping[str, int] | None = None,
        profile_loop_inputs: Iterable[str] = (),
    ) -> None:
        self.datasets: dict[int, DatasetUse] = {}
        self.sites: dict[str, SiteStats] = {}
        self.job_index = -1
        self._profile_uses = dict(profile_uses or {})
        self._profile_reused = set(profile_reused)
        self._profile_reads = dict(profile_reads or {})
        self._profile_loop_inputs = set(profile_loop_inputs)
        self._used_now: set[int] = set()
        by_line: dict[str, list[str]] = {}
        for site in {*self._profile_uses, *self._profile_reused}:
            by_line.setdefault(_innermost(site), []).append(site)
        self._profile_by_line = {
            line: sites[0] for line, sites in by_line.items() if len(sites) == 1
        }

    @property
    def profiled_sites(self) -> int:
        """Sites the loaded profile describes (0: no profile — uses are learnt online)."""
        return len({*self._profile_uses, *self._profile_reused})

    def _profiled(self, site: str) -> str:
        """The profile's name for ``site``: the same frame chain, or else the one profiled site
        created at the same innermost line (the program was called from another line)."""
        if site in self._profile_uses or site in self._profile_reused:
            return site
        return self._profile_by_line.get(_innermost(site), site)

    # ---- registry -------------------------------------------------------------------------
    def register(self, token: int, site: str, prev: int | None = None) -> DatasetUse:
        known = self.datasets.get(token)
        if known is not None and known.site == site:
            return known
        stats = self.sites.setdefault(site, SiteStats())
        use = DatasetUse(token=token, site=site, generation=stats.generations, prev=prev)
        stats.generations += 1
        self.datasets[token] = use
        return use

    def mark_persisted(self, token: int, *, managed: bool) -> None:
        use = self.datasets.get(token)
        if use is not None:
            use.persisted = True
            use.managed = use.managed or managed
            self.sites.setdefault(use.site, SiteStats()).cached = True

    def mark_unpersisted(self, token: int) -> None:
        use = self.datasets.get(token)
        if use is not None:
            use.persisted = False
            use.managed = False

    def is_state_site(self, site: str) -> bool:
        """A generation of ``site`` was derived from an earlier one (``ranks = f(ranks)``)."""
        stats = self.sites.get(site)
        return bool(stats and stats.state)

    def is_reused_site(self, site: str) -> bool:
        stats = self.sites.get(site)
        return self._profiled(site) in self._profile_reused or bool(stats and stats.reused)

    # ---- jobs -----------------------------------------------------------------------------
    def start_job(
        self,
        used: Iterable[int],
        parents: Mapping[int, Iterable[int]] | None = None,
        from_cache: Iterable[int] = (),
    ) -> list[int]:
        """A job is about to run reading ``used``; returns the tokens autoCache should persist.

        ``parents`` maps a used token to the tokens it was derived from (within ``used``);
        ``from_cache``: the used datasets whose every partition is cached — the job reads
        their blocks, not the datasets they were derived from.
        """
        self.job_index += 1
        used_set = {t for t in used if t in self.datasets}
        self._used_now = used_set
        self._mark_state(used_set, parents or {})  # before this job counts as a use
        for token in used_set:
            use = self.datasets[token]
            self._count_use(use)
        candidates = {
            t
            for t in used_set
            if not self.datasets[t].persisted
            and (self.datasets[t].uses >= 2 or self.is_reused_site(self.datasets[t].site))
        }
        parent_map = {
            t: tuple(p for p in (parents or {}).get(t, ()) if p in used_set) for t in used_set
        }
        for token in _read_through(used_set, parent_map, stops=set(from_cache)):
            self.datasets[token].reads += 1
        read = _read_through(used_set, parent_map, stops=candidates | self._persisted(used_set))
        chosen = candidates & read
        # a site is reused when its own dataset is read again, not when it is read again only
        # on the way to a cached descendant that lost partitions (an evicted cache would
        # otherwise make every ancestor site look reused, and autoCache them all)
        for token in read:
            use = self.datasets[token]
            if use.uses >= 2:
                self.sites[use.site].reused = True
        return sorted(chosen)

    def _persisted(self, tokens: Iterable[int]) -> set[int]:
        return {t for t in tokens if self.datasets[t].persisted}

    def _count_use(self, use: DatasetUse) -> None:
        """The current job reads ``use``."""
        if use.last_job != self.job_index:
            use.run = use.run + 1 if use.last_job == self.job_index - 1 else 1
        if use.uses == 0:
            use.cached_from_first_use = use.persisted
        use.uses += 1
        use.last_job = self.job_index
        stats = self.sites.setdefault(use.site, SiteStats())
        stats.newest_used = max(stats.newest_used, use.generation)

    def _mark_state(self, used: set[int], parents: Mapping[int, Iterable[int]]) -> None:
        """Flag the used datasets derived (through ``parents``) from an older generation of
        their own site that an earlier job read: iteration state, whose newest generation
        outlives its predicted uses."""
        for token in used:
            use = self.datasets[token]
            if use.state:
                continue
            stack, seen = list(parents.get(token, ())), set()
            while stack:
                parent = stack.pop()
                if parent in seen:
                    continue
                seen.add(parent)
                known = self.datasets.get(parent)
                # an earlier job read the older generation: a later pass of the same line made
                # this one from it (one statement's chain, ``parallelize(..).map(..)``, is not)
                if (
                    known is not None
                    and known.site == use.site
                    and known.generation < use.generation
                    and known.uses > 0
                ):
                    use.state = True
                    self.sites[use.site].state = True
                    break
                stack.extend(parents.get(parent, ()))

    def _newest_state(self, use: DatasetUse) -> bool:
        """The newest generation of iteration state that a job has read."""
        return use.state and use.generation >= self.sites[use.site].newest_used

    def finish_job(self, *, auto_unpersist: bool = True) -> list[int]:
        """The job ended: returns managed tokens with no predicted future use."""
        used = self._used_now
        self._used_now = set()
        return self._retire_after(used, auto_unpersist=auto_unpersist)

    def record_reads(
        self,
        used: Iterable[int],
        *,
        parents: Mapping[int, Iterable[int]] | None = None,
        auto_unpersist: bool = True,
    ) -> list[int]:
        """Reads seen only after the fact (a DataFrame job, from the listener): count them
        and return the managed tokens of the same sites with no predicted future use.
        ``parents`` as for :meth:`start_job`."""
        used_set = {t for t in used if t in self.datasets}
        self._mark_state(used_set, parents or {})  # before this job counts as a use
        for token in used_set:
            use = self.datasets[token]
            self._count_use(use)
            use.reads += 1  # no lineage of a DataFrame job is known here: each use a read
            if use.uses >= 2:
                self.sites.setdefault(use.site, SiteStats()).reused = True
        sites = {self.datasets[t].site for t in used_set}
        return self._retire_after(used_set, auto_unpersist=auto_unpersist, sites=sites)

    def _retire_after(
        self, used: set[int], *, auto_unpersist: bool, sites: set[str] | None = None
    ) -> list[int]:
        newest_used_generation: dict[str, int] = {}
        for token in used:
            use = self.datasets.get(token)
            if use is not None:
                gen = newest_used_generation.get(use.site, -1)
                newest_used_generation[use.site] = max(gen, use.generation)
        done: list[int] = []
        for use in list(self.datasets.values()):
            if use.retired or (sites is not None and use.site not in sites):
                continue
            newest = newest_used_generation.get(use.site)
            superseded = newest is not None and use.generation < newest and use.token not in used
            used_up = use.uses and self._reached_expected(use) and not self._newest_state(use)
            if not (superseded or used_up):
                continue
            self._retire(use)
            if auto_unpersist and use.managed and use.persisted:
                done.append(use.token)
        return sorted(done)

    def _reached_expected(self, use: DatasetUse) -> bool:
        expected = self.expected_uses(use.site)
        if expected is None or use.uses < expected:
            return False
        return not self._loop_may_go_on(use, expected)

    def _loop_may_go_on(self, use: DatasetUse, expected: int) -> bool:
        """A profiled loop input (one dataset of its site, read by several jobs) read by this
        job and the ``expected`` before it. Its count is the profiled run's iterations, which
        a loop run until it converges does not keep on other data (cc: 6 on the sample, 7
        on the whole input), so its auto-unpersist waits for a job that does not read it
        (one job of memory, where unpersisting it early costs a recomputation and its disk
        copies written again)."""
        return (
            self._profiled(use.site) in self._profile_loop_inputs
            and use.last_job == self.job_index
            and use.run >= expected
        )

    def _outran_profile(self, use: DatasetUse) -> bool:
        """A profiled loop input read by more jobs than the profile counted: later uses are
        predicted as with no profile. At the count itself the profile holds (a fixed-length
        loop ends there; a read predicted then would write its last partitions to disk)."""
        expected = self.expected_uses(use.site)
        return expected is not None and use.uses > expected and self._loop_may_go_on(use, expected)

    def _retire(self, use: DatasetUse) -> None:
        use.retired = True
        if use.uses:
            stats = self.sites.setdefault(use.site, SiteStats())
            stats.retire(use)

    def forget(self, token: int) -> None:
        """The program dropped its last reference to a dataset it does not persist: nothing
        can read it again, so its uses join its site's statistics and the record goes (a
        program of thousands of generations keeps only the live ones)."""
        use = self.datasets.pop(token, None)
        if use is None:
            return
        if not use.retired:
            self._retire(use)
        self._used_now.discard(token)

    # ---- cost model inputs ----------------------------------------------------------------
    def expected_uses(self, site: str) -> int | None:
        profiled = self._profiled(site)
        if profiled in self._profile_uses:
            return self._profile_uses[profiled]
        stats = self.sites.get(site)
        return stats.uses.expected() if stats else None

    def future_uses(self, token: int) -> float:
        """F at job granularity: remaining predicted uses (1 when nothing is known)."""
        use = self.datasets.get(token)
        if use is None:
            return 1.0
        if use.retired:
            return 0.0
        expected = self.expected_uses(use.site)
        if expected is None or self._outran_profile(use):
            # read by each job lately: about as many more (see the top)
            if use.last_job == self.job_index:
                return float(max(use.run, 1))
            if use.uses:  # not read by the last ``idle`` jobs: ever less likely to be again
                return 1.0 / (self.job_index - use.last_job + 1)
            return 1.0
        return self._left(use, expected, use.uses)

    def _left(self, use: DatasetUse, expected: int, so_far: int) -> float:
        """What is left of an expected count (uses or reads): at least 1 for the newest
        generation of iteration state — the next generation or the program reads it again."""
        return float(max(expected - so_far, 1 if self._newest_state(use) else 0))

    def expected_reads(self, site: str) -> int | None:
        """The jobs that read a generation of ``site`` (profiled, else learnt; a profile
        recorded before reads were kept: its uses)."""
        profiled = self._profiled(site)
        if profiled in self._profile_reads:
            return self._profile_reads[profiled]
        if profiled in self._profile_uses:
            return self._profile_uses[profiled]
        stats = self.sites.get(site)
        return stats.reads.expected() if stats else None

    def note_reads(self, site: str, reads: int) -> None:
        """A job was planned with ``reads`` stages reading a dataset of ``site``."""
        stats = self.sites.setdefault(site, SiteStats())
        stats.reads_per_use = max(stats.reads_per_use, reads)

    def future_reads(self, token: int) -> float:
        """F of later jobs in partition reads: the jobs still to read it (its site's
        :meth:`expected_reads` minus its reads so far; while nothing is known of the site,
        :meth:`future_uses`) times the stages one job of the site reads it with (``ranks`` is
        read by a PageRank iteration's join and by its update: two reads a use)."""
        use = self.datasets.get(token)
        stats = self.sites.get(use.site) if use is not None else None
        per_use = stats.reads_per_use if stats is not None else 1
        expected = self.expected_reads(use.site) if use is not None else None
        if expected is None or use.retired or self._outran_profile(use):
            return self.future_uses(token) * per_use
        return self._left(use, expected, use.reads) * per_use

    def profile(self) -> dict[str, dict]:
        """Per-site facts worth keeping for a later run (see :mod:`costmodel.profile`):
        ``uses`` and ``reads`` as :meth:`blaze.usage.RetiredCounts.expected` predicts them
        from the retired generations, else the most a live one has. Not the most any had:
        svdpp's last user state is read once more by the result (3, the others 2), and 3
        would have every generation written to disk for a read that never came."""
        result = {}
        for site, stats in sorted(self.sites.items()):
            uses, reads = stats.uses.expected(), stats.reads.expected()
            live = [u for u in self.datasets.values() if u.site == site]
            if uses is None:
                uses = max((u.uses for u in live), default=0)
            if reads is None:
                reads = max((u.reads for u in live), default=0)
            result[site] = {
                "generations": stats.generations,
                "reused": stats.reused,
                "cached": stats.cached,
                "uses": uses,
                "reads": reads,
            }
        return result
