"""The billing API over HTTP (stdlib urllib), as an admin.

- Base URL: --url, else $BILLING_API_URL, else http://127.0.0.1:3000 (the local stack).
- Every request carries `Authorization: Bearer <admin token>` from an auth.TokenSource.
- Errors are the contract's `{"error": {"code", "message", "details"}}`, raised as ApiError;
  anything else (a proxy's HTML, API Gateway's own `{"message": ...}`) gets code HTTP_<status>.
- 429: waits as long as Retry-After says (seconds or an HTTP date), tells the operator, retries.
  503 CONTENTION (the API's "nothing was written, try again"): retries with backoff.
  A transport failure (refused, reset, timed out) is retried only when repeating the request is
  safe: GET/PUT, or a body with an idempotencyKey.
- Redirects are not followed, so the token is never sent anywhere but --url.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from billing_admin import __version__
from billing_admin.auth import TokenSource
from billing_admin.errors import UsageError

DEFAULT_URL = "http://127.0.0.1:3000"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 5
MAX_RETRY_AFTER = 300.0  # a longer Retry-After is reported instead of waited for
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass
class ApiError(Exception):
    """A refused or failed call. status 0 means the API was not reached at all."""

    status: int
    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    method: str = ""
    path: str = ""

    def __str__(self) -> str:
        where = f"HTTP {self.status}" if self.status else "no response"
        return f"{self.code} ({where}): {self.message}"

    def as_body(self) -> dict[str, Any]:
        """The contract's error body (the server's own when it sent one)."""
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return self.body
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def segment(value: str) -> str:
    """One path segment, percent-encoded (an id can never step into another route)."""
    return urllib.parse.quote(str(value), safe="")


def base_url(url: str | None, environ: Mapping[str, str]) -> str:
    chosen = (url or environ.get("BILLING_API_URL") or DEFAULT_URL).strip()
    parsed = urllib.parse.urlsplit(chosen)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UsageError(f"the API URL must be http(s)://host[:port][/prefix], got {chosen!r}")
    if parsed.query or parsed.fragment:
        raise UsageError("the API URL must not carry a query or a fragment")
    return chosen.rstrip("/")


def plain_http_to_remote(url: str) -> bool:
    """Whether a token would cross the network unencrypted."""
    parsed = urllib.parse.urlsplit(url)
    return parsed.scheme == "http" and (parsed.hostname or "") not in LOCAL_HOSTS


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None  # surfaces as an HTTPError with the 3xx status


class _Unreachable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def error_from(status: int, body: Any, *, method: str = "", path: str = "") -> ApiError:
    """The ApiError for an HTTP error status and its (decoded) body."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        details = err.get("details") if isinstance(err.get("details"), dict) else {}
        return ApiError(status, str(err.get("code") or f"HTTP_{status}"), str(err.get("message") or ""),
                        details, body, method, path)
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "unexpected status"
    if isinstance(body, dict) and isinstance(body.get("message"), str):  # API Gateway's own errors
        message = body["message"]
    elif isinstance(body, str) and body.strip():
        message = " ".join(body.split())[:200]
    else:
        message = phrase
    if 300 <= status < 400:
        message = f"the API answered with a redirect ({phrase}); it is not followed, check --url"
    return ApiError(status, f"HTTP_{status}", message, {}, body, method, path)


