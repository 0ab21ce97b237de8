"""Diagnostics: each module defines its metrics with formula and reference."""
