"""Alerts: rules over security and reliability signals, deduplicated, and their sinks."""
