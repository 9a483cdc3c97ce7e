"""The AOMG sub-window summary: density-aware, exactly mergeable, relative-error quantiles.

Telemetry values (RTTs in microseconds) are dense on a few hundred recurring small integers
and sparse in a heavy tail. One summary per (key, sub-window) spends its space where that
shape needs it — three regions, every input value counted in exactly one of them:

* **exact counts** — integers in ``[0, exact_limit]`` get one counter per distinct value
  (the recurring small values: a few hundred counters describe millions of probes exactly);
* **log buckets** — every other positive value goes to bucket ``i = ceil(log_γ v)`` with
  ``γ = (1 + α) / (1 - α)``; a bucket answers with ``2γ^i / (γ + 1)``, which is within
  relative distance ``α`` of every value in ``(γ^(i-1), γ^i]`` (DDSketch's mapping);
* **exact tail** — the ``tail_size`` largest bucketed values are kept verbatim, so the
  extreme quantiles of a window (p99.9 of a few thousand records) are answered exactly.

Guarantee. For every quantile ``q`` in ``[0, 1]``, :meth:`QuantileSummary.quantiles` returns
``q̂`` with ``|q̂ - x| <= α·x`` where ``x`` is DuckDB's ``quantile_disc(value, q)`` over the
same values — the value at 1-based rank ``max(1, ceil(n·q))`` in sorted order. Why: each value
``v`` is replaced by a proxy ``p(v)`` with ``(1-α)v <= p(v) <= (1+α)v`` (``p(v) = v`` in the
exact regions), and order statistics are monotone under such element-wise bounds, so the
rank-r proxy lies within ``[(1-α)x, (1+α)x]``. Exact-region and tail answers are exact.

Merging. Counts add; the tails are pooled and the ``tail_size`` largest kept, the rest moved
into their buckets. The global top values are always among the sub-windows' tails, so the
merged summary is a function of the *multiset* of input values alone: merging is exact,
associative and order-independent, and a window built from sub-window summaries equals the
summary built from the window's raw values (two-level hierarchical windowing).

Cost. At most ``exact_limit + 1`` exact counters, ``log(max/min)/log γ`` buckets (≈ 1,500 for
1 µs .. 3 s at α = 0.5 %) and ``tail_size`` floats, whatever the number of records; in
practice a telemetry sub-window serialises to a few KiB (:meth:`QuantileSummary.to_bytes`
delta-encodes sorted keys and stores every column in the narrowest integer type).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "QuantileSummary",
    "SummaryConfig",
    "exact_quantiles",
    "validate_quantiles",
]

_MAGIC = b"AOMG"
_VERSION = 1
_HEADER = struct.Struct("<4sBdqiqIII")  # magic, version, alpha, limit, tail, skipped, 3 lengths
_UINT_DTYPES = (np.uint8, np.uint16, np.uint32, np.uint64)
_LN_DOUBLE_RANGE = 746.0  # |ln v| of every positive finite double is below this


@dataclass(frozen=True)
class SummaryConfig:
    """Accuracy and size knobs of a summary; summaries merge only under equal configs.

    ``relative_accuracy`` (α) bounds the relative value error of every quantile;
    ``exact_limit`` is the largest integer counted exactly; ``tail_size`` is how many of the
    largest values are kept verbatim.
    """

    relative_accuracy: float = 0.005
    exact_limit: int = 4_096
    tail_size: int = 64

    def __post_init__(self) -> None:
        alpha = self.relative_accuracy
        if not (isinstance(alpha, int | float) and 0.0 < alpha < 1.0):
            raise ValueError(f"relative_accuracy={alpha!r} must be within (0, 1)")
        if not (isinstance(self.exact_limit, int) and 0 <= self.exact_limit < 2**31):
            raise ValueError(f"exact_limit={self.exact_limit!r} must be an int in [0, 2**31)")
        if not (isinstance(self.tail_size, int) and 0 <= self.tail_size < 2**31):
            raise ValueError(f"tail_size={self.tail_size!r} must be an int in [0, 2**31)")

    @property
    def gamma(self) -> float:
        return (1.0 + self.relative_accuracy) / (1.0 - self.relative_accuracy)

    def bucket_of(self, values: np.ndarray) -> np.ndarray:
        """Bucket index of each positive value: ``ceil(log_γ v)``."""
        return np.ceil(np.log(values) / math.log(self.gamma)).astype(np.int64)

    def power_tables(self) -> tuple[int, tuple[tuple[float, ...], ...]]:
        """``(base, (up_low, up_high, down_low, down_high))``: ``γ^i`` of a bucket index
        ``i = ±(h·base + l)`` is ``high[h] * low[l]`` of the ``up`` (i >= 0) or ``down``
        tables (``γ^(±l)`` and ``γ^(±h·base)``).

        One IEEE multiplication of two table entries, so numpy and the JVM
        (``streaming.aomg.native``, tables as literals) compute the same double, where their
        ``exp`` routines may differ in the last bit. The tables cover every bucket index a
        positive double can have.
        """
        log_gamma = math.log(self.gamma)
        largest = math.ceil(_LN_DOUBLE_RANGE / log_gamma) + 1
        base = max(2, math.isqrt(largest) + 1)
        high = largest // base + 1

        def powers(sign: float, step: int, count: int) -> tuple[float, ...]:
            exponents = [sign * log_gamma * step * j for j in range(count)]
            return tuple(math.exp(x) if x < 709.7 else math.inf for x in exponents)

        return base, (
            powers(1.0, 1, base),
            powers(1.0, base, high),
            powers(-1.0, 1, base),
            powers(-1.0, base, high),
        )

    def representative(self, buckets: np.ndarray) -> np.ndarray:
        """The value a bucket answers with, ``2γ^i / (γ + 1)`` (within α of everything it holds)."""
        b = np.asarray(buckets, dtype=np.int64)
        base, (up_low, up_high, down_low, down_high) = self.power_tables()
        magnitude = np.abs(b)
        low, high = magnitude % base, magnitude // base
        with np.errstate(over="ignore", under="ignore"):  # beyond the doubles: inf or 0
            power = np.where(
                b >= 0,
                np.asarray(up_high)[high] * np.asarray(up_low)[low],
                np.asarray(down_high)[high] * np.asarray(down_low)[low],
            )
            return 2.0 * power / (self.gamma + 1.0)


def validate_quantiles(quantiles: Iterable[float]) -> np.ndarray:
    """Quantiles as a float array; a ``ValueError`` naming the first one outside [0, 1]."""
    try:
        qs = np.asarray(list(quantiles), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"quantiles must be numbers in [0, 1]: {exc}") from None
    if qs.ndim != 1 or qs.size == 0:
        raise ValueError("quantiles must be a non-empty sequence of numbers in [0, 1]")
    bad = ~np.isfinite(qs) | (qs < 0.0) | (qs > 1.0)
    if bad.any():
        raise ValueError(f"quantile {qs[bad][0]!r} is outside [0, 1]")
    return qs


def _ranks(n: int, qs: np.ndarray) -> np.ndarray:
    """1-based rank of each quantile, as DuckDB's ``quantile_disc`` picks it."""
    return np.maximum(np.ceil(n * qs), 1).astype(np.int64)


