"""Two-level hierarchical windows: windows (tumbling or sliding) made of whole sub-windows.

All times are integer microseconds since the epoch, and every boundary is aligned to the
epoch (as Spark's ``window()`` does), so a sub-window belongs to the same windows wherever
it is computed — in a streaming task, a batch task or a test. A sub-window is summarised
once; each window that contains it merges its summary (see :mod:`streaming.aomg.summary`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

__all__ = ["WindowSpec", "parse_duration_us"]

_UNITS_US = {
    "us": 1,
    "microsecond": 1,
    "ms": 1_000,
    "millisecond": 1_000,
    "s": 1_000_000,
    "sec": 1_000_000,
    "second": 1_000_000,
    "m": 60_000_000,
    "min": 60_000_000,
    "minute": 60_000_000,
    "h": 3_600_000_000,
    "hour": 3_600_000_000,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$")


def parse_duration_us(value: object, name: str = "duration") -> int:
    """Whole microseconds from a ``timedelta``, a number of seconds, or ``"10 seconds"``."""
    if isinstance(value, timedelta):
        micros = value / timedelta(microseconds=1)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        micros = float(value) * 1e6
    elif isinstance(value, str):
        match = _DURATION.match(value.lower())
        word = match.group(2) if match else ""
        unit = _UNITS_US.get(word) or (word.endswith("s") and _UNITS_US.get(word[:-1]))
        if not match or not unit:
            raise ValueError(f"{name}={value!r} is not a duration like '10 seconds' or '500 ms'")
        micros = float(match.group(1)) * unit
    else:
        raise TypeError(
            f"{name} must be a timedelta, seconds or a string, not {type(value).__name__}"
        )
    if not micros > 0 or micros != round(micros):
        raise ValueError(f"{name}={value!r} must be a positive whole number of microseconds")
    return round(micros)


@dataclass(frozen=True)
class WindowSpec:
    """Windows of ``window_us`` every ``slide_us``, built from sub-windows of ``sub_window_us``.

    Requirements (checked): the sub-window divides both the window and the slide, the slide
    is at most the window (no record falls between windows), and all three are whole
    milliseconds (Spark's event-time timers have millisecond resolution).
    """

    window_us: int
    sub_window_us: int
    slide_us: int

    @classmethod
    def of(cls, window: object, sub_window: object, slide: object | None = None) -> WindowSpec:
        window_us = parse_duration_us(window, "window")
        sub_us = parse_duration_us(sub_window, "sub_window")
        slide_us = window_us if slide is None else parse_duration_us(slide, "slide")
        return cls(window_us, sub_us, slide_us)

    def __post_init__(self) -> None:
        for name in ("window_us", "sub_window_us", "slide_us"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0 or value % 1_000:
                raise ValueError(
                    f"{name}={value!r} must be a positive whole number of milliseconds"
                )
        if self.window_us % self.sub_window_us:
            raise ValueError(
                f"sub-window ({self.sub_window_us} us) does not divide the window "
                f"({self.window_us} us): a window must be made of whole sub-windows"
            )
        if self.slide_us % self.sub_window_us:
            raise ValueError(
                f"sub-window ({self.sub_window_us} us) does not divide the slide ({self.slide_us} us)"
            )
        if self.slide_us > self.window_us:
            raise ValueError(
                f"slide ({self.slide_us} us) is longer than the window ({self.window_us} us): "
                "records between windows would be lost"
            )

    def sub_window_start(self, t_us: np.ndarray) -> np.ndarray:
        """Start of the sub-window holding each time (floor division handles pre-1970)."""
        t = np.asarray(t_us, dtype=np.int64)
        return t - np.mod(t, self.sub_window_us)

    def window_ends(self, sub_start: int) -> list[int]:
        """Ends of every window containing the sub-window starting at ``sub_start``."""
        first = sub_start - sub_start % self.slide_us + self.slide_us
        return list(range(first, sub_start + self.window_us + 1, self.slide_us))

    def contains(self, window_end: int, sub_start: int) -> bool:
        """Whether the window ending at ``window_end`` contains that sub-window."""
        return window_end - self.window_us <= sub_start < window_end
