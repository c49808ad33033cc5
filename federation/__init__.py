"""ActivityPub: maps domain objects to and from ActivityStreams, signs, delivers, receives.

Depends on ``catalogue`` and ``pledges``; the domain never imports from here (issue #5).
"""
