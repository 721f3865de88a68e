"""Integrator client applications and their credentials."""
