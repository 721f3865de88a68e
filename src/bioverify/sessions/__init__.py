"""Verification sessions: persistence and the transactions that move them."""
