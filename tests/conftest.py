"""Shared fixtures: one real local SparkSession for the whole run (never a mock).

Starting a JVM costs 10-20 s on this machine, so every Spark test shares one session; tests
that need a different SparkContext configuration (squeezed storage memory, several
executors, spark-submit) start their own process instead of mutating this one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)

TEST_SPARK_CONF = {
    "spark.master": "local[2]",
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.driver.memory": "2g",
    "spark.sql.streaming.stateStore.providerClass": (
        "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
    ),
    "spark.sql.streaming.forceDeleteTempCheckpointLocation": "true",
    "spark.python.worker.reuse": "true",
    # any spark.blaze.* key loads blaze-spark's JVM plugin, as in a user's session; the
    # manager itself stays off (tests attach it themselves)
    "spark.blaze.enabled": "false",
}


@pytest.fixture(scope="session")
def spark():
    """The session-wide local SparkSession (built through the project's own bootstrap)."""
    import blaze
    from streaming.aomg import with_aomg_jar

    # the jar is also on spark.jars through the plugin; AOMG's SQL functions need it
    # whatever the plugin settings, so it is named here too (appended once)
    session = blaze.session(with_aomg_jar(TEST_SPARK_CONF), app_name="blaze-spark-tests")
    yield session
    for query in session.streams.active:
        query.stop()
    session.stop()


@pytest.fixture(scope="session")
def sc(spark):
    return spark.sparkContext


@pytest.fixture
def stop_streams(spark):
    """Stop any streaming query a test leaves running, even when it fails."""
    yield
    for query in spark.streams.active:
        query.stop()


@pytest.fixture
def bridge(sc):
    """Typed access to the block manager of the shared session (blaze._jvm)."""
    from blaze._jvm import JvmBridge

    return JvmBridge(sc)


def attached_managers(spark, bridge, defaults=None):
    """Body of an ``attach`` fixture: yields ``attach(**options)``; detaches every manager it
    made and unpersists what the test cached. It starts from an empty cache: data other test
    modules left cached on the shared session would occupy the storage memory the tests
    budget and reason about."""
    import blaze

    managers = []
    spark.catalog.clearCache()
    for rdd_id in bridge.persistent_rdd_ids():
        bridge.unpersist_rdd(rdd_id, blocking=True)
    # blocks of RDDs no longer persisted (seen after the autoUnpersist tests; cause not yet
    # found, see the session notes) would fill the storage the budgets reason about
    for rdd_id in {b.rdd_id for s in bridge.storage_status() for b in s.blocks}:
        bridge.unpersist_rdd(rdd_id, blocking=True)
    before = bridge.persistent_rdd_ids()

    def _attach(**options):
        for key, value in (defaults or {}).items():
            options.setdefault(key, value)
        manager = blaze.attach(spark, **options)
        managers.append(manager)
        return manager

    yield _attach
    for manager in managers:
        manager.detach()
    spark.catalog.clearCache()
    for rdd_id in bridge.persistent_rdd_ids() - before:
        bridge.unpersist_rdd(rdd_id, blocking=True)


def start_script(folder, name: str, script: str, *args) -> subprocess.Popen:
    """Start ``script`` as its own Python program in ``folder`` — for a test that needs its
    own SparkContext (squeezed memory, a cluster, an event log that ends) — with its Python
    workers on this interpreter, which has the project installed; output kept as text."""
    path = folder / name
    path.write_text(script)
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    return subprocess.Popen(
        [sys.executable, str(path), *(str(arg) for arg in args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=folder,
    )


def finish_script(proc: subprocess.Popen, timeout_s: float) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of a started script; one that overruns ``timeout_s`` is
    killed, so no test leaves a Spark application behind."""
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out, err


def printed_json(finished: tuple[int, str, str], prefix: str = "RESULT ") -> dict:
    """The JSON a finished script printed after ``prefix``; fails with its stderr."""
    code, out, err = finished
    assert code == 0, err[-4000:]
    [line] = [x for x in out.splitlines() if x.startswith(prefix)]
    return json.loads(line[len(prefix) :])


def run_result_script(folder, name: str, script: str, timeout_s: float, *args) -> dict:
    """Run ``script`` (see :func:`start_script`) and return the JSON it printed after
    ``RESULT ``."""
    return printed_json(finish_script(start_script(folder, name, script, *args), timeout_s))


def squeezed_child(policy: str, body: str, *, more_conf: str = "") -> str:
    """A child application's script: a pool of 2.6 partitions of ~4 MB, the manager (and its
    JVM plugin) attached under ``policy`` by conf; ``body`` runs in it. Its arguments: the
    repository root, the event log directory, then any the caller's ``more_conf`` (a dict
    expression, evaluated in the child) or ``body`` read."""
    session = textwrap.dedent(
        """
        import json, os, sys, time
        sys.path.insert(0, sys.argv[1])
        from pyspark.sql import SparkSession
        from pyspark import StorageLevel
        from jobs.run_one import run_conf
        from blaze.manager import active_manager

        RECORDS, WIDTH = 10_000, 400  # ~4 MB pickled per partition
        POOL = int(2.6 * RECORDS * (WIDTH + 5))
        os.makedirs(sys.argv[2], exist_ok=True)
        conf = run_conf(POOL, sys.argv[2], "child")
        # the flag and the policy by conf, as spark-submit gives them: the plugin loads with
        # the context even for "spark", which the suite runs without the manager
        conf.update({"spark.blaze.enabled": "true", "spark.blaze.policy": POLICY})
        conf.update(MORE_CONF)
        builder = SparkSession.builder
        for key, value in conf.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
        sc = spark.sparkContext
        """
    )
    session = session.replace("POLICY", repr(policy)).replace("MORE_CONF", more_conf or "{}")
    return session + textwrap.dedent(body)
