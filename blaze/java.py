"""Check the Java runtime before Spark tries to start it.

PySpark reports a missing or old Java as a long gateway traceback ("Java gateway process
exited before sending its port number"); checking first lets us say what is wrong in one line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from blaze_errors import JavaError

__all__ = ["MIN_JAVA", "check_java", "find_java", "java_major_version"]

MIN_JAVA = 17


def find_java() -> str:
    """Return the java executable Spark will use (``JAVA_HOME`` first, then ``PATH``)."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if candidate.exists():
            return str(candidate)
        raise JavaError(
            f"JAVA_HOME={java_home} has no bin/java; set JAVA_HOME to a Java {MIN_JAVA}+ install"
        )
    found = shutil.which("java")
    if not found:
        raise JavaError(f"Java not found: install Java {MIN_JAVA} or newer, or set JAVA_HOME")
    return found


def parse_java_version(text: str) -> int:
    """Major version from ``java -version`` output ("1.8.0_392" -> 8, "17.0.15" -> 17)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if not match:
        raise JavaError(f"cannot read the Java version from: {text.strip()[:120]!r}")
    major = int(match.group(1))
    if major == 1 and match.group(2):
        major = int(match.group(2))
    return major


def java_major_version(java: str) -> int:
    """Run ``java -version`` and return its major version."""
    try:
        proc = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except OSError as exc:
        raise JavaError(f"cannot run {java}: {exc.strerror}") from None
    return parse_java_version(proc.stderr + proc.stdout)


def check_java(minimum: int = MIN_JAVA) -> int:
    """Raise :class:`JavaError` unless a Java of at least ``minimum`` is available."""
    java = find_java()
    major = java_major_version(java)
    if major < minimum:
        raise JavaError(f"Java {major} found at {java}; Spark 4 needs Java {minimum} or newer")
    return major
