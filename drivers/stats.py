"""Small runtime helpers shared by the drivers: latency percentiles and transition-only logging."""

from __future__ import annotations

import logging
from collections import deque


class LatencyRing:
    """Round-trip times in a bounded ring buffer; percentiles over the last ``size`` requests."""

    def __init__(self, size: int = 512) -> None:
        self._ms: deque[float] = deque(maxlen=size)

    def add(self, seconds: float) -> None:
        self._ms.append(seconds * 1000.0)

    def __len__(self) -> int:
        return len(self._ms)

    def percentile(self, p: float) -> float | None:
        """Nearest-rank percentile in ms (``None`` before the first request)."""
        if not self._ms:
            return None
        data = sorted(self._ms)
        k = min(len(data) - 1, max(0, round(p / 100.0 * (len(data) - 1))))
        return round(data[k], 3)


class HealthLog:
    """Logs a failure once when it starts and once when it ends ("recovered"), never every poll."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self._log = logger
        self._what = what
        self.failing: dict[str, str] = {}

    def fail(self, key: str, reason: str) -> None:
        if self.failing.get(key) != reason:
            if key not in self.failing:
                self._log.warning("%s %s: %s", self._what, key, reason)
            self.failing[key] = reason

    def ok(self, key: str) -> None:
        if self.failing.pop(key, None) is not None:
            self._log.info("%s %s: recovered", self._what, key)
