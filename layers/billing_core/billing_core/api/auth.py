"""Bearer-token checks for the three caller kinds (PyJWT, HS256).

internal  iss/aud fixed, exp+iat required, lifetime <= 300 s, 30 s leeway; subject = service id
admin     aud fixed, exp+iat required; the current or the previous secret (rotation)
user      exp required; subject = account id (org id on quota routes)

401 when there is no usable token. 403 when the token is genuine but for another audience
(signed with another kind's secret, or carrying another audience) or not allowed here.
Secrets and tokens are never logged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import jwt

from billing_core.kernel import settings
from billing_core.kernel.errors import Forbidden, Unauthorized

LEEWAY_SECONDS = 30
MAX_INTERNAL_LIFETIME = 300
ALGORITHMS = ["HS256"]


@dataclass(frozen=True)
class Principal:
    kind: str  # internal | admin | user
    subject: str


@dataclass(frozen=True)
class _Kind:
    name: str
    secret_envs: tuple[str, ...]
    audience: str | None
    issuer: str | None
    required: tuple[str, ...]


def _kinds() -> dict[str, _Kind]:
    return {
        "internal": _Kind("internal", ("BILLING_INTERNAL_JWT_SECRET",), settings.jwt_internal_audience(),
                          settings.jwt_internal_issuer(), ("exp", "iat", "sub", "iss", "aud")),
        "admin": _Kind("admin", ("BILLING_ADMIN_JWT_SECRET", "BILLING_ADMIN_JWT_SECRET_PREV"),
                       settings.jwt_admin_audience(), None, ("exp", "iat", "sub", "aud")),
        "user": _Kind("user", ("BILLING_USER_JWT_SECRET",), settings.jwt_user_audience(),
                      settings.jwt_user_issuer(), ("exp", "sub")),
    }


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


def _decode(token: str, kind: _Kind, secret: str) -> dict:
    return jwt.decode(
        token, secret, algorithms=ALGORITHMS, audience=kind.audience, issuer=kind.issuer,
        leeway=LEEWAY_SECONDS, options={"require": list(kind.required), "verify_aud": kind.audience is not None},
    )


def _secrets(kind: _Kind) -> list[str]:
    return [s for s in (settings.secret(env) for env in kind.secret_envs) if s]


def _genuine_for(token: str, kind: _Kind) -> bool:
    """Whether one of this kind's secrets signed the token (claims not checked)."""
    for secret in _secrets(kind):
        try:
            jwt.decode(token, secret, algorithms=ALGORITHMS, options={
                "verify_exp": False, "verify_aud": False, "verify_iss": False, "verify_iat": False,
                "verify_nbf": False})
            return True
        except jwt.PyJWTError:
            continue
    return False


def _claims(token: str, kind: _Kind, kind_name: str) -> dict | None:
    """Verified claims under the first of this kind's secrets that signed the token, else None.
    PyJWT checks the signature before any claim, so a wrong secret never reaches claim errors."""
    for secret in _secrets(kind):
        try:
            return _decode(token, kind, secret)
        except jwt.InvalidSignatureError:
            continue
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token has expired", code="TOKEN_EXPIRED") from None
        except jwt.InvalidAudienceError:
            raise Forbidden(f"this route needs a {kind_name} token", code="WRONG_AUDIENCE") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"token lacks the required claim '{exc.claim}'", code="INVALID_TOKEN") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("token issuer is not accepted", code="INVALID_TOKEN") from None
        except jwt.PyJWTError:
            raise Unauthorized("token is invalid", code="INVALID_TOKEN") from None
    return None


def authenticate(headers: Mapping[str, str] | None, kind_name: str) -> Principal:
    token = bearer_token(headers)
    kinds = _kinds()
    claims = _claims(token, kinds[kind_name], kind_name)
    if claims is None:
        if any(_genuine_for(token, other) for name, other in kinds.items() if name != kind_name):
            raise Forbidden(f"this route needs a {kind_name} token", code="WRONG_AUDIENCE")
        raise Unauthorized("token is malformed or its signature is invalid", code="INVALID_TOKEN")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip():
        raise Unauthorized("token subject is empty", code="INVALID_TOKEN")
    if kind_name == "internal":
        lifetime = claims["exp"] - claims["iat"]
        if not isinstance(lifetime, int | float) or lifetime > MAX_INTERNAL_LIFETIME:
            raise Unauthorized(f"internal tokens may live at most {MAX_INTERNAL_LIFETIME} s",
                               code="TOKEN_LIFETIME_EXCEEDED")
    return Principal(kind=kind_name, subject=subject)
