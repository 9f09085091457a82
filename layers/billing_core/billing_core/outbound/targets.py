"""Where webhooks may go, and the one outbound request.

Production: https only, to public addresses. Loopback (127.0.0.0/8, ::1, localhost) needs
BILLING_WEBHOOK_ALLOW_LOOPBACK; private, shared (CGNAT) and link-local ranges (the instance
metadata address among them) need BILLING_WEBHOOK_ALLOW_PRIVATE; http needs
BILLING_WEBHOOK_ALLOW_HTTP. Unspecified, multicast and reserved addresses are always refused.
An IPv6 address that carries an IPv4 one (mapped, 6to4, NAT64) is judged as that IPv4 address.
Only the local stack sets those (loopback and http: `make run` delivers to a receiver on this
machine).

A URL is checked when it is registered and again at every delivery: the host name is resolved,
every address it resolves to must be allowed, and the request connects to the address that was
checked (TLS still verifies the certificate for the name), so a DNS answer that changes between
the check and the connection cannot redirect a delivery inward. Redirects are not followed.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from billing_core.kernel import settings
from billing_core.kernel.errors import InvalidInput

MAX_URL_LENGTH = 2000
USER_AGENT = "credit-billing-webhooks/1"
_SHARED = ipaddress.ip_network("100.64.0.0/10")
# Not reachable as a receiver, though Python's is_global says otherwise for some of them: IETF
# protocol assignments, the deprecated 6to4 relay anycast and IPv6 site-local ranges.
_NEVER = tuple(ipaddress.ip_network(n) for n in ("192.0.0.0/24", "192.88.99.0/24", "fec0::/10"))
# IPv6 forms that carry an IPv4 address a gateway would connect to: judged as that address.
_NAT64 = tuple(ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48"))

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(InvalidInput):
    code = "WEBHOOK_URL_REFUSED"


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # with the query


def parse(url: str) -> Target:
    """Static checks, the same at registration and delivery."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH or any(c.isspace() for c in url):
        raise TargetRefused("url must be an absolute http(s) URL without spaces", details={"reason": "malformed"})
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetRefused("url is not a valid URL", details={"reason": "malformed"}) from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not parts.hostname:
        raise TargetRefused("url must be an absolute http(s) URL", details={"reason": "malformed"})
    if scheme == "http" and not settings.get().webhook_allow_http:
        raise TargetRefused("url must use https", details={"reason": "https_required"})
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("url must not carry credentials", details={"reason": "credentials"})
    if parts.fragment:
        raise TargetRefused("url must not have a fragment", details={"reason": "malformed"})
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80), path)


def refusal(address: IPAddress) -> str | None:
    """Why this address may not be a target (None: it may)."""
    address = _embedded_ipv4(address)
    s = settings.get()
    if address.is_unspecified or address.is_multicast:
        return "unspecified or multicast address"
    if address.is_loopback:
        return None if s.webhook_allow_loopback else "loopback address"
    if address.is_link_local or address.is_private or address in _SHARED:
        return None if s.webhook_allow_private else "private or link-local address"
    if address.is_reserved or not address.is_global or any(address in net for net in _NEVER):
        return "reserved address"
    return None


def _embedded_ipv4(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv4-mapped, 6to4 (2002::/16) or NAT64 address leads to; else itself."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_registration(url: str) -> Target:
    """What can be known without the network: the URL's shape, and an address or localhost name."""
    target = parse(url)
    address = _literal(target.host)
    if address is None and (target.host == "localhost" or target.host.endswith(".localhost")):
        address = ipaddress.ip_address("127.0.0.1")
    if address is not None:
        why = refusal(address)
        if why:
            raise TargetRefused(f"url points at a {why}", details={"reason": "address_refused"})
    return target


def resolve(target: Target) -> IPAddress:
    """The address to connect to: every address the name resolves to must be allowed."""
    literal = _literal(target.host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise TargetUnreachable(f"cannot resolve {target.host}: {type(exc).__name__}") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise TargetUnreachable(f"{target.host} resolves to no address")
    for address in addresses:
        why = refusal(address)
        if why:
            raise TargetRefused(f"url resolves to a {why}", details={"reason": "address_refused"})
    return addresses[0]


class TargetUnreachable(Exception):
    """The receiver could not be reached or did not accept: retried with backoff."""


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST once to the checked address; the status code. Raises TargetRefused (never retried),
    or TargetUnreachable (retried) for connection errors and timeouts."""
    import urllib3

    target = parse(url)
    address = resolve(target)
    timeout = settings.get().webhook_timeout_seconds
    kwargs: dict[str, object] = {"timeout": urllib3.Timeout(connect=timeout, read=timeout), "retries": False,
                                 "maxsize": 1}
    if target.scheme == "https":
        pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
            str(address), target.port, server_hostname=target.host, assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED", **kwargs)  # type: ignore[arg-type]
    else:
        pool = urllib3.HTTPConnectionPool(str(address), target.port, **kwargs)  # type: ignore[arg-type]
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    if ":" in target.host:  # an IPv6 literal
        host_header = f"[{target.host}]" + ("" if target.port == default_port else f":{target.port}")
    try:
        response = pool.urlopen("POST", target.path, body=body, redirect=False, preload_content=False,
                                headers={**headers, "Host": host_header, "User-Agent": USER_AGENT,
                                         "Content-Type": "application/json"})
        try:
            response.read(1024, decode_content=False)  # the answer is not used; do not wait for a large one
        except Exception:  # noqa: S110 - the status is what counts
            pass
        finally:
            response.release_conn()
        return int(response.status)
    except urllib3.exceptions.HTTPError as exc:
        raise TargetUnreachable(f"{type(exc).__name__}") from None
    finally:
        pool.close()
