"""The AOMG sub-window summary: density-aware, exactly mergeable, relative-error quantiles.

Telemetry values (RTTs in microseconds) are dense on a few hundred recurring small integers
and sparse in a heavy tail. One summary per (key, sub-window) spends its space where that
shape needs it — three regions, every input value counted in exactly one of them:

* **exact counts** — integers in ``[0, exact_limit]`` get one counter per distinct value
  (the recurring small values: a few hundred counters describe millions of probes exactly);
* **log buckets** — every other positive value goes to the bucket ``i`` with
  ``P(i-1) < v <= P(i)``, ``P(i) ≈ γ^i``, ``γ = (1 + α) / (1 - α)``; a bucket answers with
  ``2P(i) / (γ + 1)``, which is within relative distance ``α`` of every value it holds
  (DDSketch's mapping). ``P`` comes from tables built by repeated multiplication and ``log``
  only guesses ``i`` before an exact check against ``P``, so the JVM aggregate
  (``blaze_jvm/java/org/blazespark/aomg``) puts every value in the same bucket;
* **exact tail** — the ``tail_size`` largest bucketed values are kept verbatim, so the
  extreme quantiles of a window (p99.9 of a few thousand records) are answered exactly.

Guarantee. For every quantile ``q`` in ``[0, 1]``, :meth:`QuantileSummary.quantiles` returns
``q̂`` with ``|q̂ - x| <= α·x`` where ``x`` is DuckDB's ``quantile_disc(value, q)`` over the
same values — the value at 1-based rank ``max(1, ceil(n·q))`` in sorted order. Why: each value
``v`` is replaced by a proxy ``p(v)`` with ``(1-α)v <= p(v) <= (1+α)v`` (``p(v) = v`` in the
exact regions), and order statistics are monotone under such element-wise bounds, so the
rank-r proxy lies within ``[(1-α)x, (1+α)x]``. Exact-region and tail answers are exact.
(Subnormal values, below 2.2e-308, share one bucket: their answers are off by less than
2.3e-308 in absolute terms, not relative.)

Merging. Counts add; the tails are pooled and the ``tail_size`` largest kept, the rest moved
into their buckets. The global top values are always among the sub-windows' tails, so the
merged summary is a function of the *multiset* of input values alone: merging is exact,
associative and order-independent, and a window built from sub-window summaries equals the
summary built from the window's raw values (two-level hierarchical windowing).

Cost. At most ``exact_limit + 1`` exact counters, ``log(max/min)/log γ`` buckets (≈ 1,500 for
1 µs .. 3 s at α = 0.5 %) and ``tail_size`` floats, whatever the number of records; in
practice a 10 s window of telemetry serialises to about 1 KiB (half of it the 64-value tail;
KLL's sketch of the same window is 2-3 KiB).

Bytes (format version 2, the JVM functions' format, see :meth:`QuantileSummary.to_bytes`):
``b"AOMG"``, a version byte, α as float64, then unsigned LEB128 varints ``exact_limit``,
``tail_size``, ``skipped`` and the three region lengths; (value delta, count) pairs of the
exact region; (bucket delta, count) pairs (the first delta zigzag-encoded); the tail as
ascending float64. This module is the reference the JVM functions are tested against.
"""

from __future__ import annotations

import functools
import itertools
import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "FORMAT_VERSION",
    "QuantileSummary",
    "SummaryConfig",
    "exact_quantiles",
    "validate_quantiles",
]