def exact_quantiles(values: np.ndarray, quantiles: Sequence[float]) -> np.ndarray:
    """Reference answer (``quantile_disc`` semantics) by sorting; for tests and benchmarks."""
    qs = validate_quantiles(quantiles)
    v = np.sort(np.asarray(values, dtype=np.float64))
    if v.size == 0:
        return np.full(qs.size, np.nan)
    return v[_ranks(v.size, qs) - 1]


def _split_invalid(values: object) -> tuple[np.ndarray, int]:
    """Finite, non-negative values and the number of others (null, NaN, ±inf, negative)."""
    try:
        v = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"values must be numeric: {exc}") from None
    v = v.ravel()
    ok = np.isfinite(v) & (v >= 0.0)
    if ok.all():
        return v, 0
    return v[ok], int(v.size - np.count_nonzero(ok))


def _add_counts(keys: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum counts of equal keys; keys come back sorted and unique."""
    if keys.size == 0:
        return keys.astype(np.int64), counts.astype(np.int64)
    uniq, inverse = np.unique(keys, return_inverse=True)
    return uniq.astype(np.int64), np.bincount(inverse, weights=counts, minlength=uniq.size).astype(
        np.int64
    )


def _pack_uint(array: np.ndarray) -> bytes:
    """A non-negative int array in the narrowest unsigned type, prefixed by its width code."""
    top = int(array.max()) if array.size else 0
    for code, dtype in enumerate(_UINT_DTYPES):
        if top <= np.iinfo(dtype).max:
            return bytes([code]) + array.astype(dtype).tobytes()
    raise ValueError(f"count {top} does not fit 64 bits")  # pragma: no cover - unreachable


def _unpack_uint(data: memoryview, offset: int, length: int) -> tuple[np.ndarray, int]:
    dtype = np.dtype(_UINT_DTYPES[data[offset]])
    start = offset + 1
    end = start + length * dtype.itemsize
    return np.frombuffer(data[start:end], dtype=dtype).astype(np.int64), end


def _pack_sorted(keys: np.ndarray) -> bytes:
    """Sorted int keys as first key (8 bytes) + narrow unsigned deltas."""
    if keys.size == 0:
        return b""
    return struct.pack("<q", int(keys[0])) + _pack_uint(np.diff(keys))


def _unpack_sorted(data: memoryview, offset: int, length: int) -> tuple[np.ndarray, int]:
    if length == 0:
        return np.zeros(0, dtype=np.int64), offset
    (first,) = struct.unpack_from("<q", data, offset)
    deltas, end = _unpack_uint(data, offset + 8, length - 1)
    keys = np.empty(length, dtype=np.int64)
    keys[0] = first
    np.cumsum(deltas, out=keys[1:])
    keys[1:] += first
    return keys, end


class QuantileSummary:
    """One sub-window's (or a merged window's) summary. Immutable; build with
    :meth:`from_values` or :meth:`merge_all`, query with :meth:`quantiles`."""

    __slots__ = (
        "bucket_counts",
        "buckets",
        "config",
        "exact_counts",
        "exact_values",
        "skipped",
        "tail",
    )

    def __init__(
        self,
        config: SummaryConfig,
        exact_values: np.ndarray,
        exact_counts: np.ndarray,
        buckets: np.ndarray,
        bucket_counts: np.ndarray,
        tail: np.ndarray,
        skipped: int = 0,
    ) -> None:
        self.config = config
        self.exact_values = exact_values
        self.exact_counts = exact_counts
        self.buckets = buckets
        self.bucket_counts = bucket_counts
        self.tail = tail  # ascending
        self.skipped = int(skipped)

    # -- building -----------------------------------------------------------------------
    @classmethod
    def empty(cls, config: SummaryConfig | None = None) -> QuantileSummary:
        none = np.zeros(0, dtype=np.int64)
        return cls(config or SummaryConfig(), none, none, none, none, np.zeros(0), 0)

    @classmethod
    def from_values(
        cls,
        values: object,
        config: SummaryConfig | None = None,
        *,
        on_invalid: str = "raise",
    ) -> QuantileSummary:
        """Summarise an array of values.

        Null, NaN, infinite and negative values have no place in a value-space quantile:
        ``on_invalid="raise"`` rejects them with a ``ValueError`` saying how many there are;
        ``"skip"`` leaves them out and counts them in :attr:`skipped`, which merges and is
        reported with every window — never a silent loss.
        """
        if on_invalid not in ("raise", "skip"):
            raise ValueError(f"on_invalid={on_invalid!r} must be 'raise' or 'skip'")
        config = config or SummaryConfig()
        v, skipped = _split_invalid(values)
        if skipped and on_invalid == "raise":
            raise ValueError(
                f"{skipped} of {v.size + skipped} values are null, NaN, infinite or negative; "
                "quantiles need finite values >= 0 (pass on_invalid='skip' to count and drop them)"
            )
        exact = (v <= config.exact_limit) & (v == np.floor(v))
        exact_values, exact_counts = np.unique(v[exact].astype(np.int64), return_counts=True)
        rest = v[~exact]
        tail = np.zeros(0)
        if config.tail_size and rest.size:
            if rest.size > config.tail_size:
                cut = rest.size - config.tail_size
                part = np.partition(rest, cut)
                tail, rest = np.sort(part[cut:]), part[:cut]
            else:
                tail, rest = np.sort(rest), rest[:0]
        buckets, bucket_counts = np.unique(config.bucket_of(rest), return_counts=True)
        return cls(
            config,
            exact_values.astype(np.int64),
            exact_counts.astype(np.int64),
            buckets.astype(np.int64),
            bucket_counts.astype(np.int64),
            tail,
            skipped,
        )

    @classmethod
    def from_counts(
        cls,
        values: object,
        counts: object,
        config: SummaryConfig | None = None,
    ) -> QuantileSummary:
        """Summarise values given with multiplicities (``counts[i]`` copies of ``values[i]``).

        Equal to :meth:`from_values` on the expanded values with ``on_invalid="skip"``; it lets
        a JVM aggregate ``count(*) GROUP BY value`` shrink recurring values before Python sees
        them (telemetry repeats a few hundred values, so rows drop by an order of magnitude).
        """
        config = config or SummaryConfig()
        try:
            v = np.asarray(values, dtype=np.float64).ravel()
            n = np.asarray(counts, dtype=np.int64).ravel()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"values and counts must be numeric: {exc}") from None
        if v.shape != n.shape or (n < 0).any():
            raise ValueError("values and counts must have the same length and counts be >= 0")
        ok = np.isfinite(v) & (v >= 0.0)
        skipped = int(n[~ok].sum())
        present = ok & (n > 0)
        v, n = v[present], n[present]
        exact = (v <= config.exact_limit) & (v == np.floor(v))
        exact_values, exact_counts = _add_counts(v[exact].astype(np.int64), n[exact])
        rest, rest_n = v[~exact], n[~exact]
        tail = np.zeros(0)
        if config.tail_size and rest.size:
            order = np.argsort(rest)[::-1]  # largest first
            rest, rest_n = rest[order], rest_n[order]
            before = np.cumsum(rest_n) - rest_n  # copies of larger values
            take = np.clip(config.tail_size - before, 0, rest_n)
            tail = np.sort(np.repeat(rest, take))
            rest_n = rest_n - take
        keep = rest_n > 0
        buckets, bucket_counts = _add_counts(config.bucket_of(rest[keep]), rest_n[keep])
        return cls(config, exact_values, exact_counts, buckets, bucket_counts, tail, skipped)

    @classmethod
    def merge_all(cls, summaries: Iterable[QuantileSummary]) -> QuantileSummary:
        """The summary of the union of the inputs' values (exact; any order, any grouping)."""
        items = list(summaries)
        if not items:
            raise ValueError("merge_all needs at least one summary")
        config = items[0].config
        for other in items[1:]:
            if other.config != config:
                raise ValueError(
                    f"cannot merge summaries with different configs: {config} vs {other.config}"
                )
        if len(items) == 1:
            return items[0]
        exact_values, exact_counts = _add_counts(
            np.concatenate([s.exact_values for s in items]),
            np.concatenate([s.exact_counts for s in items]),
        )
        tails = np.sort(np.concatenate([s.tail for s in items]))
        cut = max(tails.size - config.tail_size, 0)
        demoted, tail = tails[:cut], tails[cut:]
        buckets, bucket_counts = _add_counts(
            np.concatenate([*(s.buckets for s in items), config.bucket_of(demoted)]),
            np.concatenate([*(s.bucket_counts for s in items), np.ones(demoted.size, np.int64)]),
        )
        return cls(
            config,
            exact_values,
            exact_counts,
            buckets,
            bucket_counts,
            tail,
            sum(s.skipped for s in items),
        )

    def merge(self, other: QuantileSummary) -> QuantileSummary:
        return QuantileSummary.merge_all([self, other])

    # -- querying -----------------------------------------------------------------------
    @property
    def count(self) -> int:
        """Number of (valid) values summarised."""
        return int(self.exact_counts.sum() + self.bucket_counts.sum() + self.tail.size)

    def quantiles(self, quantiles: Sequence[float]) -> np.ndarray:
        """Value at each quantile (``quantile_disc`` ranks, relative error <= α); NaN if empty."""
        qs = validate_quantiles(quantiles)
        n = self.count
        if n == 0:
            return np.full(qs.size, np.nan)
        values = np.concatenate(
            [
                self.exact_values.astype(np.float64),
                self.config.representative(self.buckets),
                self.tail,
            ]
        )
        counts = np.concatenate(
            [self.exact_counts, self.bucket_counts, np.ones(self.tail.size, np.int64)]
        )
        order = np.argsort(values, kind="stable")
        cumulative = np.cumsum(counts[order])
        index = np.searchsorted(cumulative, _ranks(n, qs), side="left")
        return values[order][index]

    # -- bytes (Spark state) ------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Compact, self-describing bytes (what the streaming operator keeps in state)."""
        c = self.config
        parts = [
            _HEADER.pack(
                _MAGIC,
                _VERSION,
                c.relative_accuracy,
                c.exact_limit,
                c.tail_size,
                self.skipped,
                self.exact_values.size,
                self.buckets.size,
                self.tail.size,
            ),
            _pack_sorted(self.exact_values),
            _pack_uint(self.exact_counts) if self.exact_values.size else b"",
            _pack_sorted(self.buckets),
            _pack_uint(self.bucket_counts) if self.buckets.size else b"",
            self.tail.astype("<f8").tobytes(),
        ]
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> QuantileSummary:
        """Inverse of :meth:`to_bytes`; a ``ValueError`` if the bytes are not a summary."""
        view = memoryview(bytes(data))
        try:
            magic, version, alpha, limit, tail_size, skipped, n_exact, n_buckets, n_tail = (
                _HEADER.unpack_from(view, 0)
            )
            if magic != _MAGIC or version != _VERSION:
                raise ValueError(f"not an AOMG summary (magic={magic!r}, version={version})")
            config = SummaryConfig(alpha, limit, tail_size)
            offset = _HEADER.size
            exact_values, offset = _unpack_sorted(view, offset, n_exact)
            exact_counts = np.zeros(0, dtype=np.int64)
            if n_exact:
                exact_counts, offset = _unpack_uint(view, offset, n_exact)
            buckets, offset = _unpack_sorted(view, offset, n_buckets)
            bucket_counts = np.zeros(0, dtype=np.int64)
            if n_buckets:
                bucket_counts, offset = _unpack_uint(view, offset, n_buckets)
            tail = np.frombuffer(view[offset : offset + 8 * n_tail], dtype="<f8").astype(np.float64)
            if tail.size != n_tail or offset + 8 * n_tail != len(view):
                raise ValueError("truncated or oversized AOMG summary bytes")
        except (struct.error, IndexError) as exc:
            raise ValueError(f"corrupt AOMG summary bytes: {exc}") from None
        return cls(config, exact_values, exact_counts, buckets, bucket_counts, tail, skipped)

    # -- comparison ---------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuantileSummary):
            return NotImplemented
        return (
            self.config == other.config
            and self.skipped == other.skipped
            and np.array_equal(self.exact_values, other.exact_values)
            and np.array_equal(self.exact_counts, other.exact_counts)
            and np.array_equal(self.buckets, other.buckets)
            and np.array_equal(self.bucket_counts, other.bucket_counts)
            and np.array_equal(self.tail, other.tail)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable numpy payload

    def __repr__(self) -> str:
        return (
            f"QuantileSummary(count={self.count}, exact={self.exact_values.size}, "
            f"buckets={self.buckets.size}, tail={self.tail.size}, skipped={self.skipped})"
        )
