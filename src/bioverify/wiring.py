"""The service's collaborators, typed and built once: :func:`build_services`.

The API (``create_app``), the worker and the CLI all call :func:`build_services`, so
there is one way the parts are made and one place that decides what "ready" means.
A part that cannot be made or does not work (key ring, master key, signer, audit
log, face models, the 1:N gallery) is recorded in :attr:`Services.problems` instead:
readiness fails and every request that needs the service answers 503
(``require_ready``). A missing part is never replaced by one that silently does
nothing (fail closed).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import structlog
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from bioverify.accounts.models import Client
from bioverify.accounts.secretbox import KeyRingSealer
from bioverify.accounts.throttle import FailureThrottle, MemoryFailureThrottle, RedisFailureThrottle
from bioverify.alerts.rules import load_rules
from bioverify.alerts.service import AlertService
from bioverify.api.security_events import SecurityEvents
from bioverify.audit.models import (
    AuditCheckpoint,
    AuditEntry,
    AuditHead,
    AuditQueued,
    AuditTile,
)
from bioverify.audit.sequencer import Sequencer
from bioverify.audit.service import AuditLog
from bioverify.audit.wiring import build_audit
from bioverify.config import Settings
from bioverify.crypto.datakeys import TemplateCipher
from bioverify.crypto.keyring import MASTER_KEY_ENV, KeyRing
from bioverify.crypto.sqlstore import SqlDataKeyStore
from bioverify.documents.portrait import load_threshold as load_portrait_threshold
from bioverify.documents.scanner import DocumentScanner
from bioverify.engine.interfaces import Engine as BioEngine
from bioverify.errors import MODEL_LOAD_FAILED, BioverifyError, ServiceUnavailable
from bioverify.sessions.biometrics import Biometrics
from bioverify.sessions.capture import CaptureService
from bioverify.sessions.document_step import DocumentStep
from bioverify.sessions.effects import ServiceEffects
from bioverify.sessions.gallery_sync import GallerySync
from bioverify.sessions.gallery_wiring import GALLERY, load_gallery
from bioverify.sessions.identity_vault import IdentityVault
from bioverify.sessions.service import SessionEffects, SessionService
from bioverify.storage.database import make_engine, session_factory, transaction
from bioverify.webhooks.egress import EgressGuard
from bioverify.webhooks.signing import new_webhook_secret

if TYPE_CHECKING:
    from starlette.requests import Request

    from bioverify.webhooks.dispatcher import Dispatcher

Clock = Callable[[], dt.datetime]
T = TypeVar("T")
log = structlog.get_logger("bioverify.wiring")

#: Called with (request, reason, client id header) on every rejected credential.
AuthFailureHook = Callable[["Request", str, str], None]
#: Called with (request, exception) on every unexpected server error.
ServerErrorHook = Callable[["Request", BaseException], None]

#: Seconds a client is told to wait (Retry-After) while the service is not ready.
NOT_READY_RETRY_S = 5

#: The parts whose failure :attr:`Services.problems` names (also /readyz check names).
KEYS, MASTER_KEY, SIGNER, AUDIT, MODELS = "keys", "master key", "signer", "audit log", "models"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class NotReady(ServiceUnavailable):
    """A collaborator the request needs is missing or broken (503 with Retry-After)."""


@dataclass
class Services:
    """Everything the routes, the worker and the CLI use, one typed field per part.

    Optional fields are ``None`` exactly when their part is named in ``problems``;
    reach them through the ``need_*`` accessors, which answer 503 instead.
    """

    settings: Settings
    db_engine: Engine
    factory: sessionmaker[Session]
    clock: Clock
    throttle: FailureThrottle
    egress: EgressGuard
    alerts: AlertService
    audit: AuditLog
    keyring: KeyRing | None
    #: Gives queued audit entries their indexes and signs checkpoints: ``None`` in a
    #: process that does not sequence (the CLI) or has no signing key (not ready).
    sequencer: Sequencer | None
    #: Audit entries, alerts and webhooks tied to session transitions.
    effects: ServiceEffects | None
    #: Security events (refused tokens, tampering, rejected credentials), aggregated
    #: per window before they reach the audit log.
    security_events: SecurityEvents | None
    sessions: SessionService | None
    engine: BioEngine | None
    biometrics: Biometrics | None
    capture: CaptureService | None
    #: Loads, follows (change log) and snapshots the 1:N gallery of ``biometrics``;
    #: ``None`` exactly when ``biometrics`` is.
    gallery_sync: GallerySync | None
    #: The document step (identity_document sessions); None when its threshold is missing.
    documents: DocumentStep | None
    #: whsec_ secret of the operator alert webhook (None when no alert webhook is set).
    operator_webhook_secret: str | None
    #: Parts that failed at start -> why (no secrets, no paths to key material).
    problems: dict[str, str] = field(default_factory=dict)
    on_auth_failure: AuthFailureHook | None = None
    on_server_error: ServerErrorHook | None = None
    #: Set by the worker running in this process, so routes can wake it.
    dispatcher: Dispatcher | None = None

    def require_ready(self) -> None:
        """Raise :class:`NotReady` (503) while any part is missing or broken."""
        if self.problems:
            failing = ", ".join(sorted(self.problems))
            codes = [MODEL_LOAD_FAILED] if MODELS in self.problems else []
            raise NotReady(
                f"The service is not ready ({failing}); try again shortly",
                codes=codes,
                retry_after=NOT_READY_RETRY_S,
            )

    def checks(self) -> dict[str, bool]:
        """Readiness of each part (``/readyz``; the store is checked there, live)."""
        engine_up = False
        if self.engine is not None:
            try:
                engine_up = self.engine.ready()
            except Exception:  # noqa: BLE001 - a failing probe means not ready
                engine_up = False
        return {
            KEYS: self.keyring is not None and KEYS not in self.problems,
            MASTER_KEY: self.keyring is not None and MASTER_KEY not in self.problems,
            SIGNER: self.keyring is not None and SIGNER not in self.problems,
            AUDIT: AUDIT not in self.problems,
            MODELS: engine_up and MODELS not in self.problems,
            GALLERY: GALLERY not in self.problems,
        }

    def _need(self, part: T | None) -> T:
        self.require_ready()
        if part is None:  # a part not listed in problems was never built: still closed
            raise NotReady("The service is not ready; try again shortly", retry_after=5)
        return part

    def need_keyring(self) -> KeyRing:
        return self._need(self.keyring)

    def need_effects(self) -> ServiceEffects:
        return self._need(self.effects)

    def need_sessions(self) -> SessionService:
        return self._need(self.sessions)

    def need_capture(self) -> CaptureService:
        return self._need(self.capture)

    def need_documents(self) -> DocumentStep:
        return self._need(self.documents)

    def need_biometrics(self) -> Biometrics:
        return self._need(self.biometrics)

    def need_sequencer(self) -> Sequencer:
        return self._need(self.sequencer)

    def need_gallery_sync(self) -> GallerySync:
        return self._need(self.gallery_sync)


def build_throttle(settings: Settings) -> FailureThrottle:
    if settings.redis_url:
        return RedisFailureThrottle(
            settings.redis_url,
            limit=settings.auth_failure_limit,
            window_s=settings.auth_failure_window_s,
        )
    return MemoryFailureThrottle(
        limit=settings.auth_failure_limit, window_s=settings.auth_failure_window_s
    )


def _first_line(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, BioverifyError) else str(exc)
    return (text.splitlines() or [type(exc).__name__])[0][:200]


def load_keyring(settings: Settings) -> KeyRing:
    """The key ring in the data dir, with ``BIOVERIFY_MASTER_KEY`` when set."""
    master = settings.master_key.reveal() if settings.master_key else None
    return KeyRing.load_or_create(settings.keys_dir, master_key_b64=master)


def check_master_key(keyring: KeyRing, factory: sessionmaker[Session]) -> None:
    """Raise unless the master key opens what it sealed (the newest client's webhook
    secret): a valid but *different* master key would otherwise pass every start-up
    check and fail only at the first webhook or template decrypt."""
    with transaction(factory) as db:
        row = db.execute(
            select(Client.id, Client.webhook_secrets).order_by(Client.created_at.desc()).limit(1)
        ).first()
    if row is None or not row.webhook_secrets:
        return  # a new install: nothing sealed yet
    KeyRingSealer(keyring).open(row.id, row.webhook_secrets[0])


def check_signer(keyring: KeyRing) -> None:
    """Raise unless the signing key signs and its public half verifies."""
    signing = keyring.signing_key()
    probe = b"bioverify readiness probe"
    signing.public_key().verify(signing.sign(probe), probe)


def check_audit_log(audit: AuditLog, factory: sessionmaker[Session]) -> None:
    """Raise unless every table of the audit log (queue, entries, tiles, head, kept
    checkpoints) can be read: a write or the sequencer would otherwise fail later."""
    with transaction(factory) as db:
        for table in (AuditQueued, AuditEntry, AuditTile, AuditHead, AuditCheckpoint):
            db.execute(select(table).limit(1)).first()
        audit.latest_checkpoint(db)


def load_engine(settings: Settings) -> BioEngine:
    """The face engine (process pool); raises ``EngineUnavailable`` when models fail."""
    from bioverify.engine.pool import PoolEngine  # noqa: PLC0415 - OpenCV only when asked

    workers = settings.engine_workers if settings.engine_workers >= 0 else None
    return PoolEngine(workers=workers, models_dir=settings.models_dir)


def operator_secret(settings: Settings) -> str:
    """The operator alert webhook's whsec_ secret: from the environment, or kept 0600."""
    if settings.alert_webhook_secret is not None:
        return settings.alert_webhook_secret.reveal()
    path = settings.keys_dir / "alert-webhook.secret"
    if not path.exists():
        settings.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first: use theirs
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(new_webhook_secret())
            log.info("alert_webhook_secret_created", path=str(path))
    return path.read_text().strip()


