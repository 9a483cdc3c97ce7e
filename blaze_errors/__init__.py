"""The project's error base classes: the bottom layer every package may import.

Every failure caused by bad input (a conf, a file, the Java install) is raised as a
:class:`BlazeError` subclass whose message names the problem in one line. The command line
prints that line and exits non-zero instead of showing a traceback.
"""

from __future__ import annotations

__all__ = ["BlazeError", "ConfigError", "InputError", "JavaError", "MachineError"]


class BlazeError(Exception):
    """Base class: a problem the user can fix, described in one line."""


class ConfigError(BlazeError, ValueError):
    """An invalid or unknown ``spark.blaze.*`` setting."""


class JavaError(BlazeError, RuntimeError):
    """Java is missing or older than Spark needs."""


class InputError(BlazeError, ValueError):
    """A missing, unreadable or malformed input file or record."""


class MachineError(BlazeError, RuntimeError):
    """This machine cannot do what was asked (no cgroup v1, not root, no block device, ...)."""
