"""streaming: three operators for datacenter telemetry on Spark Structured Streaming.

* :mod:`streaming.common` — the telemetry generator and the Spark data source serving it;
* :mod:`streaming.aomg` — accurate windowed quantiles (AOMG);
* :mod:`streaming.tersecades` — compression and execution on compressed data (TerseCades);
* :mod:`streaming.jarvis` — a query split between data sources and Spark (Jarvis);
* :mod:`streaming.cli` — ``blaze stream OPERATOR``, the demos.

It stands beside the cache manager, not on it: nothing here imports ``blaze``,
``costmodel`` or ``jobs`` (only the error base classes of ``blaze_errors``).
"""
