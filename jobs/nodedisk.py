"""Node mode: every benchmark application on a disk that costs what a cluster node's disk costs.

Why: on this machine a "disk" is the OS page cache. 24 GiB of RAM hold every spilled block,
so writing and later reading a pickled partition costs about what a memory hit does, and
MEMORY_AND_DISK loses almost nothing by spilling everything. On a node, what does not fit in
executor memory does not fit in the page cache either, and the disk has a bandwidth.

How (cgroup v1, as root): each Spark application (one ``python -m jobs.run_one`` process tree
per job x policy) runs inside

* a **memory** group whose ``memory.limit_in_bytes`` = the application's own peak + the
  page-cache allowance. A v1 memory group is charged for the page cache its processes fill
  (files read or written) and reclaims that cache at the limit, so beyond the allowance what
  the application spilled, shuffled or read must come back from the device;
* a **blkio** group with ``blkio.throttle.read_bps_device`` and ``write_bps_device`` on the
  block device holding ``spark.local.dir`` (its major:minor resolved from the path).

What v1 does not do, stated in every result: buffered writes are flushed by kernel threads
outside the group, so they are not throttled (only I/O the group's own tasks submit is); reads
that miss the page cache are. The throttle slows every policy's input, shuffle and spill I/O
alike, as a node's shared disk does. Before each run the job's input files are dropped from
the page cache, so the input is read from the device as a fresh application on a node would.

The application's own peak — what it needs whatever the page cache — comes from the program's
sizing runs (the runner's untimed footprint runs, one per variant the plan runs; the largest
peak counts), made in memory groups without a limit:
the maximum over samples every 0.1 s of ``memory.usage_in_bytes`` minus the group's file pages
(``active_file + inactive_file`` of ``memory.stat``), i.e. anonymous plus kernel memory.
(``memory.max_usage_in_bytes`` counts the page cache too, so it is recorded, not used.) In node
mode the driver JVM commits and touches its whole heap at start (``-Xms`` = ``-Xmx``,
``AlwaysPreTouch``), so its resident heap is the same under every policy and the sizing peak
holds for the timed runs; ``--app-memory`` states the peak instead of measuring it. Every
timed run records its own sampled peak as well, so a run whose own memory outgrew the
sizing run's (leaving less page cache than the allowance) shows in the results; a run the
kernel's OOM killer ended is reported as such.

Groups are created under the cgroup this process already belongs to (hierarchical accounting
keeps counting them there) and every group is removed afterwards — its leftover processes
killed first — also on an error or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from blaze_errors import InputError, MachineError

__all__ = [
    "CGROUP_ROOT",
    "DEFAULT_PAGE_CACHE_MIB",
    "DISK_MODES",
    "POINTS",
    "NodeDisk",
    "NodeGroup",
    "NodeHost",
    "block_device",
    "drop_from_page_cache",
    "node_json",
    "parse_node",
    "probe_host",
    "terminate_as_exit",
]

CGROUP_ROOT = Path("/sys/fs/cgroup")
# named disks (MB/s, read and write): a cloud block volume and a local NVMe drive
POINTS = {"cloud": 200, "nvme": 1000}
DISK_MODES = ("local", "node", *POINTS)
# the page cache one application may fill above its own memory: the order of the suite's
# storage pools at the default --memory 30 % (5-110 MiB), far below what mem_disk spills in a
# run of kmeans, lr or mlpipeline (50-740 MiB) plus the shuffle files and the input
DEFAULT_PAGE_CACHE_MIB = 64
SAMPLE_SECONDS = 0.1
REMOVE_TIMEOUT_S = 15.0
# after a run that ended normally, the JVM may still be running its shutdown hooks (deleting
# its temp dirs): leftover processes get this long to exit before they are killed
EXIT_GRACE_S = 5.0
JOIN_FAILED = 125  # exit code of the wrapper when the child could not join its groups
MB = 10**6
MIB = 1 << 20


@dataclass(frozen=True)
class NodeDisk:
    """The node's parameters, fixed before any timed run and stated in every result."""

    point: str  # "cloud", "nvme" or "node" (a stated bandwidth)
    read_bps: int
    write_bps: int
    page_cache_bytes: int
    app_memory_bytes: int | None = None  # None: each program's sizing run measures it

    def limit_bytes(self, app_bytes: int) -> int:
        """``memory.limit_in_bytes`` of an application whose own peak is ``app_bytes``."""
        return app_bytes + self.page_cache_bytes

    def describe(self, device: str = "") -> str:
        app = (
            f"{self.app_memory_bytes / MIB:.0f} MiB (stated)"
            if self.app_memory_bytes
            else "each program's largest sizing-run peak (one per variant)"
        )
        on = f" on {device}" if device else ""
        return (
            f"node mode ({self.point}): read {self.read_bps / MB:g} MB/s, write "
            f"{self.write_bps / MB:g} MB/s{on} (cgroup v1 blkio; buffered writes are flushed "
            f"unthrottled); page cache {self.page_cache_bytes / MIB:g} MiB above the "
            f"application's own memory ({app}): memory limit = own peak + page cache"
        )


