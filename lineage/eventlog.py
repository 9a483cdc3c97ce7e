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

A log that lost its end must never read as a shorter run, so the reader also records in
``EventLogStats.lost`` every sign that events are missing: a zstd stream that stops inside a
frame (or fails to decode) — which a plain zstd reader reports as a clean end —, a rolling
log with a gap in its part numbers, and a finished log (not ``.inprogress``) without Spark's
``SparkListenerApplicationEnd``, with the number of jobs that started but never ended.
"""

from __future__ import annotations

import codecs
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
    in_progress: bool = False  # Spark was still writing it (a short log is expected)
    lost: list[str] = field(default_factory=list)  # why events are known to be missing
    jobs_started: int = 0
    jobs_ended: int = 0
    ended: bool = False  # the log holds SparkListenerApplicationEnd

    @property
    def truncated(self) -> bool:
        return bool(self.lost)

    def loss_summary(self) -> str:
        """One line saying what is missing (empty when nothing is)."""
        return "; ".join(self.lost)


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


_CHUNK = 1 << 16


class _PartReader:
    """Decoded text lines of one part, noting a compressed stream that ends early."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problem: str | None = None  # set when the stream is cut or corrupt

    def _open(self):
        suffixes = [s for s in self.path.suffixes if s != ".inprogress"]
        codec = _UNSUPPORTED_CODECS.get(suffixes[-1] if suffixes else "")
        if codec:
            raise InputError(
                f"{self.path} is compressed with {codec}, which only Spark can read; "
                "rerun with spark.eventLog.compression.codec=zstd or spark.eventLog.compress=false"
            )
        try:
            return self.path.open("rb")
        except OSError as exc:
            raise InputError(f"cannot read event log {self.path}: {exc.strerror}") from None

    def _chunks(self, raw) -> Iterator[bytes]:
        first = raw.read(_CHUNK)
        if first[:4] != _ZSTD_MAGIC:
            while first:
                yield first
                first = raw.read(_CHUNK)
            return
        yield from self._zstd_chunks(first, raw)

    def _zstd_chunks(self, pending: bytes, raw) -> Iterator[bytes]:
        """Frame by frame (Spark flushes its stream in several frames), so that a stream cut
        inside a frame is seen: ``stream_reader`` would report that as a clean end."""
        import zstandard

        context = zstandard.ZstdDecompressor()
        frame = context.decompressobj()
        fed = 0  # compressed bytes fed to the current, unfinished frame
        while pending:
            try:
                out = frame.decompress(pending)
            except zstandard.ZstdError as exc:
                self.problem = f"{self.path.name}: compressed stream is corrupt ({exc})"
                return
            if out:
                yield out
            if frame.eof:
                pending = frame.unused_data
                frame, fed = context.decompressobj(), 0
                if pending:
                    continue
            else:
                fed += len(pending)
            pending = raw.read(_CHUNK)
        if fed:
            self.problem = (
                f"{self.path.name}: compressed stream is cut off inside a zstd frame "
                f"({fed} compressed bytes of an unfinished frame at the end)"
            )

    def lines(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        rest = ""
        with self._open() as raw:
            for chunk in self._chunks(raw):
                text = rest + decoder.decode(chunk)
                *complete, rest = text.split("\n")
                yield from complete
            rest += decoder.decode(b"", final=True)
        if rest:
            yield rest


def _lines(files: list[Path], stats: EventLogStats) -> Iterator[tuple[Path, int, str]]:
    for part in files:
        reader = _PartReader(part)
        for number, line in enumerate(reader.lines(), start=1):
            yield part, number, line
        if reader.problem:
            stats.lost.append(reader.problem)


def _part_gaps(files: list[Path]) -> str | None:
    numbers = [int(m.group(1)) for p in files if (m := _PART.match(p.name))]
    if len(numbers) < 1 or len(numbers) != len(files):
        return None
    expected = set(range(numbers[0] if numbers[0] <= 1 else 1, numbers[-1] + 1))
    missing = sorted(expected - set(numbers))
    if not missing:
        return None
    shown = ", ".join(str(n) for n in missing[:5]) + (", ..." if len(missing) > 5 else "")
    return f"rolling log parts missing: {shown} ({len(missing)} of {numbers[-1]} parts)"


def _in_progress(path: Path, files: list[Path]) -> bool:
    if path.is_dir():
        return any(
            p.name.startswith("appstatus_") and p.suffix == ".inprogress" for p in path.iterdir()
        )
    return path.name.endswith(".inprogress")


def read_event_log(path: str | Path) -> tuple[list[LineageEvent], EventLogStats]:
    """All lineage records of the log at ``path``, in log order, plus reading statistics."""
    try:
        return _read(path)
    except OSError as exc:  # unreadable directory or file, vanished part, ...
        raise InputError(f"cannot read event log {path}: {exc.strerror or exc}") from None


def _read(path: str | Path) -> tuple[list[LineageEvent], EventLogStats]:
    files = event_log_files(path)
    stats = EventLogStats(path=str(path), in_progress=_in_progress(Path(path), files))
    gap = _part_gaps(files) if Path(path).is_dir() else None
    if gap:
        stats.lost.append(gap)
    records: list[LineageEvent] = []
    seen_event = False
    for part, number, line in _lines(files, stats):
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
        kind = event["Event"]
        if kind == "SparkListenerJobStart":
            stats.jobs_started += 1
        elif kind == "SparkListenerJobEnd":
            stats.jobs_ended += 1
        elif kind == "SparkListenerApplicationEnd":
            stats.ended = True
        records.extend(parsed)
        stats.records += len(parsed)
    if not seen_event:
        if stats.lost:
            raise InputError(f"{path} holds no readable events: {stats.loss_summary()}")
        raise InputError(f"{path} is not a Spark event log: it holds no events")
    if not stats.ended and not stats.in_progress:
        open_jobs = stats.jobs_started - stats.jobs_ended
        stats.lost.append(
            "the log ends before the application did (no SparkListenerApplicationEnd; "
            f"{stats.jobs_started} job(s) seen, {open_jobs} of them without an end): "
            "later jobs may be missing"
        )
    return records, stats


def _skip(stats: EventLogStats, reason: str) -> None:
    stats.skipped += 1
    if stats.first_skip is None:
        stats.first_skip = reason
    if len(stats.skip_reasons) < 20:
        stats.skip_reasons.append(reason)
