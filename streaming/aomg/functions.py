"""AOMG as Spark SQL functions: register them on a session, call them from SQL or DataFrames.

Named and split like Spark's KLL family (``kll_sketch_agg_double`` → ``kll_sketch_merge`` →
``kll_sketch_get_quantile_double``), implemented in the project's JVM module
(``blaze_jvm/java/org/blazespark/aomg``) and registered per session by :func:`register`:

==========================================================  ==============================
``aomg_summary_agg(value[, alpha[, exact_limit[, tail]]])``  aggregate → binary summary
``aomg_summary_merge(summary)``                              aggregate → binary summary
``aomg_quantile(summary, q)``                                double
``aomg_quantiles(summary, array(q, ...))``                   array<double>
``aomg_summary_count(summary)`` / ``aomg_summary_skipped``   bigint
==========================================================  ==============================

The aggregates run inside Spark's object hash aggregation with the AOMG summary itself as
the buffer (bounded: exact counts, log buckets of accuracy α, an exact tail), so no record
and no per-record list ever reaches Python; the summary bytes are those of
:meth:`QuantileSummary.to_bytes` and read back with :meth:`QuantileSummary.from_bytes`.

Why a jar on ``spark.jars``: the classes must be on the driver's and executors' class paths
when the session starts; :func:`with_aomg_jar` adds it to a conf or builder.
Bad input: literal settings and quantiles are checked here before a plan is built, and again
by the JVM at analysis (SQL text); a summary of another format version or configuration fails
the job that merges or reads it, with one line (:func:`errors` turns it into ``InputError``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from blaze_jvm import jar_path
from blaze_jvm.conf import JARS_KEY, appended
from streaming.aomg._jvm import jvm_errors, register_on
from streaming.aomg.summary import FORMAT_VERSION, SummaryConfig, validate_quantiles

__all__ = [
    "FUNCTION_NAMES",
    "errors",
    "quantile",
    "quantiles",
    "register",
    "summary_agg",
    "summary_count",
    "summary_merge",
    "summary_skipped",
    "with_aomg_jar",
]

FUNCTION_NAMES = (
    "aomg_summary_agg",
    "aomg_summary_merge",
    "aomg_quantile",
    "aomg_quantiles",
    "aomg_summary_count",
    "aomg_summary_skipped",
)
HOW_TO_START = (
    "start the session with the jar on spark.jars, e.g. "
    "streaming.aomg.with_aomg_jar(SparkSession.builder).getOrCreate()"
)

errors = jvm_errors


def with_aomg_jar(conf: Any) -> Any:
    """``conf`` with blaze-spark's jar (built on first use) added to ``spark.jars``.

    ``conf`` is a mapping (a new ``dict`` is returned) or a ``SparkSession.builder`` /
    ``SparkConf`` (changed in place and returned). Must happen before the session starts.
    """
    jar = str(jar_path())
    if isinstance(conf, Mapping):
        return {**conf, JARS_KEY: appended(conf.get(JARS_KEY), jar)}
    options = getattr(conf, "_options", None)  # SparkSession.Builder keeps its confs here
    if isinstance(options, Mapping):
        return conf.config(JARS_KEY, appended(options.get(JARS_KEY), jar))
    if hasattr(conf, "get") and hasattr(conf, "set"):  # pyspark.SparkConf
        return conf.set(JARS_KEY, appended(conf.get(JARS_KEY), jar))
    raise TypeError(
        "with_aomg_jar: conf must be a mapping, a SparkConf or a SparkSession builder, "
        f"not {type(conf).__name__}"
    )


def register(spark) -> None:
    """Register the ``aomg_*`` functions on ``spark`` (temporary functions of that session).

    Raises :class:`~blaze_errors.ConfigError` (one line) when the session was started without
    the jar or with a jar of another summary format.
    """
    register_on(spark, FORMAT_VERSION, HOW_TO_START)


# -- DataFrame API: Column builders that check literal arguments before any plan -------------


def _col(column: Any):
    from pyspark.sql import functions as F

    return F.col(column) if isinstance(column, str) else column


def summary_agg(value: Any, config: SummaryConfig | None = None):
    """``aomg_summary_agg(value, alpha, exact_limit, tail_size)`` as a Column."""
    from pyspark.sql import functions as F

    config = config or SummaryConfig()
    return F.call_function(
        "aomg_summary_agg",
        _col(value),
        F.lit(float(config.relative_accuracy)),
        F.lit(int(config.exact_limit)),
        F.lit(int(config.tail_size)),
    )


def summary_merge(summary: Any):
    from pyspark.sql import functions as F

    return F.call_function("aomg_summary_merge", _col(summary))


def quantile(summary: Any, q: float):
    from pyspark.sql import functions as F

    (checked,) = validate_quantiles([q])
    return F.call_function("aomg_quantile", _col(summary), F.lit(float(checked)))


def quantiles(summary: Any, qs: Sequence[float]):
    from pyspark.sql import functions as F

    checked = validate_quantiles(qs)
    array = F.array(*(F.lit(float(q)) for q in checked))
    return F.call_function("aomg_quantiles", _col(summary), array)


def summary_count(summary: Any):
    from pyspark.sql import functions as F

    return F.call_function("aomg_summary_count", _col(summary))


def summary_skipped(summary: Any):
    from pyspark.sql import functions as F

    return F.call_function("aomg_summary_skipped", _col(summary))
