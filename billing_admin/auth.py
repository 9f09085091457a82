"""Where the admin token comes from.

In order: --token, $BILLING_ADMIN_TOKEN, or, when $BILLING_ADMIN_JWT_SECRET is set, a short-lived
token minted here (HS256; aud arrakis-billing-admin or $BILLING_ADMIN_JWT_AUDIENCE; sub = --actor
or the login name; iat/exp), re-minted shortly before it expires so a long run or `history --follow` keeps
working. Neither the secret nor a token is ever printed or logged (only `billing-admin token`
prints a token, because that is what it is asked for); the classes here hide them from repr().
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Protocol

from billing_admin.errors import UsageError

DEFAULT_AUDIENCE = "arrakis-billing-admin"
TOKEN_LIFETIME = 300  # seconds: a minted token is short-lived
REFRESH_MARGIN = 60  # re-mint when less than this is left
FALLBACK_ACTOR = "billing-admin"


class ConfigError(UsageError):
    """The CLI is not configured to make the call (no credentials): a usage error, exit 2."""


class TokenSource(Protocol):
    def get(self) -> str: ...

    @property
    def description(self) -> str: ...


class StaticToken:
    """A token handed to the CLI (--token or $BILLING_ADMIN_TOKEN)."""

    def __init__(self, token: str, origin: str) -> None:
        self._token = token
        self.description = f"token from {origin}"

    def get(self) -> str:
        return self._token

    def __repr__(self) -> str:
        return f"StaticToken({self.description}, token=<hidden>)"


class MintedToken:
    """Short-lived admin tokens signed with the admin secret, minted on demand."""

    def __init__(self, secret: str, subject: str, *, audience: str = DEFAULT_AUDIENCE,
                 lifetime: int = TOKEN_LIFETIME, clock: Callable[[], float] = time.time) -> None:
        if lifetime <= REFRESH_MARGIN:
            raise ValueError(f"lifetime must be more than {REFRESH_MARGIN} seconds")
        self._secret = secret
        self.subject = subject
        self.audience = audience
        self.lifetime = lifetime
        self._clock = clock
        self._token: str | None = None
        self.expires = 0
        self.description = f"minted admin token (sub {subject})"

    def claims(self) -> dict[str, object]:
        now = int(self._clock())
        return {"aud": self.audience, "sub": self.subject, "iat": now, "exp": now + self.lifetime,
                "jti": uuid.uuid4().hex}

    def mint(self) -> str:
        """A new token, whatever the cached one's age."""
        import jwt

        claims = self.claims()
        self._token = jwt.encode(claims, self._secret, algorithm="HS256")
        self.expires = int(claims["exp"])  # type: ignore[call-overload]
        return self._token

    def get(self) -> str:
        if self._token is None or self.expires - self._clock() < REFRESH_MARGIN:
            return self.mint()
        return self._token

    def __repr__(self) -> str:
        return f"MintedToken(sub={self.subject!r}, aud={self.audience!r}, secret=<hidden>)"


# The actor is recorded in the ledger: an identifier (the API's own rule for a token subject),
# never a value read from a shell variable a user may have filled with anything (a README once
# set $USER to a bearer token).
ACTOR_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}")


def valid_actor(actor: str) -> str:
    if not ACTOR_PATTERN.fullmatch(actor):
        # The value is not echoed: it may be a token pasted in the wrong place.
        raise UsageError("--actor must be an identifier: letters, digits and '_.:@-', starting with a letter or "
                         "a digit, at most 128 characters")
    return actor


def default_actor(environ: Mapping[str, str] | None = None) -> str:
    """The login name from the password database (not $USER or $LOGNAME, which anything can set), when
    it is an identifier; else a fixed name."""
    try:
        import pwd

        name = pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError, OSError, AttributeError):
        return FALLBACK_ACTOR
    return name if ACTOR_PATTERN.fullmatch(name or "") else FALLBACK_ACTOR


def minted_source(environ: Mapping[str, str], actor: str | None = None, *,
                  lifetime: int = TOKEN_LIFETIME) -> MintedToken | None:
    """A minting source when $BILLING_ADMIN_JWT_SECRET is set, else None."""
    secret = environ.get("BILLING_ADMIN_JWT_SECRET")
    if not secret:
        return None
    return MintedToken(secret, valid_actor(actor) if actor is not None else default_actor(environ),
                       audience=environ.get("BILLING_ADMIN_JWT_AUDIENCE") or DEFAULT_AUDIENCE, lifetime=lifetime)


def resolve(environ: Mapping[str, str], *, token: str | None = None, actor: str | None = None) -> TokenSource:
    """The token source for API calls, or ConfigError saying how to configure one."""
    if token:
        return StaticToken(token, "--token")
    if environ.get("BILLING_ADMIN_TOKEN"):
        return StaticToken(environ["BILLING_ADMIN_TOKEN"], "$BILLING_ADMIN_TOKEN")
    minted = minted_source(environ, actor)
    if minted is not None:
        return minted
    raise ConfigError("no admin credentials: set BILLING_ADMIN_TOKEN (or pass --token), or set "
                      "BILLING_ADMIN_JWT_SECRET to mint short-lived admin tokens")
