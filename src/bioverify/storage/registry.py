"""Imports every component's tables so that ``Base.metadata`` is the whole schema."""

from __future__ import annotations

from sqlalchemy import MetaData

from bioverify.accounts import models as _accounts  # noqa: F401
from bioverify.alerts import models as _alerts  # noqa: F401
from bioverify.audit import models as _audit  # noqa: F401
from bioverify.crypto import models as _crypto  # noqa: F401
from bioverify.sessions import gallery_log as _gallery_log  # noqa: F401
from bioverify.sessions import models as _sessions  # noqa: F401
from bioverify.storage.base import Base
from bioverify.webhooks import models as _webhooks  # noqa: F401


def metadata() -> MetaData:
    return Base.metadata


__all__ = ["metadata"]
