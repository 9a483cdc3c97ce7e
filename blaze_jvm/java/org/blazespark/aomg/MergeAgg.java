package org.blazespark.aomg;

import org.apache.spark.sql.Encoder;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.expressions.Aggregator;

/**
 * {@code aomg_summary_merge(summary)}: the summary of the union of a group's summaries (AOMG's
 * second level: sub-windows into windows, panes into sliding windows). Null summaries are
 * ignored; summaries of different configurations or format versions fail with one line.
 */
public final class MergeAgg extends Aggregator<byte[], AomgSummary, byte[]> {
  private static final long serialVersionUID = 1L;

  @Override
  public AomgSummary zero() {
    return new AomgSummary();
  }

  @Override
  public AomgSummary reduce(AomgSummary buffer, byte[] summary) {
    return summary == null ? buffer : buffer.mergeFrom(AomgSummary.fromBytes(summary));
  }

  @Override
  public AomgSummary merge(AomgSummary left, AomgSummary right) {
    return left.mergeFrom(right);
  }

  @Override
  public byte[] finish(AomgSummary buffer) {
    return buffer.toBytes();
  }

  @Override
  public Encoder<AomgSummary> bufferEncoder() {
    return Encoders.bean(AomgSummary.class);
  }

  @Override
  public Encoder<byte[]> outputEncoder() {
    return Encoders.BINARY();
  }
}
