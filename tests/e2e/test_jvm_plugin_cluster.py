"""blaze-spark's JVM plugin on ``local-cluster[2,1,1024]`` (two executor JVMs, a subprocess).

The executors are separate JVMs that get the plugin's classes only through ``spark.jars``, so
both executor halves registering with the driver half shows the jar reached them and the
plugin's messaging works across processes.
"""

from __future__ import annotations

import pytest
from conftest import run_result_script

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
# an executor whose half could not register still runs tasks (Spark alone decides there)
registered = registered_executors(spark)
total = spark.sparkContext.parallelize(range(1000), 4).sum() if len(registered) == 2 else None
print("RESULT " + json.dumps({
    "registered": registered, "total": total,
    "jars": spark.sparkContext.getConf().get("spark.jars"),
}), flush=True)
spark.stop()
"""


def test_both_executors_of_a_local_cluster_register_with_the_driver_half(tmp_path):
    result = run_result_script(tmp_path, "plugin_cluster_app.py", SCRIPT, timeout_s=300)
    assert result["registered"] == ["0", "1"]
    assert result["total"] == sum(range(1000))
    assert result["jars"].endswith("blaze-spark-jvm.jar")
