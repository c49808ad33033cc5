"""The shared domain: organisations, commons, declarations and improvements.

This package knows nothing of HTTP or ActivityPub; it holds models, value types and the rules
that keep them valid. ``pledges`` builds on it; ``federation`` and ``instance`` use it.
"""