def build_documents(
    capture: CaptureService,
    vault: IdentityVault,
    biometrics: Biometrics,
    scanner: DocumentScanner | None,
) -> DocumentStep | None:
    """The document step; None (503 on its route) when the portrait threshold is missing.

    The OCR and face models load on the scanner's thread with the first document, so a
    face-only deployment never loads them; a load failure answers 503 [-20] then.
    """
    try:
        threshold = load_portrait_threshold()
    except BioverifyError as exc:
        log.error("documents_unavailable", reason=_first_line(exc))
        return None
    return DocumentStep(
        capture.guard,
        vault=vault,
        biometrics=biometrics,
        scanner=scanner if scanner is not None else DocumentScanner(),
        threshold=threshold.threshold,
    )


def _checked_keyring(
    settings: Settings,
    keyring: KeyRing | None,
    factory: sessionmaker[Session],
    problems: dict[str, str],
) -> KeyRing | None:
    """The key ring (given or loaded) with its master key and signer checked; what
    fails is recorded in ``problems``."""
    ring = keyring
    if ring is None:
        try:
            ring = load_keyring(settings)
        except BioverifyError as exc:
            # A bad BIOVERIFY_MASTER_KEY stops `serve` earlier (config check); here it
            # is whatever else made the ring unloadable (files, permissions).
            log.error("keyring_unavailable", reason=_first_line(exc))
            part = MASTER_KEY if MASTER_KEY_ENV in exc.message else KEYS
            problems[part] = _first_line(exc)
    if ring is not None:
        for part, check in (
            (MASTER_KEY, lambda r: check_master_key(r, factory)),
            (SIGNER, check_signer),
        ):
            try:
                check(ring)
            except Exception as exc:  # noqa: BLE001 - any failure means "not usable"
                log.error("collaborator_unusable", part=part, error=type(exc).__name__)
                problems[part] = f"{part} is not usable ({type(exc).__name__})"
    return ring


