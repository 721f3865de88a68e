"""Tamper-evident audit log: RFC 9162 Merkle tree, C2SP checkpoints, receipts.

Pure parts (``merkle``, ``note``, ``receipt``) need no database and are what the
client SDK imports; ``service`` and ``verify`` work on the store.
"""

from bioverify.audit.events import (
    AuditEntryError,
    AuditEvent,
    build_entry,
    canonical_bytes,
    code_event,
)
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
from bioverify.audit.service import AuditLog, SignedCheckpoint
from bioverify.audit.verify import LogRows, VerifyReport, verify_log

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
