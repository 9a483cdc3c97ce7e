"""Compiled TerseCades kernels (numba): what touches every row of every block.

* ``bits``   — the packed lane layout: unpack (a period of 64 values from a table of word
  indices and shifts; byte widths as plain uint8/16/32/64 reads) and pack;
* ``decode`` — every block kind (frame of reference with or without stride, delta,
  delta-of-delta, dictionary, escape), exceptions and nulls, straight into the column's dtype;
* ``scan``   — filter + aggregate fused per block: zone maps first, predicate constants
  translated into code space and compared with the packed codes (``predicates``), aggregates
  from the same lanes, group keys constant per block or decoded per block;
* ``validate`` — the structural checks every parse runs, one pass over the blocks;
* ``encode`` — framing, width choice, exceptions and packing of clean blocks in one pass per
  block, packing with patched exceptions, escape codes.

The pure-numpy paths they replaced stay as references the tests compare against, byte for
byte or answer for answer: ``bitpack.pack_blocks``, ``blocks.reference_decode_int64``,
``blocks.pack_exceptions``, ``adaptive.encode_adaptive(compiled=False)`` and
``operators_reference``.

Every kernel is ``@njit(cache=True)`` and takes its inputs read-only (``bits.readonly``), so
each has one compiled signature whether its arrays come from Arrow or numpy. The first call on
a machine compiles and writes the machine code to ``__pycache__`` next to these files; later
processes (tests, Spark's Python workers) load it. Measured here (2 cores shared with other
sessions, load 12-25): compiling everything costs ~25 s of CPU (53-77 s wall under that load);
loading it from the cache ~0.5 s of CPU per process.
"""
