"""Tamper-evident audit log: RFC 9162 Merkle tree, C2SP checkpoints and tiles, receipts.

Pure parts (``merkle``, ``note``, ``receipt``) need no database and are what the
client SDK imports; they load eagerly. The store-backed parts (``events``,
``service``, ``verify``) load on first use, so ``import bioverify.audit.receipt``
never pulls in SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bioverify.audit.merkle import (
    CompactRange,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from bioverify.audit.note import (
    Checkpoint,
    CheckpointError,
    parse_and_verify_checkpoint,
    sign_checkpoint,
)
from bioverify.audit.receipt import ReceiptError, verify_receipt

if TYPE_CHECKING:
    from bioverify.audit.events import (
        AuditEntryError,
        AuditEvent,
        build_entry,
        canonical_bytes,
        code_event,
    )
    from bioverify.audit.sequencer import Sequencer
    from bioverify.audit.service import AuditLog, SignedCheckpoint
    from bioverify.audit.verify import LogRows, VerifyReport, verify_log

_LAZY = {
    "AuditEntryError": "events",
    "AuditEvent": "events",
    "build_entry": "events",
    "canonical_bytes": "events",
    "code_event": "events",
    "AuditLog": "service",
    "SignedCheckpoint": "service",
    "Sequencer": "sequencer",
    "LogRows": "verify",
    "VerifyReport": "verify",
    "verify_log": "verify",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bioverify.audit' has no attribute {name!r}")
    return getattr(importlib.import_module(f"bioverify.audit.{module}"), name)


__all__ = [
    "AuditEntryError",
    "AuditEvent",
    "AuditLog",
    "Checkpoint",
    "CheckpointError",
    "CompactRange",
    "LogRows",
    "ProofError",
    "ReceiptError",
    "Sequencer",
    "SignedCheckpoint",
    "VerifyReport",
    "build_entry",
    "canonical_bytes",
    "code_event",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "parse_and_verify_checkpoint",
    "root_from_leaf_hashes",
    "sign_checkpoint",
    "verify_consistency",
    "verify_inclusion",
    "verify_log",
    "verify_receipt",
]
