"""Pledges, matching programs and their ledger (issue #4).

Depends on ``catalogue`` only, and never on ``federation`` or ``instance``.
"""
