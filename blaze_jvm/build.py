"""Compile the Java sources shipped in this package into one jar, once per source/Spark pair.

Why build on the user's machine: the jar must match the Spark that runs it, and the PySpark
wheel carries every Spark jar, so ``javac -cp "<pyspark>/jars/*"`` compiles against exactly
that Spark with no Maven and no network. The result is cached under
``${BLAZE_SPARK_CACHE:-~/.cache/blaze-spark}/jvm/<key>/blaze-spark-jvm.jar``, where the key is
the SHA-256 of the sources, the PySpark version and the build format: a cached jar is reused
without running javac, and a changed source or another Spark gets a new directory.

Several processes may build at once (test workers, a driver and a CLI): the first takes an
exclusive ``fcntl`` lock on the key's directory and the others wait for it and then find the
jar; the jar is written to a temporary name and renamed into place, so a reader never sees a
partial file.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from blaze_errors import JavaError

__all__ = [
    "JAR_NAME",
    "SOURCE_ROOT",
    "build_jar",
    "cache_root",
    "find_javac",
    "jar_path",
    "source_key",
    "spark_jars_dir",
]

SOURCE_ROOT = Path(__file__).resolve().parent / "java"
JAR_NAME = "blaze-spark-jvm.jar"
JAVA_RELEASE = "17"
# bump when the way the jar is built changes, so old cached jars are not reused
BUILD_FORMAT = "1"
INSTALL_JDK = (
    "install a JDK 17 (e.g. `apt-get install openjdk-17-jdk-headless`) or set JAVA_HOME to one"
)


def cache_root() -> Path:
    """Where built jars live: ``$BLAZE_SPARK_CACHE/jvm`` (default ``~/.cache/blaze-spark``)."""
    base = os.environ.get("BLAZE_SPARK_CACHE") or Path.home() / ".cache" / "blaze-spark"
    return Path(base) / "jvm"


def find_javac() -> str:
    """The ``javac`` to compile with: ``$JAVA_HOME/bin/javac``, else the first on ``PATH``."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "javac").is_file():
        return str(Path(java_home) / "bin" / "javac")
    found = shutil.which("javac")
    if found:
        return found
    where = f"in JAVA_HOME={java_home} nor on PATH" if java_home else "on PATH"
    raise JavaError(f"javac not found {where}: blaze-spark compiles its JVM module; {INSTALL_JDK}")


def spark_jars_dir() -> Path:
    """The installed PySpark's ``jars`` directory (every Spark jar, the compile classpath)."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        raise JavaError("pyspark is not installed: blaze-spark's JVM module compiles against it")
    return Path(next(iter(spec.submodule_search_locations))) / "jars"


def _sources(source_root: Path) -> list[Path]:
    return sorted(source_root.rglob("*.java"))


def source_key(source_root: Path, spark_version: str) -> str:
    """SHA-256 of every source (path and bytes), the Spark version and the build format."""
    digest = hashlib.sha256(f"format={BUILD_FORMAT};spark={spark_version}\n".encode())
    for path in _sources(source_root):
        digest.update(path.relative_to(source_root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def jar_path() -> Path:
    """The jar of this package's Java sources for the installed PySpark (built on first use)."""
    return build_jar(
        SOURCE_ROOT,
        classpath_dir=spark_jars_dir(),
        spark_version=importlib.metadata.version("pyspark"),
        cache_dir=cache_root(),
    )


def build_jar(
    source_root: Path, *, classpath_dir: Path, spark_version: str, cache_dir: Path
) -> Path:
    """Return ``cache_dir/<key>/blaze-spark-jvm.jar`` for ``source_root``, compiling it if absent.

    Raises :class:`JavaError` (one line) when javac is missing or the sources do not compile.
    """
    target_dir = cache_dir / source_key(source_root, spark_version)
    jar = target_dir / JAR_NAME
    if jar.is_file():  # renamed into place whole, so existing means complete
        return jar
    target_dir.mkdir(parents=True, exist_ok=True)
    with open(target_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if jar.is_file():  # another process built it while we waited
            return jar
        javac = find_javac()
        with tempfile.TemporaryDirectory(dir=target_dir, prefix=".build-") as scratch:
            classes = Path(scratch) / "classes"
            _compile(javac, _sources(source_root), classpath_dir, classes)
            partial = Path(scratch) / JAR_NAME
            _pack(classes, partial)
            os.replace(partial, jar)
    return jar


def _compile(javac: str, sources: list[Path], classpath_dir: Path, out: Path) -> None:
    if not sources:
        raise JavaError("blaze-spark's JVM module has no .java sources (broken install?)")
    command = [
        javac,
        "--release",
        JAVA_RELEASE,
        "-nowarn",
        "-encoding",
        "UTF-8",
        "-d",
        str(out),
        "-cp",
        str(classpath_dir / "*"),
        *map(str, sources),
    ]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except OSError as exc:
        raise JavaError(f"cannot run {javac}: {exc.strerror}; {INSTALL_JDK}") from None
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        first = lines[0] if lines else f"exit code {proc.returncode}"
        raise JavaError(f"javac failed on blaze-spark's JVM module: {first}")


def _pack(classes: Path, jar: Path) -> None:
    """Write ``classes`` into ``jar`` (a zip whose first entry is the manifest)."""
    with zipfile.ZipFile(jar, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nCreated-By: blaze-spark\r\n\r\n"
        )
        for path in sorted(classes.rglob("*.class")):
            archive.write(path, path.relative_to(classes).as_posix())
