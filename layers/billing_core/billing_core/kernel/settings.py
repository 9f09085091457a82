"""The function's configuration, validated once per environment (pydantic).

Every value comes from the environment the template gives the function. `get()` validates it
the first time and again only when one of the variables changes (tests and the local stack set
them), so a request never re-parses configuration; inside an invocation (`invocation()`,
opened by the edge and the job wrapper) the environment is compared once, not at every call.
A value that does not validate raises ConfigurationError naming the variable, never its value:
handlers call `get()` at import, so a bad configuration fails the cold start with that message
instead of failing requests.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator, Mapping
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from billing_core.kernel.errors import ConfigurationError

DEFAULT_CEILING_MICRO = 1_000_000_000_000

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    billing_table: str = Field("BillingTable", alias="BILLING_TABLE", min_length=3)
    ledger_table: str = Field("LedgerTable", alias="LEDGER_TABLE", min_length=3)
    ceiling_micro: int = Field(DEFAULT_CEILING_MICRO, alias="BILLING_CEILING_MICRO", ge=1, le=10**18)
    config_cache_seconds: float = Field(5.0, alias="BILLING_CONFIG_CACHE_SECONDS", ge=0, le=86400)
    rate_limit_internal: int = Field(200, alias="BILLING_RATE_LIMIT_INTERNAL_PER_MIN", ge=1)
    rate_limit_admin: int = Field(30, alias="BILLING_RATE_LIMIT_ADMIN_PER_MIN", ge=1)
    hard_limits: bool = Field(True, alias="ENABLE_BILLING_HARD_LIMITS")
    default_plan_slug: Slug = Field("starter", alias="BILLING_DEFAULT_PLAN_SLUG")
    work_queue_url: str = Field("", alias="WORK_QUEUE_URL")
    retry_base_seconds: int = Field(30, alias="BILLING_RETRY_BASE_SECONDS", ge=0, le=900)
    max_work_attempts: int = Field(6, alias="BILLING_MAX_WORK_ATTEMPTS", ge=1, le=100)

    # Tokens (api.auth). Each function is given only the secrets of the callers it serves.
    internal_jwt_secret: SecretStr = Field(SecretStr(""), alias="BILLING_INTERNAL_JWT_SECRET")
    admin_jwt_secret: SecretStr = Field(SecretStr(""), alias="BILLING_ADMIN_JWT_SECRET")
    admin_jwt_secret_prev: SecretStr = Field(SecretStr(""), alias="BILLING_ADMIN_JWT_SECRET_PREV")
    user_jwt_secret: SecretStr = Field(SecretStr(""), alias="BILLING_USER_JWT_SECRET")
    internal_issuer: str = Field("loa-finn", alias="BILLING_INTERNAL_JWT_ISSUER")
    internal_audience: str = Field("arrakis-internal", alias="BILLING_INTERNAL_JWT_AUDIENCE")
    admin_audience: str = Field("arrakis-billing-admin", alias="BILLING_ADMIN_JWT_AUDIENCE")
    user_audience: str | None = Field(None, alias="BILLING_USER_JWT_AUDIENCE")
    user_issuer: str | None = Field(None, alias="BILLING_USER_JWT_ISSUER")

    # Payments (payments.*): an empty secret refuses that provider's webhooks; an empty key
    # records top-ups without a provider invoice.
    nowpayments_ipn_secret: SecretStr = Field(SecretStr(""), alias="NOWPAYMENTS_IPN_SECRET")
    stripe_webhook_secret: SecretStr = Field(SecretStr(""), alias="STRIPE_WEBHOOK_SECRET")
    nowpayments_api_key: SecretStr = Field(SecretStr(""), alias="NOWPAYMENTS_API_KEY")
    stripe_secret_key: SecretStr = Field(SecretStr(""), alias="STRIPE_SECRET_KEY")
    public_url: str = Field("", alias="BILLING_PUBLIC_URL")
    topup_success_url: str = Field("", alias="TOPUP_SUCCESS_URL")
    topup_cancel_url: str = Field("", alias="TOPUP_CANCEL_URL")

    # Actionable 402s: where to pay (else the billing page on the API's own origin) and where to
    # upgrade a plan (a quota 402 names it only when set).
    topup_url: str = Field("", alias="BILLING_TOPUP_URL", max_length=2000)
    upgrade_url: str = Field("", alias="BILLING_UPGRADE_URL", max_length=2000)

    # Outbound event webhooks (outbound.*). Production delivers to public https URLs only; the
    # local stack allows http and loopback targets (devserver.runner), nothing else does.
    webhook_queue_url: str = Field("", alias="WEBHOOK_QUEUE_URL")
    webhook_timeout_seconds: float = Field(5.0, alias="BILLING_WEBHOOK_TIMEOUT_SECONDS", gt=0, le=30)
    webhook_allow_http: bool = Field(False, alias="BILLING_WEBHOOK_ALLOW_HTTP")
    webhook_allow_loopback: bool = Field(False, alias="BILLING_WEBHOOK_ALLOW_LOOPBACK")
    webhook_allow_private: bool = Field(False, alias="BILLING_WEBHOOK_ALLOW_PRIVATE")
    low_balance_micro: int = Field(1_000_000, alias="BILLING_LOW_BALANCE_MICRO", ge=0, le=10**18)

    def require(self, *fields: str) -> Settings:
        """Fail (at cold start) unless each named secret or value is set."""
        missing = [self._env_name(name) for name in fields if not _present(getattr(self, name))]
        if missing:
            raise ConfigurationError(f"this function needs {', '.join(missing)} set in its environment")
        return self

    @classmethod
    def _env_name(cls, field: str) -> str:
        return cls.model_fields[field].alias or field


def _present(value: object) -> bool:
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value())
    return bool(value)


_NAMES = tuple(field.alias for field in Settings.model_fields.values() if field.alias)
_cache: tuple[tuple[str | None, ...], Settings] | None = None
_invocation: contextvars.ContextVar[object | None] = contextvars.ContextVar("settings_invocation", default=None)
_checked_in: object | None = None  # the invocation whose environment was last compared


def parse(environ: Mapping[str, str]) -> Settings:
    """Validate a whole environment; empty values mean unset (the default applies)."""
    given = {name: environ[name] for name in _NAMES if environ.get(name, "").strip()}
    try:
        return Settings.model_validate(given)
    except ValidationError as exc:  # name the variable and the rule, never the value
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(f"invalid configuration: {problems}") from None


def get() -> Settings:
    global _cache, _checked_in
    current = _invocation.get()
    if _cache is not None and current is not None and current is _checked_in:
        return _cache[1]
    fingerprint = tuple(os.environ.get(name) for name in _NAMES)
    if _cache is None or _cache[0] != fingerprint:
        _cache = (fingerprint, parse(os.environ))
    _checked_in = current
    return _cache[1]


@contextlib.contextmanager
def invocation() -> Iterator[Settings]:
    """One Lambda invocation: its environment is compared once, at the start."""
    token = _invocation.set(object())
    try:
        yield get()
    finally:
        _invocation.reset(token)
