"""The spool: how agents ship Arrow batches to Spark over the local file system.

Layout: ``ROOT/agentNNN/SEQ/`` holds one *entry* per agent interval: ``stageK.arrow`` (Arrow
IPC file, one per non-empty stage) and ``meta.json`` (input record range, counts, times).

Why files and not a socket: an entry is written to ``agentNNN/.tmp-SEQ`` and renamed into
place, and a directory rename is atomic, so Spark never sees half an entry and a killed agent
leaves only a temporary directory that its restart deletes. Each entry records the input
range ``[first_record, last_record)`` it covers, so a restarted agent resumes exactly after
the last complete entry: nothing is shipped twice, nothing is lost. Spark's offsets are
``{agent: last sequence number}``, which its checkpoint stores, so Spark never reads an entry
twice either. Arrow IPC costs the agent a memory copy (no encoding), which matters because
serialisation is charged to the agent's CPU budget; Spark's Python data source reader
(:mod:`streaming.jarvis.source`) memory-maps the files and hands Arrow batches straight to
the JVM without building Python rows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc

from blaze_errors import InputError

__all__ = [
    "EntryMeta",
    "agent_dir",
    "list_agents",
    "list_entries",
    "read_entry_tables",
    "resume_point",
    "write_entry",
]

_AGENT_RE = re.compile(r"^agent(\d{3,})$")
_ENTRY_RE = re.compile(r"^(\d{10})$")


@dataclass(frozen=True)
class EntryMeta:
    """What ``meta.json`` of one entry says."""

    agent: int
    seq: int
    first_record: int
    last_record: int
    rows_by_stage: dict[str, int]
    bytes: int
    created_s: float  # wall clock (time.time) when the entry became visible
    malformed_skipped: int = 0


def agent_dir(root: str | Path, agent: int) -> Path:
    return Path(root) / f"agent{agent:03d}"


def write_entry(
    root: str | Path,
    agent: int,
    seq: int,
    first_record: int,
    last_record: int,
    tables: Mapping[int, pa.Table],
    malformed_skipped: int = 0,
) -> EntryMeta:
    """Write one entry atomically; returns its metadata (``bytes`` = what crossed to Spark)."""
    if seq < 0 or first_record < 0 or last_record < first_record:
        raise ValueError(f"bad entry range seq={seq} [{first_record}, {last_record})")
    base = agent_dir(root, agent)
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".tmp-{seq:010d}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    total = 0
    rows: dict[str, int] = {}
    for stage, table in sorted(tables.items()):
        if table.num_rows == 0:
            continue
        path = tmp / f"stage{stage}.arrow"
        with pa.OSFile(str(path), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        total += path.stat().st_size
        rows[str(stage)] = table.num_rows
    meta = EntryMeta(
        agent, seq, first_record, last_record, rows, total, time.time(), malformed_skipped
    )
    (tmp / "meta.json").write_text(json.dumps(asdict(meta)))
    os.rename(tmp, base / f"{seq:010d}")
    return meta


def list_agents(root: str | Path) -> list[int]:
    root = Path(root)
    if not root.is_dir():
        return []
    found = (_AGENT_RE.match(p.name) for p in root.iterdir())
    return sorted(int(m.group(1)) for m in found if m)


def list_entries(root: str | Path, agent: int) -> list[int]:
    """Complete entries of one agent, ascending (temporary directories are not entries)."""
    base = agent_dir(root, agent)
    if not base.is_dir():
        return []
    found = (_ENTRY_RE.match(p.name) for p in base.iterdir())
    return sorted(int(m.group(1)) for m in found if m)


def read_meta(root: str | Path, agent: int, seq: int) -> EntryMeta:
    path = agent_dir(root, agent) / f"{seq:010d}" / "meta.json"
    try:
        return EntryMeta(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(f"spool entry {path.parent} has an unreadable meta.json: {exc}") from None


def resume_point(root: str | Path, agent: int) -> tuple[int, int]:
    """``(next_seq, next_record)`` for a (re)starting agent; deletes leftover temp dirs."""
    base = agent_dir(root, agent)
    if base.is_dir():
        for leftover in base.glob(".tmp-*"):
            shutil.rmtree(leftover, ignore_errors=True)
    entries = list_entries(root, agent)
    if not entries:
        return 0, 0
    meta = read_meta(root, agent, entries[-1])
    return meta.seq + 1, meta.last_record


def read_entry_tables(root: str | Path, agent: int, seq: int) -> dict[int, pa.Table]:
    """The stage tables of one entry (memory-mapped, no copy)."""
    base = agent_dir(root, agent) / f"{seq:010d}"
    tables: dict[int, pa.Table] = {}
    for path in sorted(base.glob("stage*.arrow")):
        try:
            stage = int(path.stem[len("stage") :])
            with pa.memory_map(str(path), "r") as source:
                tables[stage] = ipc.open_file(source).read_all()
        except (ValueError, OSError, pa.ArrowInvalid) as exc:
            raise InputError(f"spool file {path} is not a readable Arrow IPC file: {exc}") from None
    return tables
