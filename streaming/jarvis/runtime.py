"""The data-source runtime: proxies + profiler + the strategy that sets the load factors.

One :class:`SourceRuntime` lives in each agent process. It is plain Python (no processes, no
clock of its own) so tests drive it directly: feed chunks with :meth:`process_chunk`, take an
interval's output with :meth:`flush`, report the interval with :meth:`end_interval`.

Strategies (the same runtime runs Jarvis and every baseline, so they share all costs):

* ``jarvis``: :class:`~streaming.jarvis.search.LoadSearch` — the best operator-level split
  the measured profile predicts, refined by queue state, settled on the best measured point;
  restarted when the budget changes;
* ``all_sp``: every proxy at 0, all records go to Spark raw;
* ``filter_src``: only the filter runs at the source;
* ``best_op``: the best whole-operator split for the measured profile (re-chosen after a
  budget change, like Jarvis, so the comparison is only about data- vs operator-level);
* ``fixed``: the load factors given (tests, and every operator-level split in the benchmark).

After a budget change both adaptive strategies replan at once from the running profile when
every operator was measured recently; otherwise the next chunk runs every proxy at p = 1 to
measure them (a *profiling chunk*), and the interval that contained it is not used to judge
the plan (it ran two plans).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.ipc

from streaming.jarvis.controller import (
    IntervalObservation,
    OperatorProfile,
    QueryProfile,
    QueueState,
    best_operator_level,
    classify,
    operator_level_factors,
)
from streaming.jarvis.proxy import ChunkRouter, run_proxies, stage_table, validate_load_factors
from streaming.jarvis.query import Columns, Query, sanitize
from streaming.jarvis.search import LoadSearch

__all__ = ["STRATEGIES", "SourceRuntime"]

STRATEGIES = ("jarvis", "all_sp", "filter_src", "best_op", "fixed")
_IPC_OVERHEAD_BYTES = 0.02  # per row: IPC framing amortised over a large batch
_FRESH_CHUNKS = 64  # an operator measured within this many chunks needs no profiling chunk
_SHIP_SAMPLE_BYTES = 256 * 1024  # smaller entries: fixed per-entry cost dominates the time
# the search settles at the latest this many intervals after a restart, judged or not
# (4 s at the agents' default half-second interval: issue 23 asks for convergence in 5 s)
SETTLE_WITHIN_INTERVALS = 8


def _row_bytes(query: Query, stage: int) -> float:
    return float(sum(dtype.bit_width // 8 for _, dtype in query.stage_fields(stage)))


@dataclass
class _Ewma:
    value: float | None = None
    alpha: float = 0.3

    def add(self, x: float) -> None:
        self.value = x if self.value is None else (1 - self.alpha) * self.value + self.alpha * x


@dataclass
class _Interval:
    parts: dict[int, list[Columns]] = field(default_factory=dict)
    records: int = 0
    malformed: int = 0
    est_bytes: float = 0.0


class SourceRuntime:
    """Proxies, profile and load-factor control of one data source."""

    def __init__(
        self,
        query: Query,
        tables: Mapping[str, pa.Table],
        strategy: str,
        cpu_budget: float,
        bandwidth: float,
        load_factors: Sequence[float] | None = None,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; use one of {STRATEGIES}")
        self.query, self.tables, self.strategy = query, tables, strategy
        k = query.num_operators
        self.cpu_budget, self.bandwidth = float(cpu_budget), float(bandwidth)
        self.search = LoadSearch(k) if strategy == "jarvis" else None
        self._router = ChunkRouter(k)
        self._op_cost = [_Ewma() for _ in range(k)]
        self._op_sel = [_Ewma() for _ in range(k)]
        self._op_seen = [-_FRESH_CHUNKS] * k  # chunk number of each operator's last measurement
        self._chunks = 0
        self._full_chunk = 0  # the largest chunk seen: smaller ones do not update the profile
        self._ship_cost = _Ewma()  # per shipped byte, beyond the fixed cost of an entry
        self._entry_cost = _Ewma()  # fixed CPU of a flush: merge, directory, meta, rename
        self._input_cost = _Ewma()
        self._flush_cost = _Ewma()
        self._merge_s = 0.0  # merge time of the last flush, until its write is recorded
        self._stage_bytes = tuple(_row_bytes(query, s) + _IPC_OVERHEAD_BYTES for s in range(k + 1))
        if strategy == "fixed":
            if load_factors is None:
                raise ValueError("strategy 'fixed' needs load_factors")
            self.load_factors = validate_load_factors(load_factors, k)
        elif strategy == "all_sp":
            self.load_factors = tuple([0.0] * k)
        elif strategy == "filter_src":
            self.load_factors = tuple([1.0] + [0.0] * (k - 1))
        else:
            self.load_factors = tuple([1.0] * k)
        self.profiling = strategy in ("jarvis", "best_op")  # next chunk profiles at p = 1
        self._mixed_plans = False  # a profiling chunk ran since the last end_interval
        self._since_restart = 0  # intervals since the search last restarted
        self.last_state: QueueState | None = None
        self._interval = _Interval()

    # -- budget -----------------------------------------------------------------------
    def set_budget(self, cpu_budget: float, bandwidth: float) -> bool:
        """Apply a new budget; returns True if it changed (and the plan is re-chosen)."""
        if cpu_budget <= 0 or bandwidth <= 0:
            raise ValueError(f"cpu_budget={cpu_budget} and bandwidth={bandwidth} must be positive")
        changed = (cpu_budget, bandwidth) != (self.cpu_budget, self.bandwidth)
        self.cpu_budget, self.bandwidth = float(cpu_budget), float(bandwidth)
        if changed and self.strategy in ("jarvis", "best_op"):
            if self._profile_fresh():
                self._replan()
            else:
                self.profiling = True
        return changed

    def _profile_fresh(self) -> bool:
        return all(self._chunks - seen < _FRESH_CHUNKS for seen in self._op_seen)

    # -- data path ----------------------------------------------------------------------
    @property
    def spill_local(self) -> bool:
        """Whether chunks may run all-local once the network is exhausted (data-level only)."""
        return self.strategy == "jarvis"

    def _split_of_next(self, records: int, all_local: bool, choose: bool) -> int:
        """The operator-level split the next chunk runs under (see :class:`ChunkRouter`)."""
        if self.profiling or (all_local and self.spill_local):
            return self.query.num_operators
        if choose:
            return self._router.route(self.load_factors, records)
        return self._router.peek(self.load_factors, records)

    def chunk_cost_s(self, records: int, all_local: bool = False) -> float | None:
        """Expected CPU of processing the next chunk of ``records`` (its shipping is in the
        flush reserve); None before the first profile. The agent sizes its last chunk of an
        interval with it, so the budget is not overrun by most of a chunk."""
        profile = self.profile()
        if profile is None:
            return None
        split = self._split_of_next(records, all_local, choose=False)
        reach = profile.reach
        local = sum(op.cost_s * reach[i] for i, op in enumerate(profile.operators[:split]))
        return records * (profile.input_cost_s + local)

    def process_chunk(self, cols: Columns, all_local: bool = False) -> float:
        """Run one chunk through the proxies; returns its estimated shipped bytes.

        ``all_local`` runs it with every proxy at p = 1 (the network-exhausted spill).
        """
        start = time.thread_time()
        n_in = len(cols["src"])
        cols, bad = sanitize(cols)
        self._input_cost.add((time.thread_time() - start) / max(n_in, 1))
        split = self._split_of_next(n_in, all_local, choose=True)
        factors = operator_level_factors(self.query.num_operators, split)
        run = run_proxies(self.query, cols, factors, self.tables)
        self._chunks += 1
        # a chunk cut short (the last of an interval) costs mostly per-call overhead: its
        # per-record cost would skew the profile, which plans full chunks
        self._full_chunk = max(self._full_chunk, n_in)
        if self.profiling or n_in >= self._full_chunk // 2:
            for i in range(self.query.num_operators):
                if run.op_records_in[i] >= 256:  # too few records: a noisy per-record cost
                    self._op_cost[i].add(run.op_seconds[i] / run.op_records_in[i])
                    self._op_sel[i].add(run.op_records_out[i] / run.op_records_in[i])
                    self._op_seen[i] = self._chunks
        est = 0.0
        for stage, part in run.outputs.items():
            self._interval.parts.setdefault(stage, []).append(part)
            est += len(next(iter(part.values()))) * self._stage_bytes[stage]
        self._interval.records += n_in
        self._interval.malformed += bad
        self._interval.est_bytes += est
        if self.profiling:
            self._profile_shipping(cols)
            self.profiling = False
            self._mixed_plans = True
            self._replan()
        return est

    def _profile_shipping(self, cols: Columns) -> None:
        """Measure what forwarding costs: build the raw stage table of this chunk and
        serialise it to Arrow IPC in memory (charged like any work: the caller's clock runs).

        Without it the profile would know the operators' cost but not the cost of *not*
        running them, and the LP would treat forwarding as free."""
        start = time.thread_time()
        table = stage_table(self.query, 0, [cols])
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        nbytes = sink.getvalue().size
        self.record_shipping(time.thread_time() - start, nbytes)

    def flush(self) -> tuple[dict[int, pa.Table], int, int]:
        """Stage tables of the interval (partials merged), input records, malformed skipped."""
        interval, self._interval = self._interval, _Interval()
        tables: dict[int, pa.Table] = {}
        last = self.query.num_operators
        self._merge_s = 0.0
        for stage, parts in interval.parts.items():
            if stage == last and len(parts) > 1:
                start = time.thread_time()
                merged = {n: np.concatenate([p[n] for p in parts]) for n in parts[0]}
                parts = [self.query.aggregate.merge(merged)]
                self._merge_s = time.thread_time() - start
            tables[stage] = stage_table(self.query, stage, parts)
        return tables, interval.records, interval.malformed

    @property
    def flush_estimate_s(self) -> float:
        """Expected CPU of this interval's flush + spool write so far (reserved from the
        budget): an entry's fixed cost plus the shipping cost of the bytes pending. Until a
        small entry has shown the fixed cost, the average flush stands in for it."""
        if self._entry_cost.value is None:
            return float(self._flush_cost.value or 0.0)
        per_byte = float(self._ship_cost.value or 0.0)
        return float(self._entry_cost.value) + per_byte * self._interval.est_bytes

    @property
    def entry_cost_s(self) -> float | None:
        """The fixed CPU of one entry (what any flush costs however little it ships), or the
        average flush until a small entry has shown it; None before the first flush."""
        value = (
            self._entry_cost.value if self._entry_cost.value is not None else self._flush_cost.value
        )
        return None if value is None else float(value)

    def record_flush(self, seconds: float, nbytes: int) -> None:
        """CPU of the last flush + spool write of ``nbytes``: the reserve for the next one, and
        the cost of shipping: a flush's fixed cost (merging partial aggregates, the entry's
        directory and metadata) from small entries, the cost per byte from large ones (minus
        the merge, which is not shipping)."""
        self._flush_cost.add(seconds)
        if nbytes < _SHIP_SAMPLE_BYTES:
            self._entry_cost.add(seconds)
        else:
            fixed = max(self._merge_s, float(self._entry_cost.value or 0.0))
            self.record_shipping(max(0.0, seconds - fixed), nbytes)

    def record_shipping(self, seconds: float, nbytes: int) -> None:
        """One measurement of the marginal CPU cost of shipping ``nbytes``."""
        if nbytes > 4096:
            self._ship_cost.add(seconds / nbytes)

    # -- control ----------------------------------------------------------------------
    def profile(self) -> QueryProfile | None:
        """The current measured profile (None until every operator was measured once)."""
        if any(e.value is None for e in self._op_cost + self._op_sel):
            return None
        ops = tuple(
            OperatorProfile(float(c.value), float(s.value))  # type: ignore[arg-type]
            for c, s in zip(self._op_cost, self._op_sel)
        )
        return QueryProfile(
            ops,
            self._stage_bytes,
            float(self._ship_cost.value or 0.0),
            float(self._input_cost.value or 0.0),
        )

    def profile_summary(self) -> dict[str, object] | None:
        """The profile in ns per record / byte, for the stats lines (what the model saw)."""
        profile = self.profile()
        if profile is None:
            return None
        return {
            "op_ns": [round(op.cost_s * 1e9, 2) for op in profile.operators],
            "selectivity": [round(op.selectivity, 4) for op in profile.operators],
            "input_ns": round(profile.input_cost_s * 1e9, 2),
            "ship_ns_per_byte": round(profile.ship_cost_s_per_byte * 1e9, 3),
            "entry_ms": None if self._entry_cost.value is None else self._entry_cost.value * 1e3,
        }

    def _replan(self) -> None:
        profile = self.profile()
        if profile is None:
            return
        if self.search is not None:
            self.load_factors = self.search.restart(profile, self.cpu_budget, self.bandwidth)
            self._since_restart = 0
        elif self.strategy == "best_op":
            self.load_factors = best_operator_level(
                profile, self.cpu_budget, self.bandwidth
            ).load_factors

    def end_interval(
        self, obs: IntervalObservation, rate: float | None = None, judge: bool = True
    ) -> QueueState:
        """Classify the interval; Jarvis feeds the state and the measured ``rate`` (see
        :func:`~streaming.jarvis.search.sustained_rate`) to its search for the next factors.

        ``judge=False`` (an interval with no budget left, spent paying CPU debt) reports the
        state but leaves the load factors alone; so does an interval that ran a profiling
        chunk, and one whose data has not been flushed yet.
        """
        state = classify(obs)
        self.last_state = state
        clean = not self._mixed_plans and not self.profiling
        self._mixed_plans = False
        if self.search is None:
            return state
        if judge and clean and rate is not None:
            self.load_factors = self.search.observe(rate, state)
        self._since_restart += 1
        if not self.search.settled and self._since_restart >= SETTLE_WITHIN_INTERVALS:
            self.load_factors = self.search.settle()
        return state
