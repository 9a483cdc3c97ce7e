package org.blazespark.aomg;

import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * The AOMG summary of a sub-window or window: the buffer of the aggregates and their result.
 *
 * <p>Three regions, every valid value counted in exactly one (as {@code QuantileSummary} in
 * {@code streaming/aomg/summary.py}, whose docstring states the guarantee): integers in
 * {@code [0, exactLimit]} counted exactly; the {@code tailSize} largest other values kept
 * verbatim (a min-heap: a newcomer larger than its root pushes the root into its bucket); every
 * other value counted in its log bucket ({@link Mapping}). Null, NaN, ±∞ and negative values are
 * counted in {@code skipped}, never placed. Merging adds counts and offers the other tail to
 * this heap, so a summary depends only on the multiset of its values: merging is exact and
 * order-independent, and equals Python's reference summary value for value.
 *
 * <p>Bytes (format version 2, little-endian; {@code QuantileSummary.from_bytes} reads them):
 * {@code "AOMG"}, version byte, α (float64), then unsigned LEB128 varints exactLimit, tailSize,
 * skipped, nExact, nBuckets, nTail; nExact pairs (value delta from the previous value, count);
 * nBuckets pairs (index delta — the first zigzag-encoded — , count); nTail float64 ascending.
 *
 * <p>Why a bean with one property, {@code bytes}: Spark's bean encoder then serialises the
 * buffer (for shuffle, spill and streaming state) as exactly these bytes, with no class names.
 */
public final class AomgSummary implements Serializable {
  private static final long serialVersionUID = 2L;
  public static final int VERSION = 2;
  public static final double DEFAULT_ALPHA = 0.005;
  public static final int DEFAULT_EXACT_LIMIT = 4_096;
  public static final int DEFAULT_TAIL_SIZE = 64;
  /** Finer accuracies need bucket tables of megabytes. */
  public static final double MIN_ALPHA = 1e-6;

  private static final byte[] MAGIC = "AOMG".getBytes(StandardCharsets.US_ASCII);

  private boolean configured;
  private double alpha;
  private int exactLimit;
  private int tailSize;
  private transient Mapping mapping;
  private CountMap exact = new CountMap();
  private CountMap buckets = new CountMap();
  private double[] heap = new double[0];
  private int heapSize;
  private long skipped;

  /** An empty summary whose configuration the first merged summary sets (the merge buffer). */
  public AomgSummary() {}

  public AomgSummary(double alpha, int exactLimit, int tailSize) {
    checkConfig(alpha, exactLimit, tailSize);
    configure(alpha, exactLimit, tailSize);
  }

  /** One line naming the first bad setting, or nothing. */
  public static void checkConfig(double alpha, long exactLimit, long tailSize) {
    if (!(alpha > 0.0 && alpha < 0.5)) {
      throw new AomgException("AOMG relative accuracy alpha=" + alpha + " is outside (0, 0.5)");
    }
    if (alpha < MIN_ALPHA) {
      throw new AomgException(
          "AOMG relative accuracy alpha=" + alpha + " is below " + MIN_ALPHA
              + ", the finest supported");
    }
    if (exactLimit < 0 || exactLimit > Integer.MAX_VALUE) {
      throw new AomgException("AOMG exact_limit=" + exactLimit + " must be in [0, 2^31)");
    }
    if (tailSize < 0 || tailSize > Integer.MAX_VALUE) {
      throw new AomgException("AOMG tail_size=" + tailSize + " must be in [0, 2^31)");
    }
  }

  private void configure(double alpha, int exactLimit, int tailSize) {
    this.configured = true;
    this.alpha = alpha;
    this.exactLimit = exactLimit;
    this.tailSize = tailSize;
    this.mapping = Mapping.of(alpha);
  }

  /** The bucket mapping (a transient cache: rebuilt after Java serialisation). */
  private Mapping mapping() {
    if (mapping == null) {
      mapping = Mapping.of(alpha);
    }
    return mapping;
  }

  // -- building ----------------------------------------------------------------------------

  public void add(Double boxed) {
    if (boxed == null) {
      skipped++;
    } else {
      add(boxed.doubleValue());
    }
  }

  public void add(double v) {
    if (!(v >= 0.0) || v == Double.POSITIVE_INFINITY) { // NaN fails v >= 0
      skipped++;
    } else if (v <= exactLimit && v == Math.floor(v)) {
      exact.add((long) v, 1);
    } else if (tailSize == 0) {
      buckets.add(mapping().bucketOf(v), 1);
    } else {
      offerTail(v);
    }
  }

