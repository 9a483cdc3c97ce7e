package org.blazespark.aomg;

import java.util.Arrays;

/**
 * Counts per long key: open addressing with linear probing, growing by doubling.
 *
 * <p>Why not a {@code HashMap<Long, Long>}: a summary is updated once per record, and a boxed
 * map allocates on every new key and every increment; this one allocates only when it grows,
 * and a summary of a sub-window of twenty records costs a few hundred bytes, not a dense array
 * over every possible value. {@link Long#MIN_VALUE} marks an empty slot (no exact value or
 * bucket index can be it).
 */
final class CountMap {
  private static final long EMPTY = Long.MIN_VALUE;
  private long[] keys;
  private long[] counts;
  private int size;

  CountMap() {
    this(8);
  }

  CountMap(int expected) {
    int capacity = Integer.highestOneBit(Math.max(8, expected * 2 - 1)) << 1;
    keys = new long[capacity];
    counts = new long[capacity];
    Arrays.fill(keys, EMPTY);
  }

  int size() {
    return size;
  }

  void add(long key, long count) {
    int mask = keys.length - 1;
    int slot = mix(key) & mask;
    while (true) {
      long present = keys[slot];
      if (present == key) {
        counts[slot] += count;
        return;
      }
      if (present == EMPTY) {
        keys[slot] = key;
        counts[slot] = count;
        if (++size * 2 > keys.length) {
          grow();
        }
        return;
      }
      slot = (slot + 1) & mask;
    }
  }

  void addAll(CountMap other) {
    long[] k = other.keys;
    long[] c = other.counts;
    for (int i = 0; i < k.length; i++) {
      if (k[i] != EMPTY) {
        add(k[i], c[i]);
      }
    }
  }

  long total() {
    long sum = 0;
    for (int i = 0; i < keys.length; i++) {
      if (keys[i] != EMPTY) {
        sum += counts[i];
      }
    }
    return sum;
  }

  /** Keys ascending in {@code sortedKeys}, their counts at the same index in {@code sortedCounts}. */
  void sorted(long[] sortedKeys, long[] sortedCounts) {
    int n = 0;
    for (int i = 0; i < keys.length; i++) {
      if (keys[i] != EMPTY) {
        sortedKeys[n++] = keys[i];
      }
    }
    Arrays.sort(sortedKeys, 0, n);
    for (int i = 0; i < n; i++) {
      sortedCounts[i] = get(sortedKeys[i]);
    }
  }

  private long get(long key) {
    int mask = keys.length - 1;
    int slot = mix(key) & mask;
    while (keys[slot] != key) {
      slot = (slot + 1) & mask;
    }
    return counts[slot];
  }

  private void grow() {
    long[] oldKeys = keys;
    long[] oldCounts = counts;
    keys = new long[oldKeys.length * 2];
    counts = new long[oldKeys.length * 2];
    Arrays.fill(keys, EMPTY);
    size = 0;
    for (int i = 0; i < oldKeys.length; i++) {
      if (oldKeys[i] != EMPTY) {
        add(oldKeys[i], oldCounts[i]);
      }
    }
  }

  private static int mix(long key) {
    long h = key * 0x9E3779B97F4A7C15L;
    return (int) (h ^ (h >>> 32));
  }
}