_MAGIC = b"AOMG"
FORMAT_VERSION = 2
_HEAD = struct.Struct("<4sBd")  # magic, version, alpha
_LN_DOUBLE_RANGE = 746.0  # |ln v| of every positive finite double is below this
MIN_ALPHA = 1e-6  # finer accuracies need bucket tables of megabytes
_MIN_NORMAL = 2.2250738585072014e-308  # smallest normal double (Java's Double.MIN_NORMAL)


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
        if not (isinstance(alpha, int | float) and 0.0 < alpha < 0.5):
            raise ValueError(f"relative_accuracy: alpha={alpha!r} is outside (0, 0.5)")
        if alpha < MIN_ALPHA:
            raise ValueError(
                f"relative_accuracy: alpha={alpha!r} is below {MIN_ALPHA}, the finest supported"
            )
        if not (isinstance(self.exact_limit, int) and 0 <= self.exact_limit < 2**31):
            raise ValueError(f"exact_limit={self.exact_limit!r} must be an int in [0, 2**31)")
        if not (isinstance(self.tail_size, int) and 0 <= self.tail_size < 2**31):
            raise ValueError(f"tail_size={self.tail_size!r} must be an int in [0, 2**31)")

    @property
    def gamma(self) -> float:
        return (1.0 + self.relative_accuracy) / (1.0 - self.relative_accuracy)

    def bucket_of(self, values: np.ndarray) -> np.ndarray:
        """Bucket of each positive value: the ``i`` with ``P(i-1) < v <= P(i)``.

        ``ceil(log_γ v)`` is only the first guess; it is moved until the tabled bounds agree,
        as the JVM does, so both put a value within an ulp of ``P(i)`` in the same bucket.
        """
        # subnormal values share the bucket of the smallest normal double: below it the tabled
        # products lose precision and bounds stop rising with i
        v = np.maximum(np.asarray(values, dtype=np.float64), _MIN_NORMAL)
        guess = np.ceil(np.log(v) / math.log(self.gamma))
        i = np.nan_to_num(guess, nan=0.0, posinf=0.0, neginf=0.0).astype(np.int64)
        while True:
            down = self.bound(i - 1) >= v
            up = ~down & (self.bound(i) < v)
            if not (down.any() or up.any()):
                return i
            i = i - down + up

    def power_tables(self) -> tuple[int, tuple[tuple[float, ...], ...]]:
        """``(base, (up_low, up_high, down_low, down_high))``: ``P(i)`` of a bucket index
        ``i = ±(h·base + l)`` is ``high[h] * low[l]`` of the ``up`` (i >= 0) or ``down``
        tables, each built by repeated multiplication by ``γ^(±1)`` or ``γ^(±base)``.

        Exact IEEE steps in a fixed order: the JVM (``Mapping.java``) builds the same doubles,
        where ``exp`` routines may differ in the last bit. The tables cover every bucket index a
        positive double can have.
        """
        return _tables(self.relative_accuracy)

    def bound(self, buckets: np.ndarray) -> np.ndarray:
        """Upper bound ``P(i)`` of each bucket (``inf`` / ``0`` beyond the doubles)."""
        b = np.asarray(buckets, dtype=np.int64)
        base, (up_low, up_high, down_low, down_high) = self.power_tables()
        magnitude = np.abs(b)
        low, high = magnitude % base, magnitude // base
        inside = high < up_high.size
        h = np.where(inside, high, 0)
        with np.errstate(over="ignore", under="ignore"):
            power = np.where(b >= 0, up_high[h] * up_low[low], down_high[h] * down_low[low])
        return np.where(inside, power, np.where(b >= 0, np.inf, 0.0))

    def representative(self, buckets: np.ndarray) -> np.ndarray:
        """The value a bucket answers with, ``2P(i) / (γ + 1)`` (within α of everything it holds)."""
        # P / ((γ + 1) / 2) rounds the same real number as 2P / (γ + 1) but cannot overflow
        return self.bound(buckets) / ((self.gamma + 1.0) / 2.0)


@functools.lru_cache(maxsize=16)
def _tables(alpha: float) -> tuple[int, tuple[np.ndarray, ...]]:
    gamma = (1.0 + alpha) / (1.0 - alpha)
    largest = math.ceil(_LN_DOUBLE_RANGE / math.log(gamma)) + 1
    base = max(2, math.isqrt(largest) + 1)
    high = largest // base + 1

    def powers(step: float, count: int) -> np.ndarray:
        out = [1.0]
        for _ in range(count - 1):
            out.append(out[-1] * step)  # Python floats: IEEE doubles, overflow to inf
        return np.asarray(out)

    up_low = powers(gamma, base)
    inverse = 1.0 / gamma
    down_low = powers(inverse, base)
    return base, (
        up_low,
        powers(float(up_low[-1]) * gamma, high),
        down_low,
        powers(float(down_low[-1]) * inverse, high),
    )


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


