package org.blazespark.aomg;

import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.catalyst.analysis.FunctionRegistry;
import org.apache.spark.sql.catalyst.expressions.Cast;
import org.apache.spark.sql.catalyst.expressions.EvalMode$;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.util.ArrayData;
import org.apache.spark.sql.classic.SparkSession;
import org.apache.spark.sql.classic.UserDefinedFunctionUtils;
import org.apache.spark.sql.execution.aggregate.ScalaAggregator$;
import org.apache.spark.sql.expressions.SparkUserDefinedFunction;
import org.apache.spark.sql.expressions.UserDefinedAggregator;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.BinaryType$;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.Decimal;
import org.apache.spark.sql.types.NullType$;
import org.apache.spark.sql.types.NumericType;
import scala.Option;
import scala.jdk.javaapi.CollectionConverters;

/**
 * Registers AOMG's SQL functions on a session, named and split like Spark's KLL family:
 *
 * <ul>
 *   <li>{@code aomg_summary_agg(value[, alpha[, exact_limit[, tail_size]]])} — aggregate: the
 *       summary (binary) of a group's values; the settings are literals;
 *   <li>{@code aomg_summary_merge(summary)} — aggregate: the summary of a group's summaries;
 *   <li>{@code aomg_quantile(summary, q)} — double; {@code aomg_quantiles(summary, array(q, ...))}
 *       — array&lt;double&gt;;
 *   <li>{@code aomg_summary_count(summary)}, {@code aomg_summary_skipped(summary)} — bigint.
 * </ul>
 *
 * <p>Why builders of our own rather than {@code spark.udf().register}: they see the argument
 * expressions at analysis time, so literal settings and quantiles are checked (and wrong types
 * refused) before any job runs, and each settings tuple gets its own aggregate. The per-record
 * aggregate is {@link SummaryAggExpression} (Spark's object aggregate, as KLL's); the merge is
 * an {@code Aggregator} ({@link MergeAgg}) wrapped by {@code functions.udaf}, whose per-row
 * encoder cost is paid per summary, not per record.
 * Python calls {@link #register} once per session ({@code streaming.aomg.register}).
 */
public final class AomgFunctions {
  private AomgFunctions() {}

  /** The summary format this jar writes and reads (Python checks it matches its own). */
  public static int formatVersion() {
    return AomgSummary.VERSION;
  }

  public static void register(SparkSession spark) {
    FunctionRegistry registry = spark.sessionState().functionRegistry();
    registry.createOrReplaceTempFunction("aomg_summary_agg", AomgFunctions::summaryAgg, "scala_udf");
    registry.createOrReplaceTempFunction(
        "aomg_summary_merge", AomgFunctions::summaryMerge, "scala_udf");
    registry.createOrReplaceTempFunction("aomg_quantile", AomgFunctions::quantile, "scala_udf");
    registry.createOrReplaceTempFunction("aomg_quantiles", AomgFunctions::quantiles, "scala_udf");
    registry.createOrReplaceTempFunction(
        "aomg_summary_count",
        children -> reader("aomg_summary_count", children, new SummaryReaders.Count()),
        "scala_udf");
    registry.createOrReplaceTempFunction(
        "aomg_summary_skipped",
        children -> reader("aomg_summary_skipped", children, new SummaryReaders.Skipped()),
        "scala_udf");
  }

  // -- builders ------------------------------------------------------------------------------

  private static Expression summaryAgg(scala.collection.immutable.Seq<Expression> children) {
    String name = "aomg_summary_agg";
    List<Expression> args = arguments(name, children, 1, 4, "value[, alpha[, exact_limit[, tail_size]]]");
    Expression value = args.get(0);
    if (!(value.dataType() instanceof NumericType || value.dataType() == NullType$.MODULE$)) {
      throw fail(name, "value must be numeric, not " + value.dataType().simpleString());
    }
    double alpha = args.size() > 1 ? literal(name, "alpha", args.get(1)) : AomgSummary.DEFAULT_ALPHA;
    double limit =
        args.size() > 2 ? literal(name, "exact_limit", args.get(2)) : AomgSummary.DEFAULT_EXACT_LIMIT;
    double tail =
        args.size() > 3 ? literal(name, "tail_size", args.get(3)) : AomgSummary.DEFAULT_TAIL_SIZE;
    if (limit != Math.rint(limit) || tail != Math.rint(tail)) {
      throw fail(name, "exact_limit and tail_size must be whole numbers");
    }
    try {
      AomgSummary.checkConfig(alpha, (long) limit, (long) tail);
    } catch (AomgException exc) {
      throw fail(name, exc.getMessage());
    }
    return new SummaryAggExpression(
        cast(value, DataTypes.DoubleType), alpha, (int) limit, (int) tail, 0, 0);
  }

  private static Expression summaryMerge(scala.collection.immutable.Seq<Expression> children) {
    String name = "aomg_summary_merge";
    List<Expression> args = arguments(name, children, 1, 1, "summary");
    checkSummary(name, args.get(0));
    return aggregate(name, new MergeAgg(), Encoders.BINARY(), args.get(0));
  }

