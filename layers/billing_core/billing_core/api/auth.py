"""Bearer-token checks for the three caller kinds (PyJWT, HS256).

internal  iss/aud fixed, exp+iat required, lifetime <= 300 s, 30 s leeway; subject = service id
admin     aud fixed, exp+iat required; the current or the previous secret (rotation)
user      exp required; subject = account id (org id on quota routes), never a system account (403)

401 when there is no usable token. 403 when the token is for another kind of caller: a function
holds only the secrets of the callers it serves, so a token its secrets do not verify is judged
by what it claims to be (the internal issuer or another kind's audience, or no audience where
user tokens carry none: 403 WRONG_AUDIENCE; this route's own kind with a bad signature: 401). Claims must have
their registered types (numeric times, a string subject that is a valid identifier). Secrets
and tokens are never logged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from billing_core.kernel import ids, settings
from billing_core.kernel.errors import Forbidden, Unauthorized

LEEWAY_SECONDS = 30
MAX_INTERNAL_LIFETIME = 300
ALGORITHMS = ["HS256"]
_TIME_CLAIMS = ("exp", "iat", "nbf")


@dataclass(frozen=True)
class Principal:
    kind: str  # internal | admin | user
    subject: str


@dataclass(frozen=True)
class _Kind:
    name: str
    secrets: tuple[str, ...]
    audience: str | None
    issuer: str | None
    required: tuple[str, ...]


def _kind(name: str) -> _Kind:
    s = settings.get()
    if name == "internal":
        return _Kind(name, (s.internal_jwt_secret.get_secret_value(),), s.internal_audience, s.internal_issuer,
                     ("exp", "iat", "sub", "iss", "aud"))
    if name == "admin":
        return _Kind(name, (s.admin_jwt_secret.get_secret_value(), s.admin_jwt_secret_prev.get_secret_value()),
                     s.admin_audience, None, ("exp", "iat", "sub", "aud"))
    return _Kind(name, (s.user_jwt_secret.get_secret_value(),), s.user_audience, s.user_issuer, ("exp", "sub"))


def secret_fields(kind: str) -> tuple[str, ...]:
    """The settings a function serving `kind` must have (checked at its cold start)."""
    return {"internal": ("internal_jwt_secret",), "admin": ("admin_jwt_secret",),
            "user": ("user_jwt_secret",)}[kind]


def bearer_token(headers: Mapping[str, str] | None) -> str:
    value = ""
    for name, header in (headers or {}).items():
        if name.lower() == "authorization":
            value = header or ""
            break
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("a Bearer token is required", code="MISSING_TOKEN")
    return token.strip()


def _decode(token: str, kind: _Kind, secret: str) -> dict[str, Any]:
    # Signature first, then the claims' types, and only then their values: PyJWT reads exp/iat/nbf
    # with int(), so a boolean or a numeric string would otherwise be judged as a time.
    unchecked = jwt.decode(token, secret, algorithms=ALGORITHMS, options={
        "verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False, "verify_iss": False})
    _typed(unchecked)
    claims: dict[str, Any] = jwt.decode(
        token, secret, algorithms=ALGORITHMS, audience=kind.audience, issuer=kind.issuer, leeway=LEEWAY_SECONDS,
        options={"require": list(kind.required), "verify_aud": kind.audience is not None})
    return claims


def _claims(token: str, kind: _Kind) -> dict[str, Any] | None:
    """Verified claims under the first of this kind's secrets that signed the token, else None.
    PyJWT checks the signature before any claim, so a wrong secret never reaches claim errors."""
    for secret in (s for s in kind.secrets if s):
        try:
            return _decode(token, kind, secret)
        except jwt.InvalidSignatureError:
            continue
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token has expired", code="TOKEN_EXPIRED") from None
        except jwt.InvalidAudienceError:
            raise Forbidden(f"this route needs a {kind.name} token", code="WRONG_AUDIENCE") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"token lacks the required claim '{exc.claim}'", code="INVALID_TOKEN") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("token issuer is not accepted", code="INVALID_TOKEN") from None
        except jwt.PyJWTError:
            raise Unauthorized("token is invalid", code="INVALID_TOKEN") from None
    return None


def _claimed_kind(token: str) -> str | None:
    """The kind of caller an unverified token says it is, by its audience (never trusted for
    access: it only decides between 401 and 403 for a token this function cannot verify)."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    if header.get("alg") not in ALGORITHMS or not isinstance(claims, dict):
        return None
    audience = claims.get("aud")
    s = settings.get()
    if claims.get("iss") == s.internal_issuer or audience == s.internal_audience:
        return "internal"  # only services' tokens carry the internal issuer
    if audience == s.admin_audience:
        return "admin"
    return "user" if audience is None or audience == s.user_audience else None


def _typed(claims: dict[str, Any]) -> str:
    """The registered claims have their registered types; returns the subject."""
    for name in _TIME_CLAIMS:
        value = claims.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise Unauthorized(f"token claim '{name}' must be a number", code="INVALID_TOKEN")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip():
        raise Unauthorized("token subject is empty", code="INVALID_TOKEN")
    if not ids.valid_id(subject):
        raise Unauthorized("token subject is not a valid identifier", code="INVALID_TOKEN")
    return subject


def authenticate(headers: Mapping[str, str] | None, kind_name: str) -> Principal:
    token = bearer_token(headers)
    kind = _kind(kind_name)
    claims = _claims(token, kind)
    if claims is None:
        claimed = _claimed_kind(token)
        if claimed is not None and claimed != kind_name:
            raise Forbidden(f"this route needs a {kind_name} token", code="WRONG_AUDIENCE")
        raise Unauthorized("token is malformed or its signature is invalid", code="INVALID_TOKEN")
    subject = _typed(claims)
    if kind_name == "user" and ids.is_system_account(subject):
        # A system account's partitions hold every customer's revenue shares: no user is one.
        raise Forbidden("user tokens cannot name a system account", code="SYSTEM_ACCOUNT")
    if kind_name == "internal" and claims["exp"] - claims["iat"] > MAX_INTERNAL_LIFETIME:
        raise Unauthorized(f"internal tokens may live at most {MAX_INTERNAL_LIFETIME} s",
                           code="TOKEN_LIFETIME_EXCEEDED")
    return Principal(kind=kind_name, subject=subject)
