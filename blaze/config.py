"""The project's configuration: defaults from ``conf/blaze.conf`` plus validated overrides.

All options are ``spark.blaze.*`` keys so they travel with ``spark-submit --conf`` and live in
the SparkConf beside Spark's own. An unknown ``spark.blaze.*`` key is an error: a typo in a
cache policy name must not silently run the default policy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from blaze_errors import ConfigError, InputError
from costmodel.policy_table import MANAGER_POLICIES

__all__ = [
    "POLICIES",
    "BlazeConfig",
    "default_conf_path",
    "default_spark_conf",
    "parse_bytes",
    "read_conf_file",
]

POLICIES = MANAGER_POLICIES  # the values of spark.blaze.policy
PROFILE_MODES = ("off", "record", "use")
USER_CACHE = ("honor", "ignore")
MAX_EXPLAIN_CAPACITY = 10_000_000
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
PREFIX = "spark.blaze."

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def default_conf_path() -> Path:
    """``conf/blaze.conf`` of a source checkout, else the copy packaged inside ``blaze``."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "conf" / "blaze.conf", here / "_conf" / "blaze.conf"):
        if candidate.is_file():
            return candidate
    raise InputError("the default configuration conf/blaze.conf is missing from the install")


def read_conf_file(path: str | Path) -> dict[str, str]:
    """Parse a spark-defaults style file: ``key value`` per line, ``#`` comments."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"configuration file not found: {path}")
    conf: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        parts = line.split(None, 1)
        key = parts[0]
        if not key.startswith("spark."):
            raise ConfigError(f"{path}:{number}: {key!r} is not a spark.* key")
        conf[key] = parts[1].strip() if len(parts) > 1 else ""
    return conf


def default_spark_conf() -> dict[str, str]:
    """The non-blaze Spark settings of ``conf/blaze.conf`` (the embedded session's defaults)."""
    return {
        k: v for k, v in read_conf_file(default_conf_path()).items() if not k.startswith(PREFIX)
    }


def parse_bytes(text: str, key: str = "size") -> int:
    """``"512m"`` -> 536870912. Raises :class:`ConfigError` naming ``key`` on bad input."""
    match = _SIZE.match(str(text))
    if not match:
        raise ConfigError(f"{key}={text!r} is not a size (examples: 268435456, 256m, 1g)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def _bool(key: str, value: str) -> bool:
    lowered = str(value).strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ConfigError(f"{key}={value!r} must be true or false")


def _choice(key: str, value: str, choices: tuple[str, ...], *, upper: bool = False) -> str:
    normal = value.strip().upper() if upper else value.strip().lower()
    if normal not in choices:
        raise ConfigError(f"{key}={value!r} is not one of {', '.join(choices)}")
    return normal


def _ms_per_mib(key: str, value: str) -> float | None:
    if value.strip().lower() == "calibrate":
        return None
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(
            f"{key}={value!r} must be a number of ms per MiB or 'calibrate'"
        ) from None
    if number < 0:
        raise ConfigError(f"{key}={value!r} must not be negative")
    return number


def _capacity(key: str, value: str) -> int:
    text = value or "100000"
    try:
        number = int(text)
    except ValueError:
        raise ConfigError(f"{key}={value!r} must be a whole number of decisions") from None
    if not 1 <= number <= MAX_EXPLAIN_CAPACITY:
        raise ConfigError(f"{key}={value!r} must be between 1 and {MAX_EXPLAIN_CAPACITY}")
    return number


@dataclass(frozen=True)
class BlazeConfig:
    """Validated ``spark.blaze.*`` settings."""

    enabled: bool = False
    policy: str = "blaze"
    memory_budget: int | None = None  # bytes per executor; None = Spark's storage memory
    auto_cache: bool = True
    auto_unpersist: bool = True
    profile_mode: str = "off"
    profile_path: str | None = None
    disk_write_ms_per_mib: float | None = None  # None = calibrate on this machine
    disk_read_ms_per_mib: float | None = None
    log_level: str = "INFO"
    user_cache: str = "honor"  # "ignore": the program's persist/cache calls are ignored
    explain_capacity: int = 100_000  # decisions kept in the decision log's ring buffer
    explain_path: str | None = None  # None: next to the event log, if Spark writes one

    KEYS = (
        "enabled",
        "policy",
        "memoryBudget",
        "autoCache",
        "autoUnpersist",
        "profile.mode",
        "profile.path",
        "disk.writeMsPerMiB",
        "disk.readMsPerMiB",
        "logLevel",
        "userCache",
        "explain.capacity",
        "explain.path",
    )

    @classmethod
    def from_conf(cls, overrides: Mapping[str, str] | None = None) -> BlazeConfig:
        """Defaults from ``conf/blaze.conf`` overridden by ``overrides`` (any Spark conf dict).

        Keys outside ``spark.blaze.*`` are ignored; unknown ``spark.blaze.*`` keys raise.
        """
        merged = {
            k: v for k, v in read_conf_file(default_conf_path()).items() if k.startswith(PREFIX)
        }
        for key, value in (overrides or {}).items():
            if key.startswith(PREFIX):
                merged[key] = str(value)
        unknown = sorted(k for k in merged if k[len(PREFIX) :] not in cls.KEYS)
        if unknown:
            known = ", ".join(PREFIX + k for k in cls.KEYS)
            raise ConfigError(f"unknown setting {unknown[0]} (known: {known})")

        def get(name: str) -> str:
            return merged.get(PREFIX + name, "").strip()

        budget_text = get("memoryBudget") or "auto"
        budget = (
            None
            if budget_text.lower() == "auto"
            else parse_bytes(budget_text, PREFIX + "memoryBudget")
        )
        if budget is not None and budget <= 0:
            raise ConfigError(f"{PREFIX}memoryBudget={budget_text!r} must be positive")
        mode = _choice(PREFIX + "profile.mode", get("profile.mode") or "off", PROFILE_MODES)
        path = get("profile.path") or None
        if mode != "off" and not path:
            raise ConfigError(f"{PREFIX}profile.mode={mode} needs {PREFIX}profile.path")
        return cls(
            enabled=_bool(PREFIX + "enabled", get("enabled") or "false"),
            policy=_choice(PREFIX + "policy", get("policy") or "blaze", POLICIES),
            memory_budget=budget,
            auto_cache=_bool(PREFIX + "autoCache", get("autoCache") or "true"),
            auto_unpersist=_bool(PREFIX + "autoUnpersist", get("autoUnpersist") or "true"),
            profile_mode=mode,
            profile_path=path,
            disk_write_ms_per_mib=_ms_per_mib(
                PREFIX + "disk.writeMsPerMiB", get("disk.writeMsPerMiB") or "calibrate"
            ),
            disk_read_ms_per_mib=_ms_per_mib(
                PREFIX + "disk.readMsPerMiB", get("disk.readMsPerMiB") or "calibrate"
            ),
            log_level=_choice(
                PREFIX + "logLevel", get("logLevel") or "INFO", LOG_LEVELS, upper=True
            ),
            user_cache=_choice(PREFIX + "userCache", get("userCache") or "honor", USER_CACHE),
            explain_capacity=_capacity(PREFIX + "explain.capacity", get("explain.capacity")),
            explain_path=get("explain.path") or None,
        )
