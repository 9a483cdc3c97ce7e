"""Cache metrics read back from a finished application's Spark event log.

With ``spark.eventLog.logBlockUpdates.enabled=true`` Spark logs every change of every block
(``SparkListenerBlockUpdated``). Replaying the RDD blocks among them gives, identically for
every policy and without touching the JVM: the peak bytes cached in memory (the job's
footprint), the bytes written to disk by caching, and how often a block left memory. The log
is read by :func:`lineage.eventlog.read_event_log` (plain, zstd or rolling).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from blaze_errors import InputError
from lineage.eventlog import read_event_log
from lineage.events import BlockEvent

__all__ = ["CacheTrace", "find_event_log", "replay_block_updates"]


@dataclass(frozen=True)
class CacheTrace:
    peak_memory_bytes: int
    disk_bytes_written: int
    memory_exits: int  # a block dropped from memory or moved to disk
    block_updates: int


def find_event_log(directory: str | Path) -> Path:
    """The single finished event log (file or rolling directory) in ``directory``; hidden
    files beside it (the cache manager's decision log) are not event logs."""
    logs = [
        p
        for p in Path(directory).iterdir()
        if not p.name.endswith(".inprogress") and not p.name.startswith(".")
    ]
    if len(logs) != 1:
        raise InputError(f"expected one finished Spark event log in {directory}, found {logs}")
    return logs[0]


def replay_block_updates(path: str | Path) -> CacheTrace:
    """Replay the RDD block updates of the log at ``path`` into a :class:`CacheTrace`."""
    events, _ = read_event_log(path)
    memory: dict[tuple[str, str], int] = {}
    disk: dict[tuple[str, str], int] = {}
    total = peak = written = exits = updates = 0
    # top-level BlockEvents are the SparkListenerBlockUpdated ones (a task's updated blocks
    # arrive inside its TaskRun and repeat them)
    for event in events:
        if not isinstance(event, BlockEvent) or event.rdd_id is None:
            continue
        updates += 1
        key = (event.executor_id, event.block_id)
        mem, dsk = event.memory_held, event.disk_held
        before = memory.get(key, 0)
        if before > 0 and mem == 0:
            exits += 1
        total += mem - before
        memory[key] = mem
        peak = max(peak, total)
        if dsk > 0 and disk.get(key, 0) == 0:
            written += dsk
        disk[key] = dsk
    return CacheTrace(peak, written, exits, updates)
