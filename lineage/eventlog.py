"""Read Spark event logs (the files ``spark.eventLog.enabled=true`` writes) as records.

Spark 4 writes, by default, a *rolling* log: a directory ``eventlog_v2_<app id>`` holding
``events_<n>_<app id>[.zstd]`` parts, zstd-compressed. This reader accepts that directory,
one part, a single-file log (``spark.eventLog.rolling.enabled=false``), with or without
zstd compression, and in-progress logs. Spark's lz4/snappy/lzf streams use framings of their
own Java libraries that no Python package reads, so they get a clear error instead.

A path that does not exist, or whose first line is not a Spark event, raises
:class:`blaze.errors.InputError`. After a valid first line, a line that is not JSON or is a
known event missing needed fields (a log cut off mid-write, a corrupted line) is skipped and
counted in :class:`EventLogStats` — the caller decides whether to warn.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from blaze_errors import InputError
from lineage.events import LineageEvent
from lineage.parse import parse_event

__all__ = ["EventLogStats", "event_log_files", "read_event_log"]

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_UNSUPPORTED_CODECS = {".lz4": "lz4", ".snappy": "snappy", ".lzf": "lzf"}
_PART = re.compile(r"^events_(\d+)_")


@dataclass
class EventLogStats:
    """What reading one log found: lines read, events parsed, lines skipped (and why)."""

    path: str
    lines: int = 0
    records: int = 0
    skipped: int = 0
    first_skip: str | None = None  # the first skipped line's problem, for the warning
    skip_reasons: list[str] = field(default_factory=list, repr=False)


def event_log_files(path: str | Path) -> list[Path]:
    """The files of the log at ``path`` in order (the parts of a rolling log by number)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"event log not found: {path}")
    if path.is_file():
        return [path]
    parts = sorted(
        (p for p in path.iterdir() if p.is_file() and _PART.match(p.name)),
        key=lambda p: int(_PART.match(p.name).group(1)),
    )
    if not parts:
        raise InputError(
            f"{path} is a directory without events_* files, not a Spark event log "
            "(give the eventlog_v2_* directory or an event log file)"
        )
    return parts


def _open_text(path: Path) -> io.TextIOBase:
    suffixes = [s for s in path.suffixes if s != ".inprogress"]
    codec = _UNSUPPORTED_CODECS.get(suffixes[-1] if suffixes else "")
    if codec:
        raise InputError(
            f"{path} is compressed with {codec}, which only Spark can read; "
            "rerun with spark.eventLog.compression.codec=zstd or spark.eventLog.compress=false"
        )
    try:
        raw = path.open("rb")
        magic = raw.read(4)
        raw.seek(0)
    except OSError as exc:
        raise InputError(f"cannot read event log {path}: {exc.strerror}") from None
    if magic == _ZSTD_MAGIC:
        import zstandard

        # read_across_frames: Spark flushes the stream in several zstd frames
        stream = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        return io.TextIOWrapper(stream, encoding="utf-8", errors="replace")
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace")


def _lines(files: list[Path]) -> Iterator[tuple[Path, int, str]]:
    for part in files:
        with _open_text(part) as text:
            try:
                for number, line in enumerate(text, start=1):
                    yield part, number, line
            except Exception as exc:  # a truncated zstd frame at the end of an in-progress log
                import zstandard

                if not isinstance(exc, zstandard.ZstdError):
                    raise
                yield part, -1, ""


def read_event_log(path: str | Path) -> tuple[list[LineageEvent], EventLogStats]:
    """All lineage records of the log at ``path``, in log order, plus reading statistics."""
    try:
        return _read(path)
    except OSError as exc:  # unreadable directory or file, vanished part, ...
        raise InputError(f"cannot read event log {path}: {exc.strerror or exc}") from None


def _read(path: str | Path) -> tuple[list[LineageEvent], EventLogStats]:
    files = event_log_files(path)
    stats = EventLogStats(path=str(path))
    records: list[LineageEvent] = []
    seen_event = False
    for part, number, line in _lines(files):
        if number == -1:
            _skip(stats, f"{part.name}: compressed stream is truncated")
            continue
        line = line.strip()
        if not line:
            continue
        stats.lines += 1
        try:
            event = json.loads(line)
            if not isinstance(event, dict) or not isinstance(event.get("Event"), str):
                raise InputError("not a Spark event (a JSON object with an 'Event' field)")
            parsed = parse_event(event)
        except (ValueError, InputError) as exc:
            if not seen_event:
                raise InputError(
                    f"{path} is not a Spark event log: line {number} of {part.name} is "
                    "not a Spark event (a JSON object with an 'Event' field)"
                ) from None
            _skip(stats, f"{part.name}:{number}: {exc}")
            continue
        seen_event = True
        records.extend(parsed)
        stats.records += len(parsed)
    if not seen_event:
        raise InputError(f"{path} is not a Spark event log: it holds no events")
    return records, stats


def _skip(stats: EventLogStats, reason: str) -> None:
    stats.skipped += 1
    if stats.first_skip is None:
        stats.first_skip = reason
    if len(stats.skip_reasons) < 20:
        stats.skip_reasons.append(reason)
