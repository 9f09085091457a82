"""GET /billing and its assets, in-process (the browser tests in tests/browser drive the page itself)."""

import re

from devserver.invoke import LambdaContext, proxy_event
from tests.support.env import ROOT
from tests.support.handlers import handler_module


def _get(path: str, resource: str | None = None, name: str | None = None) -> dict:
    event = proxy_event("GET", resource or path, path={"name": name} if name else None)
    return handler_module("billing_page").lambda_handler(event, LambdaContext())


def _headers(response: dict) -> dict:
    """API Gateway merges both header maps."""
    headers = {name: values[-1] for name, values in (response.get("multiValueHeaders") or {}).items() if values}
    headers.update(response.get("headers") or {})
    return headers


def test_the_page_is_public_html_under_a_same_origin_policy():
    response = _get("/billing")
    assert response["statusCode"] == 200
    headers = _headers(response)
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-cache"
    body = response["body"]
    assert body.startswith("<!doctype html>")
    # Relative asset links (they work under a stage prefix such as /v1), versioned by content.
    assert re.search(r'href="billing/assets/billing\.css\?v=[0-9a-f]{12}"', body)
    assert re.search(r'src="billing/assets/billing\.js\?v=[0-9a-f]{12}"', body)


def test_nothing_is_fetched_from_another_origin():
    for path in (ROOT / "functions/billing_page/static").iterdir():
        text = path.read_text()
        assert not re.search(r"(?:src|href)\s*=\s*[\"']?(?:https?:)?//", text), path.name
        assert "@import" not in text and "url(http" not in text, path.name
        assert "fonts.googleapis" not in text and "cdn" not in text.lower(), path.name


def test_assets_are_served_with_their_types_and_unknown_ones_are_404():
    css = _get("/billing/assets/billing.css", "/billing/assets/{name}", "billing.css")
    js = _get("/billing/assets/billing.js", "/billing/assets/{name}", "billing.js")
    assert css["statusCode"] == 200 and _headers(css)["Content-Type"] == "text/css; charset=utf-8"
    assert js["statusCode"] == 200 and _headers(js)["Content-Type"] == "text/javascript; charset=utf-8"
    assert _headers(js)["Cache-Control"] == "public, max-age=86400"
    assert "progressbar" in js["body"]
    for name in ("index.html", "app.py", "..%2Fapp.py", "billing.js.map"):
        missing = _get(f"/billing/assets/{name}", "/billing/assets/{name}", name)
        assert missing["statusCode"] == 404, name
        assert '"ASSET_NOT_FOUND"' in missing["body"], name