def _positive(value: float | None, flag: str, unit: str) -> float | None:
    if value is None:
        return None
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise InputError(f"{flag} {value!r} must be a positive {unit}")
    return float(value)


def parse_node(
    disk: str,
    *,
    mbps: float | None = None,
    page_cache_mib: float | None = None,
    app_memory_mib: float | None = None,
    machine_bytes: int,
) -> NodeDisk | None:
    """``--disk`` and its parameters -> the node (None for ``local``), or one InputError line."""
    if disk not in DISK_MODES:
        raise InputError(f"unknown --disk {disk!r} (known: {', '.join(DISK_MODES)})")
    given = [
        flag
        for flag, value in (
            ("--disk-mbps", mbps),
            ("--page-cache", page_cache_mib),
            ("--app-memory", app_memory_mib),
        )
        if value is not None
    ]
    if disk == "local":
        if given:
            raise InputError(f"{given[0]} applies to node mode only (--disk node, cloud or nvme)")
        return None
    if disk in POINTS and mbps is not None:
        raise InputError(
            f"--disk {disk} fixes {POINTS[disk]} MB/s; for another bandwidth use "
            f"--disk node --disk-mbps N"
        )
    if disk == "node" and mbps is None:
        raise InputError(
            "--disk node needs --disk-mbps (the disk's read and write MB/s), or use "
            + " / ".join(f"--disk {name} ({value} MB/s)" for name, value in POINTS.items())
        )
    mbps = _positive(mbps, "--disk-mbps", "bandwidth in MB/s") or float(POINTS[disk])
    bps = int(mbps * MB)
    if bps < 1:
        raise InputError(f"--disk-mbps {mbps!r} is below one byte per second")
    cache = _positive(page_cache_mib, "--page-cache", "size in MiB") or DEFAULT_PAGE_CACHE_MIB
    app = _positive(app_memory_mib, "--app-memory", "size in MiB")
    cache_bytes = int(cache * MIB)
    gib = machine_bytes / 2**30
    if cache_bytes >= machine_bytes:
        raise InputError(
            f"--page-cache {cache:g} MiB is above this machine's memory ({gib:.1f} GiB)"
        )
    app_bytes = None if app is None else int(app * MIB)
    if app_bytes is not None and app_bytes + cache_bytes >= machine_bytes:
        raise InputError(
            f"--app-memory {app:g} MiB + --page-cache {cache:g} MiB is above this machine's "
            f"memory ({gib:.1f} GiB): the limit would never bind"
        )
    point = disk if disk in POINTS else "node"
    return NodeDisk(point, bps, bps, cache_bytes, app_bytes)


# --- the host -------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeHost:
    """Where this machine lets node mode put its groups, and the device to throttle."""

    memory_parent: Path
    blkio_parent: Path
    device: str  # "major:minor" of the whole disk holding spark.local.dir
    device_name: str  # e.g. "vda"

    @property
    def shown_device(self) -> str:
        return f"{self.device} ({self.device_name})"


def block_device(path: Path) -> tuple[str, str]:
    """("major:minor", name) of the whole disk holding ``path`` (a partition's parent disk)."""
    st_dev = os.stat(path).st_dev
    number = f"{os.major(st_dev)}:{os.minor(st_dev)}"
    sys_dir = Path("/sys/dev/block") / number
    if not sys_dir.exists():
        raise MachineError(
            f"node mode: spark.local.dir {path} is on device {number}, which is no block "
            "device (tmpfs, overlay or a network file system): there is no disk to throttle"
        )
    real = sys_dir.resolve()
    if (real / "partition").exists():  # blkio throttles whole disks, not partitions
        real = real.parent
        number = (real / "dev").read_text().strip()
    return number, real.name


