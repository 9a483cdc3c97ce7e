"""The manager's own failures, counted: no bookkeeping error may fail the user's program.

Why a part of its own: every other part of the manager catches what it cannot handle and
hands it here, and the report shows the counts and the last message; one object passed to
each part instead of a dict every part writes into.
"""

from __future__ import annotations

import logging
from collections import defaultdict

__all__ = ["ErrorCounter"]

log = logging.getLogger("blaze")


class ErrorCounter:
    """Errors by where they happened, and the last one's message."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = defaultdict(int)
        self.last: str | None = None

    def count(self, where: str, exc: BaseException) -> None:
        self.counts[where] += 1
        self.last = f"{where}: {type(exc).__name__}: {exc}"
        log.debug("blaze manager error in %s", where, exc_info=exc)
