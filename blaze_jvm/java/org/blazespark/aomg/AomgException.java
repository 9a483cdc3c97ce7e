package org.blazespark.aomg;

/**
 * A problem with an AOMG function's arguments or a summary's bytes, described in one line.
 *
 * <p>Why a class of its own: Python matches it by class (never by message) and re-raises the
 * message alone; an {@link IllegalArgumentException} because Spark reports those as the user's
 * mistake, not as an internal error.
 */
public final class AomgException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;

  public AomgException(String message) {
    super(message);
  }
}
