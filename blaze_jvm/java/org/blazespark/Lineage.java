package org.blazespark;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import org.apache.spark.Dependency;
import org.apache.spark.api.java.JavaRDDLike;
import org.apache.spark.rdd.RDD;
import scala.collection.Iterator;

/**
 * The lineage of the RDD a job is about to run on, read in one py4j call. The driver's Python
 * side asks before every job which datasets the job reads; walking the JVM graph from Python
 * costs about seven py4j round trips per RDD, which a program of many short jobs pays on every
 * job. The walk and its stopping rule are the Python fallback's ({@code JvmBridge.lineage}).
 */
public final class Lineage {
  private Lineage() {}

  /**
   * Lines "id parent parent ..." for {@code root} and its ancestors, depth first, at most
   * {@code limit} RDDs. A persisted RDD whose cached-partition count (in {@code cachedCounts},
   * "id:count" pairs separated by commas) reaches its number of partitions is listed without
   * parents: the job reads its cache, not its ancestors. {@code start}: an RDD or a JavaRDD.
   */
  public static String walk(Object start, String cachedCounts, int limit) {
    // a JavaRDD is unwrapped here: from Python that saves a round trip per job
    RDD<?> root = start instanceof JavaRDDLike<?, ?> j ? j.rdd() : (RDD<?>) start;
    Map<Integer, Integer> cached = parseCounts(cachedCounts);
    StringBuilder out = new StringBuilder();
    Set<Integer> seen = new HashSet<>();
    Deque<RDD<?>> stack = new ArrayDeque<>();
    stack.push(root);
    int count = 0;
    while (!stack.isEmpty()) {
      RDD<?> rdd = stack.pop();
      if (!seen.add(rdd.id())) {
        continue;
      }
      if (count++ >= limit) {
        break;
      }
      out.append(rdd.id());
      boolean readFromCache =
          rdd.getStorageLevel().isValid()
              && cached.getOrDefault(rdd.id(), 0) >= rdd.getNumPartitions();
      if (!readFromCache) {
        Deque<RDD<?>> parents = new ArrayDeque<>();
        Iterator<Dependency<?>> deps = rdd.dependencies().iterator();
        while (deps.hasNext()) {
          RDD<?> parent = deps.next().rdd();
          out.append(' ').append(parent.id());
          parents.push(parent);
        }
        for (RDD<?> parent : parents) {
          stack.push(parent); // reversed twice: the first parent is visited first
        }
      }
      out.append('\n');
    }
    return out.toString();
  }

  private static Map<Integer, Integer> parseCounts(String text) {
    Map<Integer, Integer> counts = new HashMap<>();
    if (text == null || text.isEmpty()) {
      return counts;
    }
    for (String pair : text.split(",")) {
      int colon = pair.indexOf(':');
      counts.put(
          Integer.parseInt(pair.substring(0, colon)), Integer.parseInt(pair.substring(colon + 1)));
    }
    return counts;
  }
}
