package org.blazespark;

/** One decision of the driver's engine for one executor: drop, spill, or spill for good one
 * RDD block ({@link #TO_DISK}: later reads of the disk copy are not cached in memory again),
 * or allow a block spilled for good back ({@link #ALLOW}: its next read may cache it). */
public record Order(int rddId, int split, int action) {
  public static final int DROP = 0;
  public static final int SPILL = 1;
  public static final int TO_DISK = 2;
  public static final int ALLOW = 3;

  boolean spill() {
    return action == SPILL || action == TO_DISK;
  }

  /** The action as the outcome lines name it (a spill for good is a spill). */
  String word() {
    return action == DROP ? "drop" : action == ALLOW ? "allow" : "spill";
  }
}
