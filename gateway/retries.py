"""When a LINE event that could not be handled may be tried again (read by the retry loop)."""

from __future__ import annotations

import time
from typing import Callable, Dict, Tuple


class RetrySchedule:
    """When each event that failed may be tried again: exponential backoff per event."""

    def __init__(self, min_s: float = 1.0, max_s: float = 30.0, clock: Callable[[], float] = time.time) -> None:
        self.min_s, self.max_s, self._clock = min_s, max_s, clock
        self._failures: Dict[str, Tuple[int, float]] = {}  # event id -> (attempts, next try)

    def due(self, event_id: str) -> bool:
        failure = self._failures.get(event_id)
        return failure is None or failure[1] <= self._clock()

    def failed(self, event_id: str) -> None:
        attempts = self._failures.get(event_id, (0, 0.0))[0] + 1
        delay = min(self.max_s, self.min_s * (2 ** (attempts - 1)))
        self._failures[event_id] = (attempts, self._clock() + delay)

    def forget(self, event_id: str) -> None:
        self._failures.pop(event_id, None)
