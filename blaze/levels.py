"""``blaze.BLAZE``: the storage level that hands a dataset to the cache manager.

Why a :class:`pyspark.StorageLevel` subclass: ``rdd.persist(blaze.BLAZE)`` must keep working
in a program that runs without the manager (it then behaves as ``MEMORY_AND_DISK``, a safe
default), and PySpark converts any ``StorageLevel`` by its flags, so no PySpark code needs to
know the subclass. With a manager attached, its persist wrapper recognises the subclass and
persists at the level the policy needs instead.
"""

from __future__ import annotations

from pyspark import StorageLevel

__all__ = ["BLAZE", "BlazeStorageLevel", "is_blaze_level", "storage_level"]


class BlazeStorageLevel(StorageLevel):
    """``MEMORY_AND_DISK`` flags, tagged so an attached manager takes the dataset over."""

    def __init__(self) -> None:
        super().__init__(True, True, False, False, 1)

    def __repr__(self) -> str:
        return "BLAZE"

    def __str__(self) -> str:
        return "Blaze-managed (memory, disk or none per partition)"


BLAZE = BlazeStorageLevel()


def is_blaze_level(level: object) -> bool:
    return isinstance(level, BlazeStorageLevel)


def storage_level(name: str, *, deserialized: bool = False) -> StorageLevel:
    """``"MEMORY_ONLY"`` / ``"MEMORY_AND_DISK"`` (deserialized for DataFrame caches)."""
    if name == "MEMORY_ONLY":
        return StorageLevel(False, True, False, deserialized, 1)
    if name == "MEMORY_AND_DISK":
        return StorageLevel(True, True, False, deserialized, 1)
    raise ValueError(f"unsupported managed storage level {name!r}")
