"""The one-way flow Spark -> lineage -> costmodel -> blaze holds in every module's imports.

Every ``.py`` file of the project is parsed with :mod:`ast`; every import counts, including
those inside functions and ``importlib.import_module("literal")`` calls, so a lazy import
cannot hide a forbidden direction. A second check keeps py4j chains into Spark's internals
(``_jvm``, ``_jsc``, ``_jdf``, ``_jrdd``) in the two adapter modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "blaze_errors",
    "blaze_jvm",
    "lineage",
    "costmodel",
    "blaze",
    "streaming",
    "jobs",
    "blaze_cli",
    "benchmarks",
    "tests",
)

# importer package -> top-level packages it must not import. blaze_cli sits above everything
# (it assembles the command), so only tests import it; nothing imports benchmarks.
FORBIDDEN: dict[str, frozenset[str]] = {
    "blaze_errors": frozenset(PACKAGES) - {"blaze_errors"},
    # the JVM module's build and conf helpers: beside blaze_errors, so blaze and streaming
    # (which must not import blaze) can both use them; py4j stays in blaze/_jvm.py
    "blaze_jvm": frozenset(PACKAGES) - {"blaze_errors", "blaze_jvm"},
    "lineage": frozenset({"costmodel", "blaze", "jobs", "streaming", "blaze_cli", "benchmarks"}),
    "costmodel": frozenset({"blaze", "jobs", "streaming", "blaze_cli", "benchmarks"}),
    "streaming": frozenset({"blaze", "costmodel", "jobs", "blaze_cli", "benchmarks"}),
    "blaze": frozenset({"jobs", "streaming", "blaze_cli", "benchmarks"}),
    "jobs": frozenset({"blaze_cli", "benchmarks"}),
    "blaze_cli": frozenset({"benchmarks"}),
    "benchmarks": frozenset({"blaze_cli"}),
    "tests": frozenset({"benchmarks"}),
}

JVM_ATTRIBUTES = frozenset({"_jvm", "_jsc", "_jdf", "_jrdd"})
# adapter -> why it may hold py4j chains
JVM_ADAPTER_REASONS = {
    "blaze/_jvm.py": "the manager's calls into Spark's block manager",
    "blaze/_plugin_jvm.py": "the manager's calls into blaze-spark's own JVM plugin classes",
    "lineage/listener.py": "the JVM listener bridge",
    # streaming must not import blaze (so not blaze/_jvm.py): AOMG's SQL functions are
    # registered on the session and their JVM errors read here
    "streaming/aomg/_jvm.py": "AOMG's SQL functions: register on a session, read AomgException",
}
JVM_ADAPTERS = frozenset(JVM_ADAPTER_REASONS)
# Files that still reach into the JVM directly while the engine work moves their calls into
# blaze/_jvm.py. This list must only shrink, to empty; a new file here is a regression.
JVM_OFFENDERS_TO_MOVE = frozenset({"benchmarks/listener_overhead.py"})


def _modules() -> list[Path]:
    files = []
    for package in PACKAGES:
        files.extend(sorted((ROOT / package).rglob("*.py")))
    return files


def _imported(tree: ast.AST, package: str) -> set[str]:
    """Top-level package names ``tree`` imports (relative imports stay in ``package``)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(package if node.level else (node.module or "").split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value.split(".")[0])
    return names


def layering_violations(source: str, package: str, where: str = "<source>") -> list[str]:
    """Each forbidden import in ``source``, a module of ``package``, as one line."""
    tree = ast.parse(source, filename=where)
    bad = sorted(_imported(tree, package) & FORBIDDEN[package])
    return [f"{where}: {package} imports {name}" for name in bad]


def jvm_chains(source: str, where: str = "<source>") -> list[str]:
    """Each attribute access to a py4j handle (``x._jsc``...) in ``source``, as one line."""
    tree = ast.parse(source, filename=where)
    return [
        f"{where}:{node.lineno}: .{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in JVM_ATTRIBUTES
    ]


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_every_package_is_scanned():
    scanned = {_relative(p).split("/")[0] for p in _modules()}
    assert scanned == set(PACKAGES)


def test_no_module_imports_against_the_flow():
    problems = []
    for path in _modules():
        relative = _relative(path)
        problems += layering_violations(path.read_text(), relative.split("/")[0], relative)
    assert problems == []


def test_py4j_chains_stay_in_the_adapters():
    offenders: dict[str, list[str]] = {}
    for path in _modules():
        relative = _relative(path)
        if relative.startswith("tests/") or relative in JVM_ADAPTERS:
            continue
        found = jvm_chains(path.read_text(), relative)
        if found:
            offenders[relative] = found
    new = {k: v for k, v in offenders.items() if k not in JVM_OFFENDERS_TO_MOVE}
    assert new == {}, "py4j chains belong in blaze/_jvm.py"
    # an allowlisted file that no longer offends must leave the list
    assert set(offenders) == JVM_OFFENDERS_TO_MOVE


@pytest.mark.parametrize(
    ("package", "source", "expected"),
    [
        ("lineage", "import costmodel.cost\n", "lineage imports costmodel"),
        ("lineage", "def f():\n    from blaze import errors\n", "lineage imports blaze"),
        ("costmodel", "from jobs.caching import Cacher\n", "costmodel imports jobs"),
        ("streaming", "def f():\n    import blaze\n", "streaming imports blaze"),
        ("streaming", "from costmodel.policy_table import POLICY_TABLE\n", "imports costmodel"),
        ("blaze", "import importlib\nimportlib.import_module('jobs.cli')\n", "blaze imports jobs"),
        ("blaze", "from streaming.cli import register\n", "blaze imports streaming"),
        ("jobs", "import benchmarks.bench_jobs\n", "jobs imports benchmarks"),
        ("tests", "from benchmarks import aomg_bench\n", "tests imports benchmarks"),
        ("blaze_errors", "import lineage\n", "blaze_errors imports lineage"),
        ("blaze_jvm", "from blaze.plugin import with_blaze_plugin\n", "blaze_jvm imports blaze"),
    ],
)
def test_a_forbidden_import_is_reported(package, source, expected):
    problems = layering_violations(source, package)
    assert len(problems) == 1 and expected in problems[0]


@pytest.mark.parametrize(
    ("package", "source"),
    [
        ("blaze", "from costmodel.policy_table import POLICY_TABLE\nimport lineage.dag\n"),
        ("jobs", "import blaze\nfrom streaming.common import telemetry\n"),
        ("costmodel", "from lineage.dag import LineageDag\nfrom blaze_errors import InputError\n"),
        ("lineage", "from . import events\nfrom blaze_errors import InputError\n"),
        ("streaming", "from blaze_jvm import jar_path\n"),
        ("blaze_jvm", "from blaze_errors import JavaError\nfrom . import build\n"),
    ],
)
def test_an_allowed_import_is_not_reported(package, source):
    assert layering_violations(source, package) == []


def test_a_py4j_chain_is_reported():
    source = "def f(spark):\n    return spark.sparkContext._jsc.sc()\n"
    assert jvm_chains(source, "blaze/x.py") == ["blaze/x.py:2: ._jsc"]
    assert jvm_chains("def f(df):\n    return df.rdd.id()\n") == []
