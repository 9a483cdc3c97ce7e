"""Cache metrics read back from a finished application's Spark event log.

With ``spark.eventLog.logBlockUpdates.enabled=true`` Spark logs every change of every block
(``SparkListenerBlockUpdated``). Replaying the ``rdd_*`` ones gives, identically for every
policy and without touching the JVM: the peak bytes cached in memory (the job's footprint),
the bytes written to disk by caching, and how often a block left memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from blaze_errors import InputError

__all__ = ["CacheTrace", "find_event_log", "replay_block_updates"]


@dataclass(frozen=True)
class CacheTrace:
    peak_memory_bytes: int
    disk_bytes_written: int
    memory_exits: int  # a block dropped from memory or moved to disk
    block_updates: int


def find_event_log(directory: str | Path) -> Path:
    """The single finished event log in ``directory``."""
    logs = [
        p
        for p in Path(directory).iterdir()
        if not p.name.endswith(".inprogress") and not p.name.startswith(".")
    ]
    if len(logs) != 1:
        raise InputError(f"expected one finished Spark event log in {directory}, found {logs}")
    return logs[0]


def replay_block_updates(path: str | Path) -> CacheTrace:
    memory: dict[tuple[str, str], int] = {}
    disk: dict[tuple[str, str], int] = {}
    total = peak = written = exits = updates = 0
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if '"SparkListenerBlockUpdated"' not in line:
                continue
            info = json.loads(line)["Block Updated Info"]
            block = info["Block ID"]
            if not block.startswith("rdd_"):
                continue
            updates += 1
            key = (info["Block Manager ID"]["Executor ID"], block)
            mem, dsk = int(info["Memory Size"]), int(info["Disk Size"])
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
