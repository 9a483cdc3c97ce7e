"""The parsing/feature pipeline in front of the ML programs: text -> records -> features.

Real programs reach their cached training data through such a pipeline, and it is what a
lost cached partition costs: re-reading the text, parsing every field, expanding features.
``kmeans`` and ``lr`` share it, and the DuckDB references compute the same expansion in SQL.
"""

from __future__ import annotations

import numpy as np

from jobs.datagen import read_lines

__all__ = ["expand", "features", "parse_record", "records"]


def parse_record(line: str) -> tuple[float, np.ndarray]:
    """``"head,x1,...,xd"`` -> (head, x): an id for points, a 0/1 label for labeled data."""
    fields = line.split(",")
    return float(fields[0]), np.array([float(v) for v in fields[1:]], dtype=np.float64)


def expand(x: np.ndarray) -> np.ndarray:
    """Feature vector: the raw values and their squares."""
    return np.concatenate((x, x * x))


def records(sc, data_path):
    """Parsed records of the dataset's text lines."""
    return read_lines(sc, data_path).map(parse_record)


def features(record_rdd):
    """(head, expanded features) of every parsed record."""
    return record_rdd.map(lambda r: (r[0], expand(r[1])))
