package org.blazespark.aomg;

import org.apache.spark.sql.api.java.UDF1;
import org.apache.spark.sql.api.java.UDF2;

/**
 * The scalar functions that read a summary's bytes: one quantile, an array of quantiles, the
 * count of values and the count of skipped values. Called once per window row, not per record.
 */
final class SummaryReaders {
  private SummaryReaders() {}

  /** {@code aomg_quantile(summary, q)}: a double (NaN for an empty summary; null for nulls). */
  static final class Quantile implements UDF2<byte[], Double, Double> {
    private static final long serialVersionUID = 1L;

    @Override
    public Double call(byte[] summary, Double q) {
      if (summary == null || q == null) {
        return null;
      }
      return AomgSummary.fromBytes(summary).quantiles(new double[] {q})[0];
    }
  }

  /** {@code aomg_quantiles(summary, array(q, ...))}: an array in the order asked. */
  static final class Quantiles implements UDF2<byte[], scala.collection.Seq<Object>, double[]> {
    private static final long serialVersionUID = 1L;

    @Override
    public double[] call(byte[] summary, scala.collection.Seq<Object> qs) {
      if (summary == null || qs == null) {
        return null;
      }
      double[] asked = new double[qs.size()];
      for (int i = 0; i < asked.length; i++) {
        Object q = qs.apply(i);
        if (q == null) {
          throw new AomgException("AOMG quantile null is outside [0, 1]");
        }
        asked[i] = ((Number) q).doubleValue();
      }
      return AomgSummary.fromBytes(summary).quantiles(asked);
    }
  }

  /** {@code aomg_summary_count(summary)}: valid values summarised. */
  static final class Count implements UDF1<byte[], Long> {
    private static final long serialVersionUID = 1L;

    @Override
    public Long call(byte[] summary) {
      return summary == null ? null : AomgSummary.fromBytes(summary).count();
    }
  }

  /** {@code aomg_summary_skipped(summary)}: null, NaN, infinite and negative values left out. */
  static final class Skipped implements UDF1<byte[], Long> {
    private static final long serialVersionUID = 1L;

    @Override
    public Long call(byte[] summary) {
      return summary == null ? null : AomgSummary.fromBytes(summary).skipped();
    }
  }
}
