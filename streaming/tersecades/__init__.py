"""TerseCades (ATC 2018): lightweight compression inside the stream engine, and execution
directly on the compressed data.

Layers, each a small module:

* ``kernels``   — compiled (numba, cached on disk) bit packing, block decode, fused filter +
  aggregate and the encoder's per-row passes: what touches every row runs there;
* ``blocks``    — integer blocks (byte or bit lanes, block kinds, patched exceptions, stride,
  zone maps, CRC), the integer core of every codec (its numpy decoder is the reference);
* ``bitpack``   — bit packing at any width 0-64 in numpy (the kernels' reference);
* ``adaptive``  — per-block kind (FOR, delta, delta-of-delta, dictionary, dictionary with an
  escape stream) chosen by sampling, bit-packed lanes with patched exceptions;
* ``lightweight`` — the defaults: Adaptive integers, AlpFloat (decimal floats, exact patches);
* ``codecs``    — BaseDelta, LosslessFloat, TimestampWindow (lossy: window membership only),
  BoundedFloat (lossy: user-given absolute error), Dictionary (Arrow's dictionary_encode);
* ``spec``      — ``TerseSpec``: the encoded batch format (one Arrow row per block, so it
  travels through Spark unchanged), encode / parse (verify) / decode;
* ``operators`` — filter, count/sum/min/max/avg and group-by on the encoded blocks (kernels);
* ``operators_reference`` — the same operators in numpy, what the tests compare with;
* ``spark``     — ``mapInArrow`` functions: encode a stream, windowed filter + aggregate on the
  encoded stream, decode at the sink;
* ``reference`` — the same query on raw Arrow data (benchmark and test baseline).
"""

from streaming.tersecades.codecs import (
    BaseDelta,
    BoundedFloat,
    Codec,
    Dictionary,
    LosslessFloat,
    TimestampWindow,
)
from streaming.tersecades.errors import CorruptEncodingError, TerseError, UnfitValueError
from streaming.tersecades.lightweight import Adaptive, AlpFloat
from streaming.tersecades.operators import (
    Aggregate,
    Predicate,
    Selection,
    aggregate,
    select,
    windowed_filter_aggregate,
)
from streaming.tersecades.spec import EncodedBatch, TerseSpec

__all__ = [
    "Adaptive",
    "Aggregate",
    "AlpFloat",
    "BaseDelta",
    "BoundedFloat",
    "Codec",
    "CorruptEncodingError",
    "Dictionary",
    "EncodedBatch",
    "LosslessFloat",
    "Predicate",
    "Selection",
    "TerseError",
    "TerseSpec",
    "TimestampWindow",
    "UnfitValueError",
    "aggregate",
    "select",
    "windowed_filter_aggregate",
]
