"""lineage: what Spark did, as plain records and the application's lineage DAG.

- :mod:`lineage.events` — frozen dataclasses made at the py4j boundary
- :mod:`lineage.parse` — one Spark event-log JSON object -> records (live and offline)
- :mod:`lineage.eventlog` — read an event log file or rolling directory (plain or zstd)
- :mod:`lineage.dag` — :class:`LineageDag`, thread-safe, fed live or from a log
- :mod:`lineage.listener` — :class:`LineageListener`, the py4j SparkListener (needs pyspark)
- :mod:`lineage.cli` — ``blaze lineage APP_EVENT_LOG``

Nothing here imports pyspark at module level; only ``LineageListener.attach`` does.
"""

from lineage.dag import LineageDag, PartitionObservation
from lineage.listener import LineageListener
from lineage.parse import parse_event

__all__ = ["LineageDag", "LineageListener", "PartitionObservation", "parse_event"]
