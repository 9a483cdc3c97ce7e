package org.blazespark;

import java.lang.reflect.Field;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import org.apache.spark.Dependency;
import org.apache.spark.api.java.JavaRDDLike;
import org.apache.spark.rdd.RDD;
import org.apache.spark.sql.classic.Dataset;
import org.apache.spark.sql.execution.CachedData;
import org.apache.spark.sql.execution.columnar.CachedRDDBuilder;
import scala.Option;
import scala.collection.Iterator;

/**
 * The lineage of the RDD a job is about to run on, read in one py4j call. The driver's Python
 * side asks before every job which datasets the job reads; walking the JVM graph from Python
 * costs about seven py4j round trips per RDD, which a program of many short jobs pays on every
 * job. The walk and its stopping rule are the Python fallback's ({@code JvmBridge.lineage}).
 * Also, in one call, which RDD holds a cached Dataset's batches ({@link #cachedRddId}), asked
 * at every {@code persist} of a DataFrame.
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

  /** What {@link #cachedRddId} answers for a Dataset that is not cached. */
  public static final int NOT_CACHED = -1;

  /** What {@link #cachedRddId} answers, asked not to build, for batches not built yet. */
  public static final int NOT_BUILT = -2;

  /**
   * The id of the RDD that holds a cached Dataset's columnar batches; {@link #NOT_CACHED}, or,
   * with {@code build} false, {@link #NOT_BUILT} while Spark has not made that RDD yet. The
   * driver's Python side asks at every {@code persist}: the chain from the session's cache
   * manager is about ten py4j round trips from Python, and building the batches' RDD there
   * (about 6 ms for a short plan, which the first action does not then save) is what a loop of
   * short DataFrame jobs paid every iteration. Unbuilt, the id is asked again at the start of
   * the next job, when the action that built it has made it.
   */
  public static int cachedRddId(Dataset<?> dataset, boolean build) {
    Option<CachedData> cached =
        dataset.sparkSession().sharedState().cacheManager().lookupCachedData(dataset);
    if (cached.isEmpty()) {
      return NOT_CACHED;
    }
    CachedRDDBuilder builder = cached.get().cachedRepresentation().cacheBuilder();
    if (!build && BUILT_RDD != null) {
      try {
        RDD<?> built = (RDD<?>) BUILT_RDD.get(builder);
        return built == null ? NOT_BUILT : built.id();
      } catch (IllegalAccessException e) {
        // not readable after all: build it, as asked of another Spark
      }
    }
    return builder.cachedColumnBuffers().id();
  }

  /** The builder's private field for its batches' RDD (null when another Spark lacks it). */
  private static final Field BUILT_RDD = builtRddField();

  private static Field builtRddField() {
    try {
      Field field = CachedRDDBuilder.class.getDeclaredField("_cachedColumnBuffers");
      field.setAccessible(true);
      return field;
    } catch (ReflectiveOperationException | RuntimeException e) {
      return null;
    }
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
