package org.blazespark.aomg;

import java.util.concurrent.ConcurrentHashMap;

/**
 * Log buckets of relative accuracy α: bucket {@code i} holds the values in {@code (P(i-1), P(i)]}
 * with {@code P(i) ≈ γ^i}, {@code γ = (1 + α) / (1 - α)}, and answers with {@code 2P(i) / (γ + 1)}.
 *
 * <p>Why tables: {@code P(i)} is one multiplication of two tabled powers, {@code high[h] * low[l]}
 * with {@code |i| = h·base + l}, and the tables are built by repeated multiplication. Those are
 * exact IEEE operations, so Python's {@code streaming.aomg.summary} computes bit-identical
 * bounds and representatives; {@code log} only gives a first guess that is corrected against
 * the tabled bounds, so the JVM's and numpy's {@code log} may differ without changing a bucket.
 * The same steps, in the same order, live in {@code SummaryConfig} on the Python side.
 */
final class Mapping {
  /** |ln v| of every positive finite double is below this. */
  private static final double LN_DOUBLE_RANGE = 746.0;

  private static final ConcurrentHashMap<Double, Mapping> CACHE = new ConcurrentHashMap<>();

  final double gamma;
  private final double logGamma;
  private final double halfGammaPlusOne;
  private final int base;
  private final double[] upLow;
  private final double[] upHigh;
  private final double[] downLow;
  private final double[] downHigh;

  static Mapping of(double alpha) {
    return CACHE.computeIfAbsent(alpha, Mapping::new);
  }

  private Mapping(double alpha) {
    gamma = (1.0 + alpha) / (1.0 - alpha);
    logGamma = Math.log(gamma);
    halfGammaPlusOne = (gamma + 1.0) / 2.0;
    long largest = (long) Math.ceil(LN_DOUBLE_RANGE / logGamma) + 1;
    base = (int) Math.max(2, isqrt(largest) + 1);
    int high = (int) (largest / base + 1);
    upLow = powers(gamma, base);
    upHigh = powers(upLow[base - 1] * gamma, high);
    double inverse = 1.0 / gamma;
    downLow = powers(inverse, base);
    downHigh = powers(downLow[base - 1] * inverse, high);
  }

  private static double[] powers(double step, int count) {
    double[] out = new double[count];
    out[0] = 1.0;
    for (int j = 1; j < count; j++) {
      out[j] = out[j - 1] * step;
    }
    return out;
  }

  private static long isqrt(long n) {
    long r = (long) Math.sqrt((double) n);
    while (r * r > n) {
      r--;
    }
    while ((r + 1) * (r + 1) <= n) {
      r++;
    }
    return r;
  }

  /** Upper bound {@code P(i)} of bucket {@code i}. */
  double bound(long i) {
    long magnitude = Math.abs(i);
    long h = magnitude / base;
    int l = (int) (magnitude % base);
    if (h >= upHigh.length) {
      return i >= 0 ? Double.POSITIVE_INFINITY : 0.0;
    }
    return i >= 0 ? upHigh[(int) h] * upLow[l] : downHigh[(int) h] * downLow[l];
  }

  /** The bucket of a positive finite value: the {@code i} with {@code P(i-1) < v <= P(i)}. */
  long bucketOf(double value) {
    // subnormal values share the bucket of the smallest normal double: below it the tabled
    // products lose precision and bounds stop rising with i
    double v = Math.max(value, Double.MIN_NORMAL);
    long i = (long) Math.ceil(Math.log(v) / logGamma);
    while (bound(i - 1) >= v) {
      i--;
    }
    while (bound(i) < v) {
      i++;
    }
    return i;
  }

  /** The value bucket {@code i} answers with: within α of everything it holds. */
  double representative(long i) {
    // rounds the same real number as 2P / (γ + 1), without overflowing 2P
    return bound(i) / halfGammaPlusOne;
  }
}
