"""Short-lived internal tokens (HS256: iss, aud, sub = the service id, iat, exp), minted from the
internal secret and reused until shortly before they expire. The API refuses lifetimes over 300 s."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import jwt

TokenProvider = Callable[[], str]

DEFAULT_ISSUER = "loa-finn"
DEFAULT_AUDIENCE = "arrakis-internal"
DEFAULT_LIFETIME = 120
RENEW_BEFORE = 30  # seconds before expiry a fresh token is minted


class InternalTokens:
    """A token_provider: call it for a valid token."""

    def __init__(self, secret: str, service_id: str, *, issuer: str = DEFAULT_ISSUER,
                 audience: str = DEFAULT_AUDIENCE, lifetime: int = DEFAULT_LIFETIME,
                 clock: Callable[[], float] = time.time) -> None:
        if not secret:
            raise ValueError("internal_secret is empty")
        if not service_id:
            raise ValueError("service_id is empty")
        if not 30 < lifetime <= 300:
            raise ValueError("lifetime must be between 31 and 300 seconds")
        self._secret, self.service_id = secret, service_id
        self.issuer, self.audience, self.lifetime = issuer, audience, lifetime
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0

    def __call__(self) -> str:
        with self._lock:
            now = self._clock()
            if self._token is None or now >= self._expires - RENEW_BEFORE:
                issued = int(now)
                claims = {"iss": self.issuer, "aud": self.audience, "sub": self.service_id, "iat": issued,
                          "exp": issued + self.lifetime}
                self._token = jwt.encode(claims, self._secret, algorithm="HS256")
                self._expires = issued + self.lifetime
            return self._token

    def __repr__(self) -> str:  # never the secret
        return f"InternalTokens(service_id={self.service_id!r}, issuer={self.issuer!r}, audience={self.audience!r})"
