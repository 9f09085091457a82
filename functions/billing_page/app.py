"""GET /billing - the customer's billing page; GET /billing/assets/{name} - its stylesheet and script.

Public routes that serve files: the page holds no data and no secret. The user's token arrives in
the URL fragment (`/billing#token=<jwt>`: a fragment is never sent to a server, so it is in no
access log), the page's script moves it to sessionStorage and calls this API's own JSON routes
with it. Everything the page needs is in ./static and served from here (no CDN, no external font
or script), so it works offline and under a Content-Security-Policy that allows only this origin.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from billing_core.api import contract, edge
from billing_core.kernel.errors import NotFound

STATIC = Path(__file__).parent / "static"
_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}

# Scripts and styles from this origin only; fetch() to this origin only; nothing may frame the page.
POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
          "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
_SECURITY = {"Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
             "X-Frame-Options": "DENY"}


def _load() -> tuple[str, dict[str, tuple[str, str]]]:
    """The page and its assets, read once per execution environment. The page links each asset
    with its content hash (`billing.js?v=...`), so an asset may be cached for a day and a deploy
    is still seen at once (the page itself is revalidated on every load)."""
    assets = {path.name: (path.read_text(encoding="utf-8"), _TYPES[path.suffix])
              for path in sorted(STATIC.iterdir()) if path.suffix in _TYPES}
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    for name, (text, _type) in assets.items():
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        page = page.replace(f'billing/assets/{name}"', f'billing/assets/{name}?v={digest}"')
    return page, assets


PAGE, ASSETS = _load()

router = edge.router()

_TEXT: dict[str, Any] = {"type": "string"}
PAGE_RESPONSES: dict[int, OpenAPIResponse] = {200: {
    "description": "The billing page (HTML); the token goes in the fragment: /billing#token=<jwt>",
    "content": {"text/html": {"schema": _TEXT}}}}
ASSET_RESPONSES: dict[int, OpenAPIResponse] = {200: {"description": "The page's stylesheet or script",
                         "content": {"text/css": {"schema": _TEXT}, "text/javascript": {"schema": _TEXT}}},
                   404: contract.error_response(404, ("ASSET_NOT_FOUND",))}


@router.get("/billing", summary="The customer's billing page", tags=["public"], responses=PAGE_RESPONSES)
def page() -> Response[str]:
    return Response(200, content_type="text/html; charset=utf-8", body=PAGE,
                    headers={**_SECURITY, "Cache-Control": "no-cache"})


@router.get("/billing/assets/<name>", summary="A billing page asset", tags=["public"], responses=ASSET_RESPONSES)
def asset(name: str) -> Response[str]:
    if name not in ASSETS:
        raise NotFound("no such asset", code="ASSET_NOT_FOUND")
    body, content_type = ASSETS[name]
    return Response(200, content_type=content_type, body=body,
                    headers={**_SECURITY, "Cache-Control": "public, max-age=86400"})


lambda_handler = edge.handler(router, auth_kind=None)
