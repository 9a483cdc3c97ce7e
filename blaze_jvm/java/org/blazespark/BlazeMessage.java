package org.blazespark;

import java.io.Serializable;

/** Marks a message an executor half sends to the driver half through PluginContext.send/ask. */
public interface BlazeMessage extends Serializable {}
