"""Build one process's template decisions and its 1:N gallery: :func:`load_gallery`."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from bioverify.config import Settings
from bioverify.crypto.datakeys import TemplateCipher
from bioverify.crypto.keyring import KeyRing
from bioverify.crypto.sqlstore import SqlDataKeyStore
from bioverify.engine.gallery import MemoryGallery
from bioverify.engine.matcher import load_thresholds
from bioverify.sessions.biometrics import Biometrics
from bioverify.sessions.gallery_sync import GallerySync


def load_gallery(
    settings: Settings,
    *,
    keyring: KeyRing,
    factory: sessionmaker[Session],
    model_version: str,
) -> tuple[Biometrics, GallerySync]:
    """Biometrics with its gallery loaded (sealed snapshots in the data dir, then the
    change log; the store for tenants without one) and what follows the gallery.

    Raises when the gallery cannot be loaded: the caller must then not answer 1:N at
    all, since a partial gallery would answer SIGN-IN "no match" for customers it never
    loaded.
    """
    biometrics = Biometrics(
        cipher=TemplateCipher(keyring, SqlDataKeyStore(factory)),
        gallery=MemoryGallery(),
        thresholds=load_thresholds(),
        model_version=model_version,
    )
    sync = biometrics.make_syncer(factory, snapshot_dir=settings.data_dir / "gallery")
    biometrics.syncer = sync
    biometrics.rebuild(factory)
    return biometrics, sync


__all__ = ["load_gallery"]
