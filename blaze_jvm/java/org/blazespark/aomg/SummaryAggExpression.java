package org.blazespark.aomg;

import java.util.Objects;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.aggregate.TypedImperativeAggregate;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;

/**
 * {@code aomg_summary_agg} as Spark's own kind of object aggregate (as KLL's and
 * {@code percentile_approx} are): {@link #update} evaluates the (double) child on the row and
 * adds it to the summary, with no per-row projection into an encoder and back.
 *
 * <p>Why not an {@code Aggregator} wrapped by {@code functions.udaf} (as {@link MergeAgg} is):
 * that wrapper projects each record into an encoder row and deserialises it to a boxed value
 * before {@code reduce}; per summary that is nothing, per record it is the cost that matters.
 * The buffer is the mutable {@link AomgSummary}, serialised (shuffle, spill, streaming state)
 * as {@link AomgSummary#toBytes()}.
 */
public final class SummaryAggExpression extends TypedImperativeAggregate<AomgSummary>
    implements java.io.Serializable {
  private static final long serialVersionUID = 1L;
  private final Expression child;
  private final double alpha;
  private final int exactLimit;
  private final int tailSize;
  private final int mutableAggBufferOffset;
  private final int inputAggBufferOffset;

  public SummaryAggExpression(
      Expression child,
      double alpha,
      int exactLimit,
      int tailSize,
      int mutableAggBufferOffset,
      int inputAggBufferOffset) {
    AomgSummary.checkConfig(alpha, exactLimit, tailSize);
    this.child = child;
    this.alpha = alpha;
    this.exactLimit = exactLimit;
    this.tailSize = tailSize;
    this.mutableAggBufferOffset = mutableAggBufferOffset;
    this.inputAggBufferOffset = inputAggBufferOffset;
  }

  @Override
  public AomgSummary createAggregationBuffer() {
    return new AomgSummary(alpha, exactLimit, tailSize);
  }

  @Override
  public AomgSummary update(AomgSummary buffer, InternalRow input) {
    Object value = child.eval(input);
    if (value == null) {
      buffer.add((Double) null);
    } else {
      buffer.add(((Double) value).doubleValue());
    }
    return buffer;
  }

  @Override
  public AomgSummary merge(AomgSummary buffer, AomgSummary input) {
    return buffer.mergeFrom(input);
  }

  @Override
  public Object eval(AomgSummary buffer) {
    return buffer.toBytes();
  }

  @Override
  public byte[] serialize(AomgSummary buffer) {
    return buffer.toBytes();
  }

  @Override
  public AomgSummary deserialize(byte[] bytes) {
    return AomgSummary.fromBytes(bytes);
  }

  @Override
  public int mutableAggBufferOffset() {
    return mutableAggBufferOffset;
  }

  @Override
  public int inputAggBufferOffset() {
    return inputAggBufferOffset;
  }

  @Override
  public SummaryAggExpression withNewMutableAggBufferOffset(int offset) {
    return new SummaryAggExpression(child, alpha, exactLimit, tailSize, offset, inputAggBufferOffset);
  }

  @Override
  public SummaryAggExpression withNewInputAggBufferOffset(int offset) {
    return new SummaryAggExpression(
        child, alpha, exactLimit, tailSize, mutableAggBufferOffset, offset);
  }

  @Override
  public boolean nullable() {
    return false;
  }

  @Override
  public DataType dataType() {
    return DataTypes.BinaryType;
  }

  @Override
  public scala.collection.immutable.Seq<Expression> children() {
    return scala.collection.immutable.List$.MODULE$.<Expression>empty().$colon$colon(child);
  }

  @Override
  public Expression withNewChildrenInternal(
      scala.collection.immutable.IndexedSeq<Expression> newChildren) {
    return new SummaryAggExpression(
        newChildren.apply(0),
        alpha,
        exactLimit,
        tailSize,
        mutableAggBufferOffset,
        inputAggBufferOffset);
  }

  @Override
  public String prettyName() {
    return "aomg_summary_agg";
  }

  @Override
  public int productArity() {
    return 6;
  }

  @Override
  public Object productElement(int n) {
    switch (n) {
      case 0:
        return child;
      case 1:
        return alpha;
      case 2:
        return exactLimit;
      case 3:
        return tailSize;
      case 4:
        return mutableAggBufferOffset;
      case 5:
        return inputAggBufferOffset;
      default:
        throw new IndexOutOfBoundsException(String.valueOf(n));
    }
  }

  @Override
  public boolean canEqual(Object other) {
    return other instanceof SummaryAggExpression;
  }

  @Override
  public boolean equals(Object other) {
    if (!(other instanceof SummaryAggExpression)) {
      return false;
    }
    SummaryAggExpression o = (SummaryAggExpression) other;
    return child.equals(o.child)
        && alpha == o.alpha
        && exactLimit == o.exactLimit
        && tailSize == o.tailSize
        && mutableAggBufferOffset == o.mutableAggBufferOffset
        && inputAggBufferOffset == o.inputAggBufferOffset;
  }

  @Override
  public int hashCode() {
    return Objects.hash(child, alpha, exactLimit, tailSize, mutableAggBufferOffset,
        inputAggBufferOffset);
  }
}