def _varint(out: bytearray, value: int) -> None:
    """Unsigned LEB128 (7 bits a byte, low first), as ``AomgSummary.java`` writes it."""
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


class _Reader:
    """Reads the fields of :meth:`QuantileSummary.to_bytes`; IndexError when truncated."""

    def __init__(self, data: bytes, position: int) -> None:
        self.data = data
        self.position = position

    def varint(self) -> int:
        value = shift = 0
        while True:
            byte = self.data[self.position]
            self.position += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7
            if shift >= 64:
                raise ValueError("corrupt AOMG summary: varint longer than 64 bits")

    def length(self) -> int:
        n = self.varint()
        if n > len(self.data):
            raise ValueError(f"corrupt AOMG summary: impossible length {n}")
        return n


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

    # -- bytes (the JVM functions' format) --------------------------------------------------
    def to_bytes(self) -> bytes:
        """The summary in format version 2 (module docstring): byte for byte what
        ``aomg_summary_agg`` returns for the same values."""
        c = self.config
        out = bytearray(_HEAD.pack(_MAGIC, FORMAT_VERSION, c.relative_accuracy))
        for field in (
            c.exact_limit,
            c.tail_size,
            self.skipped,
            self.exact_values.size,
            self.buckets.size,
            self.tail.size,
        ):
            _varint(out, int(field))
        previous = 0
        for value, count in zip(
            self.exact_values.tolist(), self.exact_counts.tolist(), strict=True
        ):
            _varint(out, value - previous)
            _varint(out, count)
            previous = value
        keys = self.buckets.tolist()
        for j, (key, count) in enumerate(zip(keys, self.bucket_counts.tolist(), strict=True)):
            delta = ((key << 1) ^ (key >> 63)) & (2**64 - 1) if j == 0 else key - keys[j - 1]
            _varint(out, delta)
            _varint(out, count)
        out += np.sort(self.tail).astype("<f8").tobytes()
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> QuantileSummary:
        """Inverse of :meth:`to_bytes` (and reader of the JVM's summaries); a ``ValueError``
        naming the problem if the bytes are not a version-2 summary."""
        data = bytes(data)
        if len(data) < 5 or data[:4] != _MAGIC:
            raise ValueError(f"not an AOMG summary ({len(data)} bytes without the AOMG header)")
        if data[4] != FORMAT_VERSION:
            raise ValueError(
                f"AOMG summary of format version {data[4]}; this build reads version "
                f"{FORMAT_VERSION}"
            )
        try:
            _, _, alpha = _HEAD.unpack_from(data, 0)
            reader = _Reader(data, _HEAD.size)
            limit, tail_size, skipped = reader.varint(), reader.varint(), reader.varint()
            n_exact, n_buckets, n_tail = reader.length(), reader.length(), reader.length()
            config = SummaryConfig(alpha, limit, tail_size)
            pairs = [(reader.varint(), reader.varint()) for _ in range(n_exact)]
            exact_values = np.cumsum([d for d, _ in pairs], dtype=np.int64)
            exact_counts = np.asarray([n for _, n in pairs], dtype=np.int64)
            pairs = [(reader.varint(), reader.varint()) for _ in range(n_buckets)]
            deltas = [d for d, _ in pairs]
            if deltas:
                first = deltas[0]
                deltas[0] = (first >> 1) ^ -(first & 1)
            buckets = np.asarray(list(itertools.accumulate(deltas)), dtype=np.int64)
            bucket_counts = np.asarray([n for _, n in pairs], dtype=np.int64)
            start = reader.position
            if start + 8 * n_tail != len(data):
                raise ValueError("corrupt AOMG summary: truncated or with bytes after its end")
            tail = np.frombuffer(data[start:], dtype="<f8").astype(np.float64)
        except (struct.error, IndexError):
            raise ValueError("corrupt AOMG summary: truncated") from None
        return cls(
            config,
            exact_values.astype(np.int64),
            exact_counts,
            buckets.astype(np.int64),
            bucket_counts,
            tail,
            skipped,
        )

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