def build_services(
    settings: Settings,
    *,
    db_engine: Engine | None = None,
    clock: Clock | None = None,
    throttle: FailureThrottle | None = None,
    egress: EgressGuard | None = None,
    keyring: KeyRing | None = None,
    bio_engine: BioEngine | None = None,
    session_effects: SessionEffects | None = None,
    document_scanner: DocumentScanner | None = None,
    with_engine: bool = True,
    sequence: bool = True,
) -> Services:
    """Make every part once; record, never hide, the ones that fail.

    Arguments other than ``settings`` replace a part (tests build real parts with
    their own store, clock or keys; ``session_effects`` replaces what the session
    service calls on transitions, for fault tests). ``with_engine=False`` (CLI commands that never
    analyse a face) skips loading the models; ``sequence=False`` (CLI commands, which only
    queue audit entries) builds no audit sequencer.
    """
    clock = clock or _utcnow
    engine = db_engine or make_engine(settings.resolved_database_url)
    factory = session_factory(engine)
    problems: dict[str, str] = {}
    alerts = AlertService(
        load_rules(Path(settings.alert_rules_file) if settings.alert_rules_file else None),
        clock=clock,
    )

    ring = _checked_keyring(settings, keyring, factory, problems)
    audit = AuditLog()
    sequencer: Sequencer | None = None
    if ring is not None and sequence:
        signing_ring: KeyRing = ring
        audit, sequencer = build_audit(
            engine, settings, signer=lambda: signing_ring.signing_key().private_key, clock=clock
        )
    try:
        check_audit_log(audit, factory)
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable"
        log.error("collaborator_unusable", part=AUDIT, error=type(exc).__name__)
        problems[AUDIT] = f"the audit log cannot be read ({type(exc).__name__})"

    bio = bio_engine
    if bio is None and with_engine:
        try:
            bio = load_engine(settings)
        except BioverifyError as exc:
            # No silent fallback: /readyz fails and requests answer 503 with -20.
            log.error("engine_unavailable", reason=_first_line(exc))
            problems[MODELS] = _first_line(exc)

    sessions: SessionService | None = None
    biometrics: Biometrics | None = None
    capture: CaptureService | None = None
    gallery_sync: GallerySync | None = None
    service_effects: ServiceEffects | None = None
    security: SecurityEvents | None = None
    if ring is not None:
        # One cipher (per-tenant data keys) for templates, portraits and document fields.
        vault = IdentityVault(TemplateCipher(ring, SqlDataKeyStore(factory)))
        service_effects = ServiceEffects(
            audit=audit,
            keyring=ring,
            alerts=alerts,
            clock=clock,
            operator_webhook_url=settings.alert_webhook_url or None,
        )
        security = SecurityEvents(service_effects, ring)
        sessions = SessionService(
            factory,
            public_url=settings.public_url,
            effects=session_effects if session_effects is not None else service_effects,
            response_sealer=KeyRingSealer(ring, purpose="launch-url"),
            vault=vault,
            clock=clock,
            idempotency_ttl_s=settings.idempotency_ttl_s,
        )
        loaded = load_gallery(settings, vault.cipher, factory, bio, problems)
        if loaded is not None:
            biometrics, gallery_sync = loaded
            capture = CaptureService(
                sessions,
                factory,
                keyring=ring,
                engine=bio,
                biometrics=biometrics,
                vault=vault,
                on_security_event=security.capture_hook,
            )
    return Services(
        settings=settings,
        db_engine=engine,
        factory=factory,
        clock=clock,
        throttle=throttle or build_throttle(settings),
        egress=egress or EgressGuard(allow_private=settings.allow_private_callbacks),
        alerts=alerts,
        audit=audit,
        keyring=ring,
        sequencer=sequencer,
        effects=service_effects,
        security_events=security,
        sessions=sessions,
        engine=bio,
        biometrics=biometrics,
        capture=capture,
        gallery_sync=gallery_sync,
        documents=None
        if capture is None or biometrics is None
        else build_documents(capture, vault, biometrics, document_scanner),
        operator_webhook_secret=operator_secret(settings) if settings.alert_webhook_url else None,
        problems=problems,
    )


__all__ = [
    "AUDIT",
    "GALLERY",
    "KEYS",
    "MASTER_KEY",
    "MODELS",
    "SIGNER",
    "AuthFailureHook",
    "NotReady",
    "ServerErrorHook",
    "Services",
    "build_services",
    "build_throttle",
    "check_audit_log",
    "check_master_key",
    "check_signer",
    "load_engine",
    "load_keyring",
    "operator_secret",
]
