"""What a document session keeps, encrypted at rest with the tenant's data key.

- ``identity``: the ``identityInformation`` read from the document, kept for the
  integrator's polling route and final webhook until the customer is erased. It is
  never written to the webhook outbox in clear: the worker adds it to the body it
  sends, as it does the ``sendImages`` portrait.
- ``document_state``: the selfie's embedding (and, for a card whose data is on its
  back, the front portrait's embedding) while the document step is open; dropped
  when the session ends.

Each blob is bound (AEAD associated data) to its session and purpose, so a blob
copied to another row or column does not decrypt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from bioverify.crypto.datakeys import TemplateCipher
from bioverify.sessions.models import SessionRow

Vector = npt.NDArray[np.float32]


def _aad(purpose: str, session_id: str) -> bytes:
    return f"{purpose}:{session_id}".encode()


@dataclass(frozen=True, eq=False)
class DocumentState:
    """The open document step: the selfie and, after a card front, its portrait."""

    selfie: Vector
    front_portrait: Vector | None = None

    def __repr__(self) -> str:
        # Embeddings never reach a log line.
        return f"DocumentState(front={'<128-d>' if self.front_portrait is not None else None})"


class IdentityVault:
    """Seals and opens a session's document data with the tenant's data key."""

    def __init__(self, cipher: TemplateCipher) -> None:
        self.cipher = cipher

    def prepare(self, client_id: str) -> None:
        """Load the tenant's data key before a locked transaction needs it."""
        self.cipher.ensure_key(client_id)

    def seal_identity(self, row: SessionRow, info: dict[str, Any]) -> None:
        text = json.dumps(info, separators=(",", ":"), sort_keys=True).encode()
        row.identity = self.cipher.encrypt(row.client_id, text, _aad("identity", row.id))

    def open_identity(self, client_id: str, session_id: str, blob: bytes | None) -> Any:
        """``identityInformation`` (a dict), or None when none is kept."""
        if blob is None:
            return None
        return json.loads(self.cipher.decrypt(client_id, blob, _aad("identity", session_id)))

    def seal_state(self, row: SessionRow, state: DocumentState) -> None:
        data = {
            "selfie": [float(v) for v in state.selfie],
            "front": None
            if state.front_portrait is None
            else [float(v) for v in state.front_portrait],
        }
        row.document_state = self.cipher.encrypt(
            row.client_id, json.dumps(data).encode(), _aad("document-state", row.id)
        )

    def open_state(self, row: SessionRow) -> DocumentState | None:
        """The open document step, or None when the face step has not passed yet."""
        if row.document_state is None:
            return None
        data = json.loads(
            self.cipher.decrypt(row.client_id, row.document_state, _aad("document-state", row.id))
        )
        front = data.get("front")
        return DocumentState(
            selfie=np.asarray(data["selfie"], dtype=np.float32),
            front_portrait=None if front is None else np.asarray(front, dtype=np.float32),
        )

    @staticmethod
    def erase(db: Session, client_id: str, customer_id: str) -> int:
        """Erase what documents said about ``customer_id`` (and any open step): rows changed."""
        result = db.execute(
            update(SessionRow)
            .where(
                SessionRow.client_id == client_id,
                SessionRow.customer_id == customer_id,
                or_(SessionRow.identity.is_not(None), SessionRow.document_state.is_not(None)),
            )
            .values(identity=None, document_state=None)
        )
        return int(getattr(result, "rowcount", 0) or 0)


__all__ = ["DocumentState", "IdentityVault"]
