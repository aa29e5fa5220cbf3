"""Per-client query budget kept in Redis, shared by every worker of a deployment.

A fixed window: the first query of a client in a window creates a counter that expires with the
window; each query increments it, in one atomic Lua call, so two workers never both grant the
last slot. A refused query costs one Redis round trip and no FHE run. The limit bounds what one
key id costs the fleet and how fast a client can harvest scores (see docs/SECURITY.md on model
extraction); it is not a defence on its own.
"""

from __future__ import annotations

import dataclasses
import math

import redis

from hushtune.services.common.errors import RateLimited

KEY_PREFIX = "hushtune:ratelimit:"
"""Redis keys of the counters: ``hushtune:ratelimit:<subject>``."""

# KEYS[1] counter, ARGV[1] window in ms. Returns {count, ms left in the window}.
_COUNT = """
local count = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {count, left}
"""


@dataclasses.dataclass(frozen=True)
class Admission:
    """One counted query: how many the subject made in this window and when the window ends."""

    count: int
    retry_after_seconds: float


class RateLimiter:
    """At most ``limit`` queries per subject per ``window_seconds``; ``limit`` 0 turns it off."""

    def __init__(self, redis_client: redis.Redis, *, limit: int, window_seconds: float) -> None:
        if limit < 0 or window_seconds <= 0:
            raise ValueError("rate limit: limit must be >= 0 and the window > 0 seconds")
        self._redis = redis_client
        self._limit = limit
        self._window_ms = max(1, int(window_seconds * 1000))
        self._script = redis_client.register_script(_COUNT)

    @property
    def enabled(self) -> bool:
        """False when the limit is 0."""
        return self._limit > 0

    def admit(self, subject: str, what: str = "queries") -> Admission | None:
        """Count one query of ``subject``; raise RateLimited once it is over the limit.

        Returns None when the limiter is off. Redis errors propagate: the servicer turns them
        into UNAVAILABLE rather than letting queries through uncounted.
        """
        if not self.enabled:
            return None
        count, left_ms = self._script(keys=[KEY_PREFIX + subject], args=[self._window_ms])
        admission = Admission(int(count), max(int(left_ms), 1) / 1000)
        if admission.count > self._limit:
            window = self._window_ms / 1000
            retry = math.ceil(admission.retry_after_seconds)
            raise RateLimited(
                f"rate limit: more than {self._limit} {what} in {window:g} s for this key id; "
                f"retry in {retry} s",
                retry_after_seconds=admission.retry_after_seconds,
            )
        return admission
