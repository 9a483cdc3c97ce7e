package org.blazespark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.HashMap;
import java.util.Map;

/**
 * Describes each RDD to Python once: a job start's stages list every narrow ancestor of their
 * RDDs, so a loop of short DataFrame jobs sent the same tens of kB of RDD descriptions with
 * every job, and Python spent most of its per-job time reading them again. A slimmed job start
 * keeps each stage's RDD ids in order ({@code "Blaze RDD IDs"}) and, in {@code "RDD Info"},
 * only the RDDs not described before or whose description changed since in a field the
 * lineage reads (a storage level set, a checkpoint's new parents).
 *
 * <p>Both sides keep what was described within an <em>epoch</em> ({@code "Blaze RDD Epoch"}):
 * when the book passes {@link #LIMIT} RDDs, or a slimmed line was not delivered, or Python met
 * an id it was never told of, {@link #restart} starts a new epoch, whose lines describe every
 * RDD again, and Python drops its own book when it sees the new epoch. Lines are slimmed on the
 * bus thread in event order, so every line of an epoch follows the ones that described its
 * RDDs.
 */
final class RddDescriptions {
  /** RDDs remembered per epoch: bounds the book on both sides in a program of many jobs. */
  static final int LIMIT = 4096;

  private static final ObjectMapper MAPPER = new ObjectMapper();

  /** The fields of an RDD's description Python reads (its parser says which): a change in any
   * (a storage level set, a checkpoint's new parents) describes the RDD again. */
  private final String[] readFields;

  RddDescriptions(String[] readFields) {
    this.readFields = readFields.clone();
  }

  // guarded by this: slimmed on the bus thread, restarted from Python's drain thread too
  private final Map<Integer, String> described = new HashMap<>();
  private int epoch = 0;

  /** The job start line slimmed as above; the line unchanged when it cannot be read. */
  synchronized String slim(String jobStart) {
    ObjectNode tree;
    try {
      tree = (ObjectNode) MAPPER.readTree(jobStart);
    } catch (Exception e) {
      return jobStart;
    }
    for (JsonNode stage : tree.path("Stage Infos")) {
      for (JsonNode rdd : stage.path("RDD Info")) {
        if (!rdd.path("RDD ID").canConvertToInt()) {
          return jobStart; // not a line this class can vouch for: sent whole
        }
      }
    }
    if (described.size() > LIMIT) {
      restart();
    }
    tree.put("Blaze RDD Epoch", epoch);
    for (JsonNode node : tree.path("Stage Infos")) {
      ObjectNode stage = (ObjectNode) node;
      ArrayNode ids = stage.putArray("Blaze RDD IDs");
      ArrayNode kept = MAPPER.createArrayNode();
      for (JsonNode rdd : stage.path("RDD Info")) {
        int id = rdd.path("RDD ID").intValue();
        ids.add(id);
        StringBuilder signature = new StringBuilder();
        for (String field : readFields) {
          signature.append(rdd.path(field)).append('\n');
        }
        if (!signature.toString().equals(described.put(id, signature.toString()))) {
          kept.add(rdd);
        }
      }
      stage.set("RDD Info", kept);
    }
    try {
      return MAPPER.writeValueAsString(tree);
    } catch (Exception e) {
      restart(); // the book took this line's RDDs, which now go unsent
      return jobStart;
    }
  }

  /** Forget every description: the next job start describes all of its RDDs again. */
  synchronized void restart() {
    described.clear();
    epoch++;
  }

  synchronized int epoch() {
    return epoch;
  }
}
