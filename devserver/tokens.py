"""Development secrets and ready-made JWTs for the local stack.

The stack reads its signing secrets from the environment and falls back to the dev-only
defaults below, so that `make run` works with no setup. Internal tokens live at most 300 s
(the API refuses longer ones), so curls should mint one per call:

    curl -H "Authorization: Bearer $(.venv/bin/python -m devserver.tokens internal)" ...

Usage: python -m devserver.tokens internal|admin|user [subject]
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping

# Each >= 32 characters (HS256 needs it), and named so nobody mistakes them for real ones.
DEV_SECRET_DEFAULTS: dict[str, str] = {
    "BILLING_INTERNAL_JWT_SECRET": "dev-only-internal-jwt-secret-do-not-deploy-0001",
    "BILLING_ADMIN_JWT_SECRET": "dev-only-admin-jwt-secret-do-not-deploy-00000002",
    "BILLING_ADMIN_JWT_SECRET_PREV": "dev-only-previous-admin-jwt-secret-do-not-deploy-3",
    "BILLING_USER_JWT_SECRET": "dev-only-user-jwt-secret-do-not-deploy-000000004",
    "NOWPAYMENTS_IPN_SECRET": "dev-only-nowpayments-ipn-secret-do-not-deploy-05",
    "STRIPE_WEBHOOK_SECRET": "whsec_dev-only-stripe-webhook-secret-do-not-deploy-6",
}

INTERNAL_LIFETIME = 300  # the API's maximum for service tokens
ADMIN_LIFETIME = 12 * 3600
USER_LIFETIME = 12 * 3600

DEFAULT_SUBJECTS = {"internal": "svc-demo", "admin": "ops-admin", "user": "acct-demo"}


def dev_secrets(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Each secret from the environment when set (non-empty), else its dev default."""
    environ = os.environ if environ is None else environ
    return {name: environ.get(name) or default for name, default in DEV_SECRET_DEFAULTS.items()}


def _encode(claims: dict, secret: str) -> str:
    import jwt

    return jwt.encode(claims, secret, algorithm="HS256")


def internal_token(
    service_id: str = DEFAULT_SUBJECTS["internal"],
    *,
    environ: Mapping[str, str] | None = None,
    lifetime: int = INTERNAL_LIFETIME,
) -> str:
    """Service-to-service token: iss loa-finn, aud arrakis-internal, sub = service id."""
    environ = os.environ if environ is None else environ
    now = int(time.time())
    claims = {
        "iss": environ.get("BILLING_INTERNAL_JWT_ISSUER") or "loa-finn",
        "aud": environ.get("BILLING_INTERNAL_JWT_AUDIENCE") or "arrakis-internal",
        "sub": service_id,
        "iat": now,
        "exp": now + lifetime,
    }
    return _encode(claims, dev_secrets(environ)["BILLING_INTERNAL_JWT_SECRET"])


def admin_token(
    subject: str = DEFAULT_SUBJECTS["admin"],
    *,
    environ: Mapping[str, str] | None = None,
    lifetime: int = ADMIN_LIFETIME,
) -> str:
    """Operator token: aud arrakis-billing-admin."""
    environ = os.environ if environ is None else environ
    now = int(time.time())
    claims = {
        "aud": environ.get("BILLING_ADMIN_JWT_AUDIENCE") or "arrakis-billing-admin",
        "sub": subject,
        "iat": now,
        "exp": now + lifetime,
    }
    return _encode(claims, dev_secrets(environ)["BILLING_ADMIN_JWT_SECRET"])


def user_token(
    account_id: str = DEFAULT_SUBJECTS["user"],
    *,
    environ: Mapping[str, str] | None = None,
    lifetime: int = USER_LIFETIME,
) -> str:
    """End-user token: sub = account id (org id on quota routes)."""
    environ = os.environ if environ is None else environ
    now = int(time.time())
    claims: dict = {"sub": account_id, "iat": now, "exp": now + lifetime}
    if environ.get("BILLING_USER_JWT_AUDIENCE"):
        claims["aud"] = environ["BILLING_USER_JWT_AUDIENCE"]
    if environ.get("BILLING_USER_JWT_ISSUER"):
        claims["iss"] = environ["BILLING_USER_JWT_ISSUER"]
    return _encode(claims, dev_secrets(environ)["BILLING_USER_JWT_SECRET"])


_MAKERS = {"internal": internal_token, "admin": admin_token, "user": user_token}


def make_token(kind: str, subject: str | None = None, *, environ: Mapping[str, str] | None = None) -> str:
    """One fresh token of `kind` (internal|admin|user) for `subject` (or the demo subject)."""
    if kind not in _MAKERS:
        raise ValueError(f"kind must be one of {', '.join(_MAKERS)}")
    return _MAKERS[kind](subject or DEFAULT_SUBJECTS[kind], environ=environ)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in _MAKERS or len(args) > 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    print(make_token(args[0], args[1] if len(args) == 2 else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
