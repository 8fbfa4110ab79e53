"""Strict parsing of environment variables.

Every reader raises ``ImproperlyConfigured`` naming the variable and the bad value, so a
typo stops start-up instead of silently becoming a default.
"""

import ipaddress
import os
import re

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


# Values for variables the environment leaves unset: the local file `make run` writes (exceptions_app.local_env).
_local_values: dict[str, str] = {}


def env_use_local_values(values: dict[str, str]) -> None:
    _local_values.clear()
    _local_values.update(values)


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        value = _local_values.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_str(name: str, default: str | None = None) -> str | None:
    value = _raw(name)
    return default if value is None else value


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean: use one of true/false, 1/0, yes/no, on/off")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum of {minimum}")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={number} is above the maximum of {maximum}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return list(default)
    return [part.strip() for part in value.split(",") if part.strip()]


_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$", re.I
)


def env_hosts_and_networks(name: str, default: list[str]) -> list[str]:
    """Comma-separated host names and CIDR ranges (or single addresses); anything else is refused."""
    entries = env_list(name, default)
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            if not _HOST_NAME.match(entry):
                raise ImproperlyConfigured(f"{name}: {entry!r} is neither a host name nor a CIDR range") from None
    return entries


def env_database(name: str, *, default_sqlite_path: str, pool: bool) -> dict:
    value = _raw(name)
    if value is None:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": default_sqlite_path,
            # WAL lets the web, the worker and beat read while one of them writes.
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    if not value.startswith(("postgres://", "postgresql://", "sqlite://")):
        raise ImproperlyConfigured(f"{name}={value!r} is not a database URL: use postgres://user:pass@host:5432/name")
    try:
        config = dj_database_url.parse(value)
    except ValueError as error:
        raise ImproperlyConfigured(f"{name}={value!r} is not a database URL: {error}") from None
    if config["ENGINE"] == "django.db.backends.postgresql":
        if not config.get("NAME"):
            raise ImproperlyConfigured(f"{name}={value!r} names no database")
        options = config.setdefault("OPTIONS", {})
        # Long reviews must never hold a transaction open; kill sessions that try.
        options["options"] = "-c idle_in_transaction_session_timeout=60000"
        if pool:
            options["pool"] = {"min_size": 1, "max_size": 10, "timeout": 10}
            config["CONN_MAX_AGE"] = 0
        else:
            config["CONN_MAX_AGE"] = 60
            config["CONN_HEALTH_CHECKS"] = True
    return config


def env_redis_url(name: str) -> str | None:
    value = _raw(name)
    if value is None:
        return None
    if not value.startswith(("redis://", "rediss://")):
        raise ImproperlyConfigured(f"{name}={value!r} is not a Redis URL: use redis://host:6379/0")
    return value
