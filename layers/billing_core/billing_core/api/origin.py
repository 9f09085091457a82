"""Where the API lives, as its callers reach it: for the links an answer carries (an
insufficient-credit 402's `topUpUrl`, the billing page's top-up on the API's own origin).

BILLING_TOPUP_URL wins when set; else BILLING_PUBLIC_URL (the API's public base, stage included)
+ the billing page; else the origin the request came in on (X-Forwarded-Proto and Host, which API
Gateway sets, and the stage prefix of requestContext.path). A Host that is not a plain host name
is not echoed: the link falls back to the page's path, so a hostile header never shapes a URL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from billing_core.kernel import settings

BILLING_PAGE = "/billing"
TOPUP_FRAGMENT = "#topup"

_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}"
                   r"[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$")
_PREFIX = re.compile(r"^(?:/[A-Za-z0-9._~-]{1,64}){0,4}$")


def _headers(event: Mapping[str, Any]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items() if v is not None}


def origin(event: Mapping[str, Any]) -> str | None:
    """scheme://host[/stage] of this request, or None when the headers do not say it plainly."""
    headers = _headers(event)
    host = headers.get("host", "").strip()
    if not host or len(host) > 255 or not _HOST.match(host):
        return None
    proto = headers.get("x-forwarded-proto", "https").split(",")[0].strip().lower()
    if proto not in ("http", "https"):
        proto = "https"
    context = event.get("requestContext") or {}
    full, path = str(context.get("path") or ""), str(event.get("path") or "")
    prefix = full[: -len(path)] if path and full.endswith(path) else ""
    if not _PREFIX.match(prefix):
        prefix = ""
    return f"{proto}://{host}{prefix}"


def top_up_url(event: Mapping[str, Any] | None) -> str:
    """Where a caller short of credit sends its user to pay."""
    s = settings.get()
    if s.topup_url:
        return s.topup_url
    if s.public_url:
        return f"{s.public_url.rstrip('/')}{BILLING_PAGE}{TOPUP_FRAGMENT}"
    base = origin(event) if event else None
    return f"{base or ''}{BILLING_PAGE}{TOPUP_FRAGMENT}"