def _own_group(controller: str) -> str:
    """This process's group path in ``controller``'s v1 hierarchy ("/" when unknown)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return "/"
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    return "/"


def _parent(root: Path, controller: str) -> Path:
    hierarchy = root / controller
    own = hierarchy / _own_group(controller).lstrip("/")
    return own if own.is_dir() else hierarchy


def probe_host(local_dir: Path, cgroup_root: Path = CGROUP_ROOT) -> NodeHost:
    """Check that node mode can run here; a :class:`MachineError` (one line) says why not."""
    if not sys.platform.startswith("linux"):
        raise MachineError(f"node mode needs Linux cgroups v1; this is {sys.platform}")
    if not (cgroup_root / "memory" / "memory.limit_in_bytes").is_file():
        raise MachineError(
            f"node mode needs a cgroup v1 memory hierarchy; {cgroup_root / 'memory'} has none"
        )
    if not (cgroup_root / "blkio" / "blkio.throttle.read_bps_device").is_file():
        raise MachineError(
            f"node mode needs cgroup v1 blkio throttling; {cgroup_root / 'blkio'} has none"
        )
    if os.geteuid() != 0:
        raise MachineError(
            f"node mode needs root to create cgroups (running as uid {os.geteuid()})"
        )
    local_dir.mkdir(parents=True, exist_ok=True)
    device, name = block_device(local_dir)
    host = NodeHost(_parent(cgroup_root, "memory"), _parent(cgroup_root, "blkio"), device, name)
    for parent in (host.memory_parent, host.blkio_parent):
        probe = parent / f"blaze-node-probe-{os.getpid()}"
        try:
            probe.mkdir()
            probe.rmdir()
        except OSError as exc:
            raise MachineError(f"node mode cannot create a cgroup under {parent}: {exc}") from None
    return host


# --- one application's groups ----------------------------------------------------------


def _read_int(path: Path) -> int:
    return int(path.read_text().split()[0])


def _memory_stat(group: Path) -> dict[str, int]:
    stat = {}
    for line in (group / "memory.stat").read_text().splitlines():
        key, _, value = line.partition(" ")
        stat[key] = int(value)
    return stat


def _procs(group: Path) -> list[int]:
    try:
        return [int(p) for p in (group / "cgroup.procs").read_text().split()]
    except FileNotFoundError:
        return []


class NodeGroup:
    """One application's memory and blkio groups: made on enter, emptied and removed on exit.

    ``memory_limit=None`` and ``bps=None`` make a sizing group (no limit, no throttle) that
    only measures. While the group exists a thread samples its memory every 0.1 s.
    """

    def __init__(
        self,
        host: NodeHost,
        name: str,
        *,
        memory_limit: int | None,
        read_bps: int | None,
        write_bps: int | None,
    ):
        self.host = host
        self.memory_dir = host.memory_parent / name
        self.blkio_dir = host.blkio_parent / name
        self.memory_limit = memory_limit
        self.read_bps = read_bps
        self.write_bps = write_bps
        self.own_peak = 0
        self.page_cache_peak = 0
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None
        self._final: dict = {}

    # set-up
    def __enter__(self) -> NodeGroup:
        try:
            self.memory_dir.mkdir()
            self.blkio_dir.mkdir()
            if self.memory_limit is not None:
                (self.memory_dir / "memory.limit_in_bytes").write_text(str(self.memory_limit))
            for name, bps in (("read", self.read_bps), ("write", self.write_bps)):
                if bps is not None:
                    path = self.blkio_dir / f"blkio.throttle.{name}_bps_device"
                    path.write_text(f"{self.host.device} {bps}")
        except OSError as exc:
            self.remove()
            raise MachineError(
                f"node mode could not set up {self.memory_dir.name}: {exc}"
            ) from None
        self._sampler = threading.Thread(target=self._sample_loop, daemon=True)
        self._sampler.start()
        return self

    def wrap(self, cmd: list[str]) -> list[str]:
        """``cmd`` started so that its very first process joins both groups, then ``exec``s:
        everything it starts (the JVM, Python workers) is in the groups from the start."""
        return ["/bin/sh", "-c", _JOIN_SCRIPT, "sh", "2", *self.procs_files, *cmd]

    @property
    def procs_files(self) -> tuple[str, str]:
        return str(self.memory_dir / "cgroup.procs"), str(self.blkio_dir / "cgroup.procs")

    def pids(self) -> set[int]:
        return set(_procs(self.memory_dir)) | set(_procs(self.blkio_dir))

    # measurement
    def sample(self) -> None:
        usage = _read_int(self.memory_dir / "memory.usage_in_bytes")
        stat = _memory_stat(self.memory_dir)
        cache = stat.get("active_file", 0) + stat.get("inactive_file", 0)
        self.own_peak = max(self.own_peak, usage - cache)
        self.page_cache_peak = max(self.page_cache_peak, cache)

    def _sample_loop(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            with contextlib.suppress(OSError, ValueError):
                self.sample()

    def _device_bytes(self) -> dict[str, int]:
        out = {"Read": 0, "Write": 0}
        text = (self.blkio_dir / "blkio.throttle.io_service_bytes").read_text()
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == self.host.device and parts[1] in out:
                out[parts[1]] += int(parts[2])
        return out

    def _oom_kills(self) -> int:
        for line in (self.memory_dir / "memory.oom_control").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def report(self) -> dict:
        """What the group saw (valid after exit): peaks, limit hits, OOM kills, device bytes."""
        return {
            "memory_limit_bytes": self.memory_limit,
            "read_bps": self.read_bps,
            "write_bps": self.write_bps,
            "own_peak_bytes": self.own_peak,
            "page_cache_peak_bytes": self.page_cache_peak,
            **self._final,
        }

    # clean-up
    def __exit__(self, exc_type, exc, tb) -> None:
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join()
        try:
            self.sample()
            io = self._device_bytes()
            self._final = {
                "max_usage_bytes": _read_int(self.memory_dir / "memory.max_usage_in_bytes"),
                "limit_hits": _read_int(self.memory_dir / "memory.failcnt"),
                "oom_kills": self._oom_kills(),
                "device_read_bytes": io["Read"],
                "device_write_bytes": io["Write"],
            }
        except (OSError, ValueError):
            pass  # the group is gone or half made: nothing left to measure
        self.remove(grace=EXIT_GRACE_S if exc_type is None else 0.0)

    def remove(self, grace: float = 0.0) -> None:
        """Kill whatever is left in the groups (after ``grace`` seconds to exit by itself),
        then remove them (blkio first, then memory)."""
        waited = time.monotonic() + grace
        while self.pids() and time.monotonic() < waited:
            time.sleep(0.05)
        deadline = time.monotonic() + REMOVE_TIMEOUT_S
        for group in (self.blkio_dir, self.memory_dir):
            while group.exists():
                pids = _procs(group)
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                if not pids:
                    with contextlib.suppress(OSError):
                        group.rmdir()
                if group.exists():
                    if time.monotonic() > deadline:
                        raise MachineError(f"node mode could not remove the cgroup {group}")
                    time.sleep(0.02)


# positional parameters: N, then N cgroup.procs files, then the command to exec
_JOIN_SCRIPT = (
    'n=$1; shift; i=0; while [ "$i" -lt "$n" ]; do echo $$ > "$1" || exit '
    f'{JOIN_FAILED}; shift; i=$((i + 1)); done; exec "$@"'
)


def drop_from_page_cache(folder: Path) -> None:
    """Drop ``folder``'s files from the page cache, so the next read comes from the device."""
    for path in sorted(Path(folder).rglob("*")):
        if not path.is_file():
            continue
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


@contextlib.contextmanager
def terminate_as_exit():
    """SIGTERM raises SystemExit while node groups exist, so their clean-up runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _exit(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def node_json(disk: NodeDisk, host: NodeHost | None) -> dict:
    """The node parameters as results state them (no machine paths)."""
    out = asdict(disk)
    out["device"] = host.shown_device if host else None
    out["description"] = disk.describe(host.shown_device if host else "")
    return out
