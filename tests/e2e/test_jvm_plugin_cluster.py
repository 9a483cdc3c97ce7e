"""blaze-spark's JVM plugin on ``local-cluster[2,1,1024]`` (two executor JVMs, a subprocess).

The executors are separate JVMs that get the plugin's classes only through ``spark.jars``, so
both executor halves registering with the driver half shows the jar reached them and the
plugin's messaging works across processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCRIPT = r"""
import json, sys, time
import blaze
from blaze.plugin import registered_executors

spark = blaze.session(
    {"spark.master": "local-cluster[2,1,1024]", "spark.executor.memory": "512m",
     "spark.blaze.enabled": "false"},
    app_name="blaze-plugin-cluster-test",
)
# executors register their plugin half while they start; there is no event to wait on
deadline = time.time() + 120
while len(registered_executors(spark)) < 2 and time.time() < deadline:
    time.sleep(0.2)
# a failed registration kills the executors: no job then (it would wait for them forever)
registered = registered_executors(spark)
total = spark.sparkContext.parallelize(range(1000), 4).sum() if len(registered) == 2 else None
print("RESULT " + json.dumps({
    "registered": registered, "total": total,
    "jars": spark.sparkContext.getConf().get("spark.jars"),
}), flush=True)
spark.stop()
"""


def test_both_executors_of_a_local_cluster_register_with_the_driver_half(tmp_path):
    script = tmp_path / "plugin_cluster_app.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    [line] = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    result = json.loads(line[len("RESULT ") :])
    assert result["registered"] == ["0", "1"]
    assert result["total"] == sum(range(1000))
    assert result["jars"].endswith("blaze-spark-jvm.jar")
