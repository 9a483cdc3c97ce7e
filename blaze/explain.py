"""The decision log: every choice the manager makes, with the inputs it made it from.

Why: a user who sees a partition recomputed (or a dataset unpersisted) must be able to ask
why, and the answer must be the numbers the policy actually saw — F, R, W, Rd, the costs, the
size, the rule that fired and the victims it chose — not a re-derivation after the fact.

The log is a ring buffer (``spark.blaze.explain.capacity`` entries; the oldest fall off) of
each decision's JSON text — about 400 bytes, where the dict it is made from takes three
times that — so a long run's driver memory stays bounded and small; reading parses. At
detach it is written as JSON lines — a header line naming the format, then one decision per
line — to ``spark.blaze.explain.path`` or next to Spark's event log; ``blaze explain FILE``
reads it back (:func:`read_decision_log`).

Actions: ``admit`` (to memory), ``promote`` (back from disk), ``keep_on_disk`` (promotion
refused: the memory copy goes, the disk copy stays), ``spill``, ``drop``, ``auto_cache``,
``auto_unpersist``, ``propagate`` (a relative's cost changed because of an eviction),
``prefetch`` (MRD read a spilled partition back), ``allow`` (Blaze let a partition it had
spilled for good back into memory at its next read), ``decline_persist`` (a program's or
autoCache's persist call not carried out: persisting the dataset costs more than its later
reads save, so PySpark fuses it into its readers), ``keep_persist`` (the same weighing, which
found that persisting pays), ``place_on_disk`` and ``place_in_memory_only`` (the level a
dataset's partitions are put at, :mod:`blaze.placement`). A partition persisted in memory only
has ``W`` and ``disk_cost`` null: it cannot be written.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

from blaze_errors import InputError

__all__ = ["FORMAT", "VERSION", "DecisionLog", "read_decision_log", "write_decision_log"]

FORMAT = "blaze-decision-log"
VERSION = 1


class DecisionLog:
    """A bounded, append-only record of decisions (not thread-safe: the manager's lock)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(int(capacity), 1)
        self._entries: deque[str] = deque(maxlen=self.capacity)
        self.recorded = 0  # since attach, including those that fell off

    def record(self, action: str, **fields) -> None:
        self.recorded += 1
        entry = {"seq": self.recorded, "t": round(time.time(), 3), "action": action, **fields}
        self._entries.append(json.dumps(entry, sort_keys=True))

    def __iter__(self) -> Iterator[dict]:
        return (json.loads(text) for text in list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def for_rdd(self, rdd_id: int) -> list[dict]:
        return [e for e in self if e.get("rdd") == rdd_id]

    @property
    def dropped(self) -> int:
        return self.recorded - len(self._entries)


def write_decision_log(path: str | Path, header: dict, entries: Iterable[dict]) -> Path:
    """Write the log as JSON lines (header first), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        out.write(json.dumps({"format": FORMAT, "version": VERSION, **header}) + "\n")
        for entry in entries:
            out.write(json.dumps(entry, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def decision_log_path_for(event_log: str | Path) -> Path:
    """Where the manager puts its decision log for an event log: beside it, hidden (a dot
    file), so Spark's history server and tools that list the event log directory skip it."""
    path = Path(event_log)
    return path.with_name(f".{path.name}.blaze-decisions.jsonl")


def read_decision_log(path: str | Path) -> tuple[dict, list[dict]]:
    """``(header, entries)`` of a decision log, or of the one written next to an event log.

    Raises :class:`InputError` (one line) for anything that is not a decision log.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {path}")
    candidate = path
    if not _is_decision_log(candidate):
        sibling = decision_log_path_for(path)
        if not sibling.is_file() or not _is_decision_log(sibling):
            raise InputError(
                f"{path} is not a Blaze decision log (and no {sibling.name} lies next to it); "
                "set spark.blaze.explain.path or enable Spark's event log to write one"
            )
        candidate = sibling
    lines = candidate.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    entries = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            raise InputError(f"{candidate}:{number}: not a JSON decision record") from None
    return header, entries


def _is_decision_log(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        with path.open("r", encoding="utf-8") as handle:
            first = handle.readline(1 << 16)
        header = json.loads(first)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        return False
    if header.get("version") != VERSION:
        raise InputError(
            f"{path} is a decision log of format version {header.get('version')!r}; "
            f"this Blaze reads version {VERSION}"
        )
    return True
