package org.blazespark.aomg;

import org.apache.spark.sql.Encoder;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.expressions.Aggregator;

/**
 * {@code aomg_summary_agg(value[, alpha[, exact_limit[, tail_size]]])}: the AOMG summary of a
 * group's values, as bytes. Runs as Spark's imperative object aggregate: the buffer is the
 * mutable summary itself, serialised only for shuffle, spill and streaming state.
 */
public final class SummaryAgg extends Aggregator<Double, AomgSummary, byte[]> {
  private static final long serialVersionUID = 1L;
  private final double alpha;
  private final int exactLimit;
  private final int tailSize;

  public SummaryAgg(double alpha, int exactLimit, int tailSize) {
    AomgSummary.checkConfig(alpha, exactLimit, tailSize);
    this.alpha = alpha;
    this.exactLimit = exactLimit;
    this.tailSize = tailSize;
  }

  @Override
  public AomgSummary zero() {
    return new AomgSummary(alpha, exactLimit, tailSize);
  }

  @Override
  public AomgSummary reduce(AomgSummary buffer, Double value) {
    buffer.add(value);
    return buffer;
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
