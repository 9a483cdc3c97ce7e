"""What storing and reading a block costs on this machine: W, Rd and the hit costs.

The authors hard-coded about 5 ms/MiB (~200 MiB/s). Here the figures are measured the way
Spark writes and reads its blocks, in the directory it writes them to (``spark.local.dir``),
once per attach — the probe is small enough to run every time, so no stale figure is kept
between runs — and then corrected online from the application's own disk traffic
(:class:`OnlineDiskCost`).

- **W (write)**: Spark's ``DiskStore`` writes a block through a plain file channel and never
  calls ``fsync``; so does the probe. A buffered write costs what copying into the page
  cache costs until the kernel's dirty-page limits make writers wait for the disk.
- **Rd (read)**: the probe file is flushed and dropped from the page cache
  (``fdatasync`` and ``posix_fadvise(DONTNEED)``, both outside the timed part) before it is
  read back, so the first figure is a read from the device — what a spilled block costs
  once the node's memory is under pressure (the case spilling is for) — not a copy out of
  the pages just written. Where the page cache serves the application's reads instead,
  the online correction brings Rd down to what its reads really cost. Platforms without
  ``posix_fadvise`` read back from the page cache (``read_mode="cached"``).
- **Hit costs**: a PySpark block is pickled bytes; every read of it, from memory or disk,
  is unpickled by the Python worker that consumes it. ``deserialize_ms_per_mib`` is that
  cost, measured on pickled batches of small tuples: a memory hit costs it, a disk hit
  costs it plus Rd.

``spark.blaze.disk.writeMsPerMiB`` / ``spark.blaze.disk.readMsPerMiB`` override W and Rd
without measuring (and without online correction: the user's figure is kept).
"""

from __future__ import annotations

import math
import os
import pickle
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from blaze_errors import InputError

__all__ = [
    "DiskCost",
    "OnlineDiskCost",
    "calibrate_disk",
    "disk_cost_from_config",
    "measure_deserialize",
    "measure_disk",
]

MIB = float(1 << 20)
# never report a disk as free: a 0 ms/MiB read would make every spill look costless
MIN_MS_PER_MIB = 0.01
PROBE_MIB = 8
CHUNK = 1 << 20


