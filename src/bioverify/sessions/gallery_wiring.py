"""Build one process's template decisions and its 1:N gallery: :func:`load_gallery`."""

from __future__ import annotations

import structlog
from sqlalchemy.orm import Session, sessionmaker

from bioverify.config import Settings
from bioverify.crypto.datakeys import TemplateCipher
from bioverify.engine.gallery import MemoryGallery
from bioverify.engine.interfaces import Engine
from bioverify.engine.matcher import load_thresholds
from bioverify.sessions.biometrics import Biometrics
from bioverify.sessions.gallery_sync import GallerySync

log = structlog.get_logger("bioverify.wiring")

#: The readiness check (and ``Services.problems`` key) of the gallery.
GALLERY = "gallery"


def load_gallery(
    settings: Settings,
    cipher: TemplateCipher,
    factory: sessionmaker[Session],
    engine: Engine | None,
    problems: dict[str, str],
) -> tuple[Biometrics, GallerySync] | None:
    """Biometrics with its gallery loaded (sealed snapshots in the data dir, then the
    change log; the store for tenants without one) and what follows the gallery.

    ``None`` when the face engine is missing or another part already failed
    (``problems``: nothing biometric may answer then), and when the load fails,
    recorded in ``problems``: a partial gallery would answer SIGN-IN "no match" for
    customers it never loaded.
    """
    if engine is None or problems:
        return None
    biometrics = Biometrics(
        cipher=cipher,
        gallery=MemoryGallery(),
        thresholds=load_thresholds(),
        model_version=engine.model_version,
    )
    sync = biometrics.make_syncer(factory, snapshot_dir=settings.data_dir / "gallery")
    biometrics.syncer = sync
    try:
        biometrics.rebuild(factory)
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable"
        log.error("collaborator_unusable", part=GALLERY, error=type(exc).__name__)
        problems[GALLERY] = f"the 1:N gallery cannot be loaded ({type(exc).__name__})"
        return None
    return biometrics, sync


__all__ = ["GALLERY", "load_gallery"]