class ApiClient:
    """Admin calls against one deployment. `notify` receives human-readable retry notices."""

    def __init__(self, url: str, tokens: TokenSource, *, timeout: float = DEFAULT_TIMEOUT,
                 max_retries: int = DEFAULT_MAX_RETRIES, notify: Callable[[str], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.url = url.rstrip("/")
        self.tokens = tokens
        self.timeout = timeout
        self.max_retries = max_retries
        self.notify = notify or (lambda message: None)
        self.sleep = sleep
        self._opener = urllib.request.build_opener(_NoRedirect)

    def __repr__(self) -> str:
        return f"ApiClient({self.url!r}, {self.tokens!r})"

    # -- verbs ------------------------------------------------------------------------------------
    def get(self, path: str, query: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, query=query)

    def post(self, path: str, body: Any = None, *, timeout: float | None = None) -> Any:
        return self.request("POST", path, body=body, timeout=timeout)

    def put(self, path: str, body: Any = None) -> Any:
        return self.request("PUT", path, body=body)

    def request(self, method: str, path: str, *, body: Any = None, query: Mapping[str, Any] | None = None,
                timeout: float | None = None) -> Any:
        """The decoded JSON body of a 2xx answer, or ApiError."""
        url = self.url + path
        params = {k: str(v) for k, v in (query or {}).items() if v is not None and v != ""}
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = None if body is None else json.dumps(body).encode("utf-8")
        safe_to_repeat = method in IDEMPOTENT_METHODS or (isinstance(body, dict) and bool(body.get("idempotencyKey")))
        retries = 0
        while True:
            try:
                status, raw, headers = self._send(method, url, data, timeout or self.timeout)
            except _Unreachable as exc:
                if safe_to_repeat and retries < self.max_retries:
                    wait = min(2.0 ** retries, 30.0)
                    retries += 1
                    self.notify(f"{method} {path}: {exc.reason}; retrying in {wait:g}s "
                                f"(retry {retries} of {self.max_retries})")
                    self.sleep(wait)
                    continue
                raise ApiError(0, "CONNECTION_FAILED", f"cannot reach {self.url}: {exc.reason}",
                               method=method, path=path) from None
            decoded = _decode(raw)
            if 200 <= status < 300:
                if decoded is not None and not isinstance(decoded, dict | list):
                    raise ApiError(status, "INVALID_RESPONSE", "the API answered with something that is not JSON",
                                   body=decoded, method=method, path=path)
                return {} if decoded is None else decoded
            error = error_from(status, decoded, method=method, path=path)
            wait = self._retry_wait(error, headers, retries)
            if wait is None:
                raise error
            retries += 1
            if status == 429:
                self.notify(f"rate limited ({error.code}): waiting {wait:g}s as Retry-After asks, then retrying "
                            f"(retry {retries} of {self.max_retries})")
            else:
                self.notify(f"{error.code}: retrying in {wait:g}s (retry {retries} of {self.max_retries})")
            self.sleep(wait)

    def _retry_wait(self, error: ApiError, headers: Mapping[str, str], retries: int) -> float | None:
        if retries >= self.max_retries:
            return None
        if error.status == 429:
            wait = retry_after_seconds(headers.get("Retry-After"))
            if wait is None:
                return min(2.0 ** retries, 60.0)
            return wait if wait <= MAX_RETRY_AFTER else None
        if error.status == 503 and error.code == "CONTENTION":
            return min(0.25 * 2 ** retries, 5.0)
        return None

    def _send(self, method: str, url: str, data: bytes | None, timeout: float) -> tuple[int, bytes, Mapping[str, str]]:
        headers = {
            "Accept": "application/json",
            "User-Agent": f"billing-admin/{__version__}",
            "Authorization": f"Bearer {self.tokens.get()}",
        }
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - http(s) only
        try:
            with self._opener.open(request, timeout=timeout) as response:
                return response.status, response.read(), response.headers
        except urllib.error.HTTPError as exc:
            with exc:
                try:
                    raw = exc.read()
                except (OSError, http.client.HTTPException):
                    raw = b""
                return exc.code, raw, exc.headers or {}
        except urllib.error.URLError as exc:
            raise _Unreachable(str(exc.reason)) from None
        except (OSError, http.client.HTTPException) as exc:
            raise _Unreachable(str(exc) or type(exc).__name__) from None

    # -- pagination -------------------------------------------------------------------------------
    def collect(self, path: str, query: Mapping[str, Any] | None, *, key: str | tuple[str, ...], limit: int | None,
                page_size: int = 100) -> dict[str, Any]:
        """Follow pagination.nextCursor while hasMore, up to `limit` items (None: all of them).

        `key` names the list in each page (a tuple: the first one the first page has). Returns the first
        page's body with that key holding every item fetched and `pagination` the last page's (so a
        one-page answer is exactly the API's response)."""
        candidates = (key,) if isinstance(key, str) else key
        key = candidates[0]
        items: list[Any] = []
        merged: dict[str, Any] = {}
        cursor: str | None = None
        seen_cursors: set[str] = set()
        while True:
            size = page_size if limit is None else max(1, min(page_size, limit - len(items)))
            page = self.get(path, {**(query or {}), "limit": size, "cursor": cursor})
            if not isinstance(page, dict):
                raise ApiError(200, "INVALID_RESPONSE", f"expected an object with {key!r}", body=page, path=path)
            if not merged:
                merged = dict(page)
                key = next((name for name in candidates if name in page), candidates[0])
            batch = page.get(key) or []
            items.extend(batch)
            pagination = page.get("pagination") or {}
            merged["pagination"] = pagination
            cursor = pagination.get("nextCursor")
            if limit is not None and len(items) >= limit:
                del items[limit:]
                break
            if not pagination.get("hasMore") or not cursor or not batch or cursor in seen_cursors:
                break
            seen_cursors.add(cursor)
        merged[key] = items
        return merged