  private void offerTail(double v) {
    if (heapSize < tailSize) {
      if (heapSize == heap.length) {
        heap = Arrays.copyOf(heap, (int) Math.min(tailSize, Math.max(8L, 2L * heap.length)));
      }
      int i = heapSize++;
      while (i > 0) { // sift up
        int parent = (i - 1) >>> 1;
        if (heap[parent] <= v) {
          break;
        }
        heap[i] = heap[parent];
        i = parent;
      }
      heap[i] = v;
    } else if (v > heap[0]) {
      buckets.add(mapping().bucketOf(heap[0]), 1);
      int i = 0; // sift down from the root
      while (true) {
        int child = 2 * i + 1;
        if (child >= heapSize) {
          break;
        }
        if (child + 1 < heapSize && heap[child + 1] < heap[child]) {
          child++;
        }
        if (heap[child] >= v) {
          break;
        }
        heap[i] = heap[child];
        i = child;
      }
      heap[i] = v;
    } else {
      buckets.add(mapping().bucketOf(v), 1);
    }
  }

  /** Adds {@code other}'s values to this summary; an {@link AomgException} if configs differ. */
  public AomgSummary mergeFrom(AomgSummary other) {
    if (!other.configured) {
      skipped += other.skipped;
      return this;
    }
    if (!configured) {
      configure(other.alpha, other.exactLimit, other.tailSize);
    } else if (alpha != other.alpha
        || exactLimit != other.exactLimit
        || tailSize != other.tailSize) {
      throw new AomgException(
          "cannot merge AOMG summaries of different configurations: " + describe() + " and "
              + other.describe());
    }
    exact.addAll(other.exact);
    buckets.addAll(other.buckets);
    for (int i = 0; i < other.heapSize; i++) {
      offerTail(other.heap[i]);
    }
    skipped += other.skipped;
    return this;
  }

  private String describe() {
    return "(alpha=" + alpha + ", exact_limit=" + exactLimit + ", tail_size=" + tailSize + ")";
  }

  // -- querying ----------------------------------------------------------------------------

  /** Number of valid values summarised. */
  public long count() {
    return exact.total() + buckets.total() + heapSize;
  }

  public long skipped() {
    return skipped;
  }

  public static void checkQuantile(double q) {
    if (!(q >= 0.0 && q <= 1.0)) {
      throw new AomgException("AOMG quantile " + q + " is outside [0, 1]");
    }
  }

  /**
   * The value at each quantile: {@code quantile_disc} rank {@code max(1, ceil(n·q))} of the
   * sorted multiset the summary stands for (exact values, bucket representatives, tail values).
   * NaN for every quantile of an empty summary.
   */
  public double[] quantiles(double[] qs) {
    double[] out = new double[qs.length];
    for (double q : qs) {
      checkQuantile(q);
    }
    long n = count();
    if (n == 0) {
      Arrays.fill(out, Double.NaN);
      return out;
    }
    // the three regions are each sorted by value: walk them merged, once, for every rank
    Integer[] order = new Integer[qs.length];
    long[] ranks = new long[qs.length];
    for (int j = 0; j < qs.length; j++) {
      order[j] = j;
      ranks[j] = Math.max((long) Math.ceil(n * qs[j]), 1L);
    }
    Arrays.sort(order, (a, b) -> Long.compare(ranks[a], ranks[b]));
    int e = exact.size();
    int b = buckets.size();
    long[] exactKeys = new long[e];
    long[] exactCounts = new long[e];
    exact.sorted(exactKeys, exactCounts);
    long[] bucketKeys = new long[b];
    long[] bucketCounts = new long[b];
    buckets.sorted(bucketKeys, bucketCounts);
    double[] tail = Arrays.copyOf(heap, heapSize);
    Arrays.sort(tail);
    int ie = 0;
    int ib = 0;
    int it = 0;
    long cumulative = 0;
    int next = 0;
    while (next < order.length) {
      double ve = ie < e ? (double) exactKeys[ie] : Double.POSITIVE_INFINITY;
      double vb = ib < b ? mapping().representative(bucketKeys[ib]) : Double.POSITIVE_INFINITY;
      double vt = it < tail.length ? tail[it] : Double.POSITIVE_INFINITY;
      double value;
      if (ie < e && ve <= vb && ve <= vt) {
        value = ve;
        cumulative += exactCounts[ie++];
      } else if (ib < b && vb <= vt) {
        value = vb;
        cumulative += bucketCounts[ib++];
      } else {
        value = vt;
        cumulative += 1;
        it++;
      }
      while (next < order.length && cumulative >= ranks[order[next]]) {
        out[order[next++]] = value;
      }
    }
    return out;
  }

  // -- bytes -------------------------------------------------------------------------------

  /** The buffer's bytes (the bean property Spark's encoder stores). */
  public byte[] getBytes() {
    return toBytes();
  }

  public void setBytes(byte[] data) {
    AomgSummary s = fromBytes(data);
    this.configured = s.configured;
    this.alpha = s.alpha;
    this.exactLimit = s.exactLimit;
    this.tailSize = s.tailSize;
    this.mapping = s.mapping;
    this.exact = s.exact;
    this.buckets = s.buckets;
    this.heap = s.heap;
    this.heapSize = s.heapSize;
    this.skipped = s.skipped;
  }

