"""Disk cost: this machine's sequential write and read time per MiB for the Spark local dir.

The authors hard-coded about 5 ms/MiB (~200 MiB/s). Here the page cache often makes a
freshly spilled PySpark block almost as cheap to read as memory, so the number
is measured once per local dir — a small file written with ``fsync`` (what a sustained spill
costs) and read straight back (what Spark sees when it re-reads a recently spilled block) —
and cached as JSON with a timestamp. ``spark.blaze.disk.writeMsPerMiB`` /
``spark.blaze.disk.readMsPerMiB`` override either figure without measuring.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from blaze_errors import InputError

__all__ = [
    "DEFAULT_CACHE_PATH",
    "DiskCost",
    "calibrate_disk",
    "disk_cost_from_config",
    "measure_disk",
]

DEFAULT_CACHE_PATH = (
    Path(os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache")))
    / "blaze-spark"
    / "disk_cost.json"
)
DEFAULT_MAX_AGE_S = 7 * 24 * 3600.0
# never report a disk as free: a 0 ms/MiB read would make every spill look costless
MIN_MS_PER_MIB = 0.01


@dataclass(frozen=True)
class DiskCost:
    """Milliseconds to write / read one MiB; ``source`` says where the figures came from."""

    write_ms_per_mib: float
    read_ms_per_mib: float
    source: str = "given"  # measured | cached | conf | given
    measured_at: float | None = None  # epoch seconds of the measurement
    local_dir: str | None = None

    def __post_init__(self) -> None:
        for name in ("write_ms_per_mib", "read_ms_per_mib"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value != value or value < 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")

    def write_ms(self, size_bytes: float) -> float:
        return size_bytes / float(1 << 20) * self.write_ms_per_mib

    def read_ms(self, size_bytes: float) -> float:
        return size_bytes / float(1 << 20) * self.read_ms_per_mib


def measure_disk(local_dir: str | Path, size_mib: int = 16) -> DiskCost:
    """Write ``size_mib`` MiB to a temp file in ``local_dir`` (fsync), read it back, delete it."""
    directory = Path(local_dir)
    if not directory.is_dir():
        raise InputError(f"disk calibration: local dir {directory} does not exist")
    if size_mib <= 0:
        raise ValueError(f"size_mib must be positive, got {size_mib}")
    chunk = os.urandom(1 << 20)  # incompressible, like pickled data
    fd, name = tempfile.mkstemp(prefix="blaze-disk-calibration-", dir=directory)
    try:
        start = time.perf_counter()
        with os.fdopen(fd, "wb", buffering=0) as out:
            for _ in range(size_mib):
                out.write(chunk)
            os.fsync(out.fileno())
        write_s = time.perf_counter() - start
        start = time.perf_counter()
        with open(name, "rb", buffering=0) as src:
            while src.read(1 << 20):
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
    )


def _read_cache(cache_path: Path) -> dict[str, dict]:
    try:
        data = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        return {}  # absent or corrupt: measure again rather than fail a run over a cache
    return data if isinstance(data, dict) else {}


def calibrate_disk(
    local_dir: str | Path,
    *,
    cache_path: str | Path | None = None,
    max_age_s: float = DEFAULT_MAX_AGE_S,
    size_mib: int = 16,
    force: bool = False,
) -> DiskCost:
    """This machine's disk cost for ``local_dir``, measured once and cached with a timestamp.

    A cached figure younger than ``max_age_s`` is returned without touching the disk
    (``source="cached"``); ``force=True`` always measures. The cache maps each resolved
    local dir to its own figures, so several local dirs on different disks stay apart.
    """
    directory = Path(local_dir).resolve()
    cache = Path(cache_path) if cache_path is not None else DEFAULT_CACHE_PATH
    entries = _read_cache(cache)
    entry = entries.get(str(directory))
    if not force and isinstance(entry, dict):
        try:
            if time.time() - float(entry["measured_at"]) <= max_age_s:
                return DiskCost(
                    write_ms_per_mib=float(entry["write_ms_per_mib"]),
                    read_ms_per_mib=float(entry["read_ms_per_mib"]),
                    source="cached",
                    measured_at=float(entry["measured_at"]),
                    local_dir=str(directory),
                )
        except (KeyError, TypeError, ValueError):
            pass  # malformed entry: measure again
    measured = measure_disk(directory, size_mib=size_mib)
    record = asdict(measured)
    record.pop("source")
    entries[str(directory)] = record
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps(entries, indent=1, sort_keys=True))
        tmp.replace(cache)
    except OSError:
        pass  # an unwritable cache only costs a re-measurement next time
    return measured


def disk_cost_from_config(
    write_ms_per_mib: float | None,
    read_ms_per_mib: float | None,
    local_dir: str | Path | None = None,
    **calibrate_options,
) -> DiskCost:
    """Apply the conf override (``BlazeConfig.disk_write_ms_per_mib`` / ``..._read_...``).

    Both given: no measurement (``source="conf"``). Either missing: calibrate ``local_dir``
    (default: the system temp dir, where Spark's ``spark.local.dir`` also defaults) and use
    the measurement for the missing one.
    """
    if write_ms_per_mib is not None and read_ms_per_mib is not None:
        return DiskCost(float(write_ms_per_mib), float(read_ms_per_mib), source="conf")
    measured = calibrate_disk(local_dir or tempfile.gettempdir(), **calibrate_options)
    if write_ms_per_mib is None and read_ms_per_mib is None:
        return measured
    return DiskCost(
        write_ms_per_mib=(
            measured.write_ms_per_mib if write_ms_per_mib is None else float(write_ms_per_mib)
        ),
        read_ms_per_mib=(
            measured.read_ms_per_mib if read_ms_per_mib is None else float(read_ms_per_mib)
        ),
        source="conf+" + measured.source,
        measured_at=measured.measured_at,
        local_dir=measured.local_dir,
    )