  private static Expression quantile(scala.collection.immutable.Seq<Expression> children) {
    String name = "aomg_quantile";
    List<Expression> args = arguments(name, children, 2, 2, "summary, q");
    checkSummary(name, args.get(0));
    Expression q = args.get(1);
    if (!(q.dataType() instanceof NumericType)) {
      throw fail(name, "q must be a number in [0, 1], not " + q.dataType().simpleString());
    }
    if (q.foldable()) {
      checkQuantile(name, literal(name, "q", q));
    }
    Expression asDouble = cast(q, DataTypes.DoubleType);
    return scalar(name, new SummaryReaders.Quantile(), DataTypes.DoubleType, args.get(0), asDouble);
  }

  private static Expression quantiles(scala.collection.immutable.Seq<Expression> children) {
    String name = "aomg_quantiles";
    List<Expression> args = arguments(name, children, 2, 2, "summary, array(q, ...)");
    checkSummary(name, args.get(0));
    Expression qs = args.get(1);
    DataType type = qs.dataType();
    if (!(type instanceof ArrayType && ((ArrayType) type).elementType() instanceof NumericType)) {
      throw fail(name, "the quantiles must be an array of numbers in [0, 1], not "
          + type.simpleString());
    }
    DataType doubles = DataTypes.createArrayType(DataTypes.DoubleType, true);
    Expression asDoubles = cast(qs, doubles);
    if (qs.foldable()) {
      Object value = asDoubles.eval(null);
      if (value == null) {
        throw fail(name, "the quantiles must not be null");
      }
      ArrayData array = (ArrayData) value;
      if (array.numElements() == 0) {
        throw fail(name, "the quantiles must be a non-empty array");
      }
      for (int i = 0; i < array.numElements(); i++) {
        if (array.isNullAt(i)) {
          throw fail(name, "quantile null is outside [0, 1]");
        }
        checkQuantile(name, array.getDouble(i));
      }
    }
    return scalar(
        name,
        new SummaryReaders.Quantiles(),
        DataTypes.createArrayType(DataTypes.DoubleType, false),
        args.get(0),
        asDoubles);
  }

  private static Expression reader(
      String name, scala.collection.immutable.Seq<Expression> children, Object udf) {
    List<Expression> args = arguments(name, children, 1, 1, "summary");
    checkSummary(name, args.get(0));
    SparkUserDefinedFunction function =
        (SparkUserDefinedFunction) functions.udf((org.apache.spark.sql.api.java.UDF1<?, ?>) udf,
            DataTypes.LongType).withName(name);
    return UserDefinedFunctionUtils.toScalaUDF(function, seq(args));
  }

  // -- helpers -------------------------------------------------------------------------------

  @SuppressWarnings({"unchecked", "rawtypes"})
  private static Expression aggregate(
      String name, org.apache.spark.sql.expressions.Aggregator agg,
      org.apache.spark.sql.Encoder encoder, Expression input) {
    UserDefinedAggregator udaf = (UserDefinedAggregator) functions.udaf(agg, encoder).withName(name);
    List<Expression> one = new ArrayList<>();
    one.add(input);
    return ScalaAggregator$.MODULE$.apply(udaf, seq(one));
  }

  private static Expression scalar(
      String name, org.apache.spark.sql.api.java.UDF2<?, ?, ?> udf, DataType result,
      Expression summary, Expression argument) {
    SparkUserDefinedFunction function =
        (SparkUserDefinedFunction) functions.udf(udf, result).withName(name);
    List<Expression> two = new ArrayList<>();
    two.add(summary);
    two.add(argument);
    return UserDefinedFunctionUtils.toScalaUDF(function, seq(two));
  }

  private static Expression cast(Expression child, DataType type) {
    if (child.dataType().equals(type)) {
      return child;
    }
    return new Cast(child, type, Option.empty(), EvalMode$.MODULE$.LEGACY());
  }

  private static scala.collection.immutable.Seq<Expression> seq(List<Expression> items) {
    return CollectionConverters.asScala(items).toSeq();
  }

  private static List<Expression> arguments(
      String name, scala.collection.immutable.Seq<Expression> children, int min, int max,
      String signature) {
    List<Expression> args = new ArrayList<>(CollectionConverters.asJava(children));
    if (args.size() < min || args.size() > max) {
      throw fail(name, "takes (" + signature + "), got " + args.size() + " argument"
          + (args.size() == 1 ? "" : "s"));
    }
    return args;
  }

  private static void checkSummary(String name, Expression summary) {
    DataType type = summary.dataType();
    if (!(type == BinaryType$.MODULE$ || type == NullType$.MODULE$)) {
      throw fail(name, "summary must be binary (from aomg_summary_agg), not " + type.simpleString());
    }
  }

  private static void checkQuantile(String name, double q) {
    try {
      AomgSummary.checkQuantile(q);
    } catch (AomgException exc) {
      throw fail(name, exc.getMessage());
    }
  }

  private static double literal(String name, String what, Expression e) {
    if (!e.foldable()) {
      throw fail(name, what + " must be a literal number, not the expression " + e.sql());
    }
    Object value = e.eval(null);
    if (value instanceof Decimal) {
      return ((Decimal) value).toDouble();
    }
    if (value instanceof Number) {
      return ((Number) value).doubleValue();
    }
    throw fail(name, what + " must be a number, not " + (value == null ? "null" : e.dataType().simpleString()));
  }

  private static AomgException fail(String name, String message) {
    return new AomgException(name + ": " + message);
  }
}