@dataclass(frozen=True)
class DiskCost:
    """Milliseconds to write / read one MiB of block, and to deserialize one MiB it holds.

    ``source`` says where the figures came from (``measured``, ``conf``, ``given``,
    ``+online`` once corrected by the application's own traffic); ``read_mode`` whether the
    probe read from the device (``cold``) or from the page cache (``cached``).
    """

    write_ms_per_mib: float
    read_ms_per_mib: float
    source: str = "given"
    measured_at: float | None = None  # epoch seconds of the measurement
    local_dir: str | None = None
    deserialize_ms_per_mib: float = 0.0
    read_mode: str | None = None

    def __post_init__(self) -> None:
        for name in ("write_ms_per_mib", "read_ms_per_mib", "deserialize_ms_per_mib"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value != value or value < 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")

    def write_ms(self, size_bytes: float) -> float:
        """W: writing a block of this size to the local dir."""
        return size_bytes / MIB * self.write_ms_per_mib

    def read_ms(self, size_bytes: float) -> float:
        """Rd: reading it back from the local dir."""
        return size_bytes / MIB * self.read_ms_per_mib

    def memory_hit_ms(self, size_bytes: float) -> float:
        """A read of the block from memory: its bytes deserialized by the consumer."""
        return size_bytes / MIB * self.deserialize_ms_per_mib

    def disk_hit_ms(self, size_bytes: float) -> float:
        """A read of the block from disk: Rd, then the same deserialization."""
        return self.read_ms(size_bytes) + self.memory_hit_ms(size_bytes)


def _drop_from_page_cache(fd: int) -> bool:
    """Flush a file and ask the kernel to forget its pages; False where it cannot."""
    if not hasattr(os, "posix_fadvise"):
        return False
    os.fdatasync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    return True


def measure_disk(local_dir: str | Path, size_mib: int = PROBE_MIB) -> DiskCost:
    """W and Rd of ``local_dir``: ``size_mib`` MiB written without fsync (as Spark's disk
    store writes), flushed and dropped from the page cache untimed, read back; deleted."""
    directory = Path(local_dir)
    if not directory.is_dir():
        raise InputError(f"disk calibration: local dir {directory} does not exist")
    if size_mib <= 0:
        raise ValueError(f"size_mib must be positive, got {size_mib}")
    chunk = os.urandom(CHUNK)  # incompressible, like pickled data
    fd, name = tempfile.mkstemp(prefix="blaze-disk-calibration-", dir=directory)
    try:
        start = time.perf_counter()
        with os.fdopen(fd, "wb", buffering=0) as out:
            for _ in range(size_mib):
                out.write(chunk)
            write_s = time.perf_counter() - start
            cold = _drop_from_page_cache(out.fileno())
        start = time.perf_counter()
        with open(name, "rb", buffering=0) as src:
            while src.read(CHUNK):
                pass
        read_s = time.perf_counter() - start
    except OSError as exc:
        raise InputError(f"disk calibration in {directory} failed: {exc}") from None
    finally:
        Path(name).unlink(missing_ok=True)
    return DiskCost(
        write_ms_per_mib=max(MIN_MS_PER_MIB, write_s * 1000.0 / size_mib),
        read_ms_per_mib=max(MIN_MS_PER_MIB, read_s * 1000.0 / size_mib),
        source="measured",
        measured_at=time.time(),
        local_dir=str(directory.resolve()),
        read_mode="cold" if cold else "cached",
    )


def measure_deserialize(size_mib: float = 1.0, batch: int = 1024) -> float:
    """Milliseconds to unpickle one MiB of PySpark-like batches (tuples of an int, a float
    and a short string, ``batch`` records per pickle, as PySpark's batched serializer)."""
    records = [(i, i * 0.5, f"v{i % 9973}") for i in range(batch)]
    blob = pickle.dumps(records, protocol=pickle.HIGHEST_PROTOCOL)
    count = max(1, math.ceil(size_mib * MIB / len(blob)))
    start = time.perf_counter()
    for _ in range(count):
        pickle.loads(blob)
    elapsed_ms = (time.perf_counter() - start) * 1000.0
    return max(MIN_MS_PER_MIB, elapsed_ms / (count * len(blob) / MIB))


def calibrate_disk(local_dir: str | Path, *, size_mib: int = PROBE_MIB) -> DiskCost:
    """This machine's block costs for ``local_dir``: :func:`measure_disk` plus the
    deserialization cost (tens of milliseconds in all: it runs at every attach)."""
    measured = measure_disk(local_dir, size_mib=size_mib)
    return replace(measured, deserialize_ms_per_mib=measure_deserialize())


def disk_cost_from_config(
    write_ms_per_mib: float | None,
    read_ms_per_mib: float | None,
    local_dir: str | Path | None = None,
    **calibrate_options,
) -> DiskCost:
    """Apply the conf override (``BlazeConfig.disk_write_ms_per_mib`` / ``..._read_...``).

    Both given: no disk measurement (``source="conf"``; the deserialization cost is still
    measured: it is no disk figure). Either missing: measure ``local_dir`` (Spark's
    ``spark.local.dir``; default the system temp dir, where it defaults too) and use the
    measurement for the missing one.
    """
    if write_ms_per_mib is not None and read_ms_per_mib is not None:
        return DiskCost(
            float(write_ms_per_mib),
            float(read_ms_per_mib),
            source="conf",
            deserialize_ms_per_mib=measure_deserialize(),
        )
    measured = calibrate_disk(local_dir or tempfile.gettempdir(), **calibrate_options)
    if write_ms_per_mib is None and read_ms_per_mib is None:
        return measured
    return replace(
        measured,
        write_ms_per_mib=(
            measured.write_ms_per_mib if write_ms_per_mib is None else float(write_ms_per_mib)
        ),
        read_ms_per_mib=(
            measured.read_ms_per_mib if read_ms_per_mib is None else float(read_ms_per_mib)
        ),
        source="conf+" + measured.source,
    )


class _Rate:
    """ms per MiB from the probe, pulled toward what the application's own transfers cost.

    A weighted mean where the probe counts as ``prior_mib`` of traffic and every observed
    transfer by its size; older traffic decays (each MiB observed shrinks the weight of
    what came before by ``1 - 1/window_mib``), so the rate follows the page cache filling
    up or the disk getting busy instead of averaging over the whole run.
    """

    def __init__(self, prior_ms_per_mib: float, prior_mib: float, window_mib: float) -> None:
        self.ms = prior_ms_per_mib * prior_mib
        self.mib = prior_mib
        self.window_mib = window_mib
        self.observed_mib = 0.0

    def observe(self, size_bytes: float, ms: float) -> None:
        mib = size_bytes / MIB
        keep = max(0.0, 1.0 - mib / self.window_mib)
        self.ms = self.ms * keep + ms
        self.mib = self.mib * keep + mib
        self.observed_mib += mib

    @property
    def value(self) -> float:
        return max(MIN_MS_PER_MIB, self.ms / self.mib)


class OnlineDiskCost:
    """The probe's W and Rd corrected from the disk traffic the application makes itself.

    Observations: ``observe_write(bytes, ms)`` — Spark's own shuffle-write time per task,
    the manager's timed spills; ``observe_read(bytes, extra_ms)`` — the run time of a task
    that read a block from disk over the median of its stage's memory-hit tasks (signed).
    Transfers under ``min_bytes`` are ignored (a fixed per-call overhead dominates them).
    :meth:`current` is the :class:`DiskCost` to price with; it changes only when a rate
    moved by more than ``tolerance`` (a changed disk cost makes every memoised cost stale).
    A conf figure (``source="conf"``) is the user's word and is never corrected.
    """

    def __init__(
        self,
        probe: DiskCost,
        *,
        prior_mib: float = PROBE_MIB,
        window_mib: float = 256.0,
        min_bytes: float = 256 * 1024,
        tolerance: float = 0.1,
    ) -> None:
        self.probe = probe
        self.fixed = probe.source == "conf"
        self.min_bytes = min_bytes
        self.tolerance = tolerance
        self._write = _Rate(probe.write_ms_per_mib, prior_mib, window_mib)
        self._read = _Rate(probe.read_ms_per_mib, prior_mib, window_mib)
        self._current = probe

    def observe_write(self, size_bytes: float, ms: float) -> bool:
        """One write of ``size_bytes`` took ``ms``; True if :meth:`current` changed."""
        if ms < 0:  # a write's own time, never negative: a clock's fault
            return False
        return self._observe(self._write, size_bytes, ms)

    def observe_read(self, size_bytes: float, extra_ms: float) -> bool:
        """A task that read ``size_bytes`` from disk ran ``extra_ms`` longer than its stage's
        typical memory-hit task; True if :meth:`current` changed. Signed: a difference of
        task times carries the tasks' own spread, which averages out only if the faster
        ones count too. Clipped at 0, it averaged to reads up to 60× the probe's on the join
        stages of cc and svdpp (blaze_auto's decision logs, suite and shape-2 runs)."""
        return self._observe(self._read, size_bytes, extra_ms)

    def _observe(self, rate: _Rate, size_bytes: float, ms: float) -> bool:
        if self.fixed or size_bytes < self.min_bytes or not math.isfinite(ms):
            return False
        rate.observe(size_bytes, ms)
        write, read = self._write.value, self._read.value
        old = self._current
        if _moved(old.write_ms_per_mib, write, self.tolerance) or _moved(
            old.read_ms_per_mib, read, self.tolerance
        ):
            source = self.probe.source.replace("+online", "") + "+online"
            self._current = replace(
                self.probe, write_ms_per_mib=write, read_ms_per_mib=read, source=source
            )
            return True
        return False

    def current(self) -> DiskCost:
        return self._current

    def report(self) -> dict:
        """The probe's figures, the current ones and how much traffic corrected them."""
        now = self._current
        return {
            "write": now.write_ms_per_mib,
            "read": now.read_ms_per_mib,
            "deserialize": now.deserialize_ms_per_mib,
            "probe_write": self.probe.write_ms_per_mib,
            "probe_read": self.probe.read_ms_per_mib,
            "read_mode": self.probe.read_mode,
            "local_dir": self.probe.local_dir,
            "source": now.source,
            "observed_write_mib": round(self._write.observed_mib, 3),
            "observed_read_mib": round(self._read.observed_mib, 3),
        }


def _moved(old: float, new: float, tolerance: float) -> bool:
    return abs(new - old) > tolerance * max(old, MIN_MS_PER_MIB)
