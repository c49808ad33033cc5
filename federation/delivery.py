"""The delivery queue as a state machine: which row is due, what a response code does to it.

(Helper B implements this module; the signatures below are the contract others code against.)
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from federation.models import DeliveryState


@dataclass(frozen=True)
class Outcome:
    state: DeliveryState
    next_attempt_at: datetime | None
    host_gone: bool = False


def outcome(status: int | None, attempts: int, now: datetime, rng: random.Random) -> Outcome:
    """What happens after attempt number ``attempts`` ended with ``status`` (None: no answer).

    2xx: sent. 410: gone, and the host too. 429, 5xx and no answer: try again after an
    exponential back-off with jitter, for about two days, then failed. Other 4xx: failed.
    """
    raise NotImplementedError