  public byte[] toBytes() {
    int e = exact.size();
    int b = buckets.size();
    Writer w = new Writer(32 + 4 * (e + b) + 8 * heapSize);
    w.raw(MAGIC);
    w.raw((byte) VERSION);
    w.float64(configured ? alpha : 0.0);
    w.varint(exactLimit);
    w.varint(tailSize);
    w.varint(skipped);
    w.varint(e);
    w.varint(b);
    w.varint(heapSize);
    long[] keys = new long[Math.max(e, b)];
    long[] counts = new long[keys.length];
    exact.sorted(keys, counts);
    long previous = 0;
    for (int i = 0; i < e; i++) {
      w.varint(keys[i] - previous);
      w.varint(counts[i]);
      previous = keys[i];
    }
    buckets.sorted(keys, counts);
    for (int i = 0; i < b; i++) {
      w.varint(i == 0 ? (keys[0] << 1) ^ (keys[0] >> 63) : keys[i] - keys[i - 1]);
      w.varint(counts[i]);
    }
    double[] tail = Arrays.copyOf(heap, heapSize);
    Arrays.sort(tail);
    for (double v : tail) {
      w.float64(v);
    }
    return w.bytes();
  }

  public static AomgSummary fromBytes(byte[] data) {
    if (data == null) {
      throw new AomgException("an AOMG summary must not be null");
    }
    if (data.length < 5 || !Arrays.equals(Arrays.copyOf(data, 4), MAGIC)) {
      throw new AomgException(
          "not an AOMG summary (" + data.length + " bytes without the AOMG header)");
    }
    if (data[4] != VERSION) {
      throw new AomgException(
          "AOMG summary of format version " + (data[4] & 0xff) + "; this build reads version "
              + VERSION);
    }
    Reader r = new Reader(data, 5);
    try {
      double alpha = r.float64();
      long exactLimit = r.varint();
      long tailSize = r.varint();
      AomgSummary s = new AomgSummary();
      if (alpha != 0.0) {
        checkConfig(alpha, exactLimit, tailSize);
        s.configure(alpha, (int) exactLimit, (int) tailSize);
      }
      s.skipped = r.varint();
      int e = r.length();
      int b = r.length();
      int t = r.length();
      s.exact = new CountMap(e);
      long key = 0;
      for (int i = 0; i < e; i++) {
        key += r.varint();
        s.exact.add(key, r.varint());
      }
      s.buckets = new CountMap(b);
      for (int i = 0; i < b; i++) {
        long delta = r.varint();
        key = i == 0 ? (delta >>> 1) ^ -(delta & 1) : key + delta;
        s.buckets.add(key, r.varint());
      }
      s.heap = new double[t];
      for (int i = 0; i < t; i++) {
        s.heap[i] = r.float64(); // ascending: already a min-heap
      }
      s.heapSize = t;
      if (r.position != data.length) {
        throw new AomgException("corrupt AOMG summary: " + (data.length - r.position)
            + " bytes after its end");
      }
      return s;
    } catch (ArrayIndexOutOfBoundsException exc) {
      throw new AomgException("corrupt AOMG summary: truncated at byte " + r.position);
    }
  }

  private static final class Writer {
    private byte[] buf;
    private int size;

    Writer(int capacity) {
      buf = new byte[capacity];
    }

    private void ensure(int more) {
      if (size + more > buf.length) {
        buf = Arrays.copyOf(buf, Math.max(buf.length * 2, size + more));
      }
    }

    void raw(byte[] bytes) {
      ensure(bytes.length);
      System.arraycopy(bytes, 0, buf, size, bytes.length);
      size += bytes.length;
    }

    void raw(byte b) {
      ensure(1);
      buf[size++] = b;
    }

    void varint(long v) {
      ensure(10);
      while ((v & ~0x7FL) != 0) {
        buf[size++] = (byte) ((v & 0x7F) | 0x80);
        v >>>= 7;
      }
      buf[size++] = (byte) v;
    }

    void float64(double d) {
      ensure(8);
      long bits = Double.doubleToRawLongBits(d);
      for (int i = 0; i < 8; i++) {
        buf[size++] = (byte) (bits >>> (8 * i));
      }
    }

    byte[] bytes() {
      return Arrays.copyOf(buf, size);
    }
  }

  private static final class Reader {
    private final byte[] data;
    int position;

    Reader(byte[] data, int position) {
      this.data = data;
      this.position = position;
    }

    long varint() {
      long v = 0;
      for (int shift = 0; shift < 64; shift += 7) {
        byte b = data[position++];
        v |= (long) (b & 0x7F) << shift;
        if (b >= 0) {
          return v;
        }
      }
      throw new AomgException("corrupt AOMG summary: varint longer than 64 bits");
    }

    int length() {
      long n = varint();
      if (n < 0 || n > data.length) {
        throw new AomgException("corrupt AOMG summary: impossible length " + n);
      }
      return (int) n;
    }

    double float64() {
      long bits = 0;
      for (int i = 0; i < 8; i++) {
        bits |= (long) (data[position++] & 0xFF) << (8 * i);
      }
      return Double.longBitsToDouble(bits);
    }
  }
}
