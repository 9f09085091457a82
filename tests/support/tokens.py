"""Tokens for the three caller kinds, signed with the tests' secrets (TEST_ENV)."""

from __future__ import annotations

import time
from typing import Any

import jwt

from tests.support.env import TEST_ENV


class Tokens:
    """Mint tokens the way callers would (and the ways they get it wrong)."""

    @staticmethod
    def internal(sub: str = "svc-test", *, lifetime: int = 300, secret: str | None = None, **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": "loa-finn", "aud": "arrakis-internal", "sub": sub, "iat": now, "exp": now + lifetime,
                   **claims}
        return jwt.encode(payload, secret or TEST_ENV["BILLING_INTERNAL_JWT_SECRET"], algorithm="HS256")

    @staticmethod
    def admin(sub: str = "ops-test", *, previous: bool = False, lifetime: int = 3600, **claims: Any) -> str:
        now = int(time.time())
        secret = TEST_ENV["BILLING_ADMIN_JWT_SECRET_PREV" if previous else "BILLING_ADMIN_JWT_SECRET"]
        payload = {"aud": "arrakis-billing-admin", "sub": sub, "iat": now, "exp": now + lifetime, **claims}
        return jwt.encode(payload, secret, algorithm="HS256")

    @staticmethod
    def user(sub: str = "acct-test", *, lifetime: int = 3600, **claims: Any) -> str:
        now = int(time.time())
        payload = {"sub": sub, "exp": now + lifetime, **claims}
        return jwt.encode(payload, TEST_ENV["BILLING_USER_JWT_SECRET"], algorithm="HS256")
