"""The project's configuration: defaults from ``conf/blaze.conf`` plus validated overrides.

All options are ``spark.blaze.*`` keys so they travel with ``spark-submit --conf`` and live in
the SparkConf beside Spark's own. An unknown ``spark.blaze.*`` key is an error: a typo in a
cache policy name must not silently run the default policy.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from blaze_errors import ConfigError, InputError
from costmodel.policy_table import MANAGER_POLICIES

__all__ = [
    "KEYWORDS",
    "POLICIES",
    "SETTINGS",
    "BlazeConfig",
    "Setting",
    "default_conf_path",
    "default_spark_conf",
    "local_dir_of",
    "merge_overrides",
    "parse_bool",
    "parse_bytes",
    "read_conf_file",
]

POLICIES = MANAGER_POLICIES  # the values of spark.blaze.policy
PROFILE_MODES = ("off", "record", "use")
USER_CACHE = ("weigh", "honor", "ignore")
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


def local_dir_of(conf: Mapping[str, str]) -> str:
    """The directory Spark stores blocks in: the first of ``SPARK_LOCAL_DIRS`` (which Spark
    prefers to its conf), else of ``spark.local.dir``, else the temp dir (its default)."""
    for value in (os.environ.get("SPARK_LOCAL_DIRS"), conf.get("spark.local.dir")):
        first = (value or "").split(",")[0].strip()
        if first:
            return first
    return tempfile.gettempdir()


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


def parse_bool(key: str, value: str) -> bool:
    """``true``/``false`` (any case, surrounding blanks ignored), exactly as Spark reads its
    own boolean confs: ``spark.eventLog.enabled=yes`` fails in Spark too, and a flag that
    reads ``yes`` as on in one place and off in another is worse than an error."""
    lowered = str(value).strip().lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise ConfigError(f"{key}={value!r} is not allowed: must be true or false")


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
        number = math.nan
    if not math.isfinite(number):
        raise ConfigError(
            f"{key}={value!r} is not allowed: must be a finite number of ms per MiB or 'calibrate'"
        )
    if number < 0:
        raise ConfigError(f"{key}={value!r} must not be negative")
    return number


def _capacity(key: str, value: str) -> int:
    text = value
    try:
        number = int(text)
    except ValueError:
        raise ConfigError(f"{key}={value!r} must be a whole number of decisions") from None
    if not 1 <= number <= MAX_EXPLAIN_CAPACITY:
        raise ConfigError(f"{key}={value!r} must be between 1 and {MAX_EXPLAIN_CAPACITY}")
    return number


@dataclass(frozen=True)
class Setting:
    """One ``spark.blaze.*`` setting: its key, the :func:`blaze.attach` keyword that sets it
    (the :class:`BlazeConfig` field it fills), and how its text is read."""

    key: str  # after "spark.blaze."
    field: str  # the BlazeConfig field and attach() keyword ("" for the flag itself)
    parse: Callable[[str, str], object]  # (full key, text) -> value
    default: str  # used when the key is absent or, for an optional key, empty
    optional: bool = False  # empty means "not set" (otherwise an empty value is an error)


def _text(key: str, value: str) -> str | None:
    return value or None


def _policy(key: str, value: str) -> str:
    return _choice(key, value, POLICIES)


def _budget(key: str, value: str) -> int | None:
    if value.lower() == "auto":
        return None
    budget = parse_bytes(value, key)
    if budget <= 0:
        raise ConfigError(f"{key}={value!r} must be positive")
    return budget


SETTINGS: tuple[Setting, ...] = (
    Setting("enabled", "enabled", parse_bool, "false"),
    Setting("policy", "policy", _policy, "blaze"),
    Setting("memoryBudget", "memory_budget", _budget, "auto"),
    Setting("autoCache", "auto_cache", parse_bool, "true"),
    Setting("autoUnpersist", "auto_unpersist", parse_bool, "true"),
    Setting("profile.mode", "profile_mode", lambda k, v: _choice(k, v, PROFILE_MODES), "off"),
    Setting("profile.path", "profile_path", _text, "", optional=True),
    Setting("disk.writeMsPerMiB", "disk_write_ms_per_mib", _ms_per_mib, "calibrate"),
    Setting("disk.readMsPerMiB", "disk_read_ms_per_mib", _ms_per_mib, "calibrate"),
    Setting("logLevel", "log_level", lambda k, v: _choice(k, v, LOG_LEVELS, upper=True), "INFO"),
    Setting("userCache", "user_cache", lambda k, v: _choice(k, v, USER_CACHE), "weigh"),
    Setting("explain.capacity", "explain_capacity", _capacity, "20000"),
    Setting("explain.path", "explain_path", _text, "", optional=True),
    Setting("report.path", "report_path", _text, "", optional=True),
)
"""Every ``spark.blaze.*`` setting, once: the conf keys, the attach() keywords and the
:class:`BlazeConfig` fields are all read from this table."""

KEYWORDS: dict[str, str] = {s.field: s.key for s in SETTINGS if s.field != "enabled"}
"""attach() keyword -> the ``spark.blaze.*`` key it sets (``enabled`` is implied)."""


def merge_overrides(conf: Mapping[str, str], policy, overrides: Mapping) -> dict[str, str]:
    """``conf`` with ``attach(policy=..., **overrides)`` applied: keywords of
    :data:`KEYWORDS` or full ``spark.blaze.*`` keys; None removes a key. An unknown keyword
    raises ``TypeError`` naming the known ones, as a Python call with a bad keyword would."""
    merged = dict(conf)
    if policy is not None:
        merged[PREFIX + "policy"] = str(policy)
    for name, value in overrides.items():
        if name.startswith(PREFIX):
            key = name
        elif name in KEYWORDS:
            key = PREFIX + KEYWORDS[name]
        else:
            known = ", ".join(sorted(KEYWORDS))
            raise TypeError(f"attach() got an unknown option {name!r} (known: {known})")
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, bool):
            merged[key] = "true" if value else "false"
        else:
            merged[key] = str(value)
    return merged


@dataclass(frozen=True)
class BlazeConfig:
    """Validated ``spark.blaze.*`` settings (one field per row of :data:`SETTINGS`)."""

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
    # "weigh": the program's persist/cache calls are carried out unless persisting costs more
    # than it saves (Blaze's rule only: costmodel.persisting); "honor": always carried out;
    # "ignore": ignored
    user_cache: str = "weigh"
    explain_capacity: int = 20_000  # decisions kept in the decision log's ring buffer
    explain_path: str | None = None  # None: next to the event log, if Spark writes one
    report_path: str | None = None  # also write the report as JSON here at detach

    KEYS = tuple(s.key for s in SETTINGS)
    # keys whose empty value means "not set"; any other key given empty is a mistake
    OPTIONAL = tuple(s.key for s in SETTINGS if s.optional)

    @classmethod
    def from_conf(cls, overrides: Mapping[str, str] | None = None) -> BlazeConfig:
        """Defaults from ``conf/blaze.conf`` overridden by ``overrides`` (any Spark conf dict).

        Keys outside ``spark.blaze.*`` are ignored; unknown ``spark.blaze.*`` keys raise, and so
        does an empty value for a key that has no "unset" meaning (``--conf
        spark.blaze.policy=`` silently running the default policy hides a broken script).
        """
        merged = {
            k: v for k, v in read_conf_file(default_conf_path()).items() if k.startswith(PREFIX)
        }
        for key, value in (overrides or {}).items():
            if key.startswith(PREFIX):
                merged[key] = str(value)
                name = key[len(PREFIX) :]
                if not str(value).strip() and name in cls.KEYS and name not in cls.OPTIONAL:
                    raise ConfigError(f"{key}='' is not allowed: the value is empty")
        unknown = sorted(k for k in merged if k[len(PREFIX) :] not in cls.KEYS)
        if unknown:
            known = ", ".join(PREFIX + k for k in cls.KEYS)
            raise ConfigError(f"unknown setting {unknown[0]} (known: {known})")
        values = {}
        for setting in SETTINGS:
            text = merged.get(PREFIX + setting.key, "").strip() or setting.default
            values[setting.field] = setting.parse(PREFIX + setting.key, text)
        if values["profile_mode"] != "off" and not values["profile_path"]:
            raise ConfigError(
                f"{PREFIX}profile.mode={values['profile_mode']} needs {PREFIX}profile.path"
            )
        return cls(**values)
