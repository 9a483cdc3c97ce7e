"""Jarvis: a monitoring query split at the data level between sources and Spark.

Modules, one job each:

* :mod:`~streaming.jarvis.query` — the operator chain (filter, project, join, aggregate),
  its stage schemas, numpy execution and JSON spec;
* :mod:`~streaming.jarvis.proxy` — control proxies (load factor per operator), chunk routing;
* :mod:`~streaming.jarvis.controller` — profile, cost model, LP (scipy ``linprog``), queue
  states, step heuristic;
* :mod:`~streaming.jarvis.search` — the load-factor search: best operator-level split first,
  data-level refinement, settles on the best measured point;
* :mod:`~streaming.jarvis.runtime` — one source's proxies + profiler + strategy;
* :mod:`~streaming.jarvis.agent` — the agent process (CPU budget, bandwidth, spool);
* :mod:`~streaming.jarvis.spool` — atomic Arrow IPC entries, resume after a crash;
* :mod:`~streaming.jarvis.source` — the ``jarvis_spool`` Spark Python data source;
* :mod:`~streaming.jarvis.spark_ops` — the same operators as DataFrame transformations;
* :mod:`~streaming.jarvis.harness` / :mod:`~streaming.jarvis.report` — runs and figures;
* :mod:`~streaming.jarvis.lifecycle` / :mod:`~streaming.jarvis.watchdog` — nothing a run
  starts outlives it (parent-death signal, per-run watchdog, stale-directory sweep).

Typical use from Spark (after agents write to ``spool``)::

    from streaming.jarvis import JarvisSpoolDataSource, default_query, finish_query
    spark.dataSource.register(JarvisSpoolDataSource)
    q = default_query()
    env = (spark.readStream.format("jarvis_spool").option("path", spool)
           .option("query", json.dumps(q.to_spec())).load())
    result = finish_query(env, q, topology_frame(spark, server_topology(cfg)))
"""

from __future__ import annotations

from streaming.jarvis.controller import solve_load_factors
from streaming.jarvis.query import Query, default_query, query_from_spec

__all__ = [
    "JarvisSpoolDataSource",
    "Query",
    "default_query",
    "finish_query",
    "query_from_spec",
    "run_unsplit",
    "solve_load_factors",
    "topology_frame",
]


def __getattr__(name: str):
    """Spark-facing names import pyspark lazily (agents never need it)."""
    if name == "JarvisSpoolDataSource":
        from streaming.jarvis.source import JarvisSpoolDataSource

        return JarvisSpoolDataSource
    if name in ("finish_query", "run_unsplit", "topology_frame"):
        from streaming.jarvis import spark_ops

        return getattr(spark_ops, name)
    raise AttributeError(f"module 'streaming.jarvis' has no attribute {name!r}")
