"""Every route x every kind of credential. A refused request must be refused with the documented
status and code and change nothing; an accepted one must do its job. Secrets and tokens never
reach the logs."""

from __future__ import annotations

import io
import itertools
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from tests.support.backend import in_process_moto, snapshot_in_process
from tests.support.env import TEST_ENV
from tests.support.handlers import Api

INTERNAL_SECRET = TEST_ENV["BILLING_INTERNAL_JWT_SECRET"]
ADMIN_SECRET = TEST_ENV["BILLING_ADMIN_JWT_SECRET"]
ADMIN_PREVIOUS = TEST_ENV["BILLING_ADMIN_JWT_SECRET_PREV"]
USER_SECRET = TEST_ENV["BILLING_USER_JWT_SECRET"]
UNKNOWN_SECRET = "an-attackers-own-secret-0123456789abcdef"
ACCOUNT = "acct-auth"

ROUTE_KIND = {"reserve": "internal", "finalize": "internal", "release": "internal", "balance": "user",
              "history": "user", "pricing": None, "mint": "admin", "mode": "admin"}
OK_STATUS = {"reserve": 201, "finalize": 200, "release": 200, "balance": 200, "history": 200, "pricing": 200,
             "mint": 201, "mode": 200}

_subjects = itertools.count()


def _claims(kind: str, subject: str, *, lifetime: int = 300, age: int = 0) -> dict[str, Any]:
    now = int(time.time()) - age
    if kind == "internal":
        return {"iss": "loa-finn", "aud": "arrakis-internal", "sub": subject, "iat": now, "exp": now + lifetime}
    if kind == "admin":
        return {"aud": "arrakis-billing-admin", "sub": subject, "iat": now, "exp": now + lifetime}
    return {"sub": subject, "iat": now, "exp": now + lifetime}


SECRET = {"internal": INTERNAL_SECRET, "admin": ADMIN_SECRET, "user": USER_SECRET}


def _sign(claims: dict[str, Any], secret: str, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def _drop(claims: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in claims.items() if k != name}


# A credential: (kind the route needs, subject) -> Authorization header value, or None for none.
Credential = Callable[[str, str], str | None]


def _own(kind: str | None) -> str:
    return kind or "user"  # pricing needs none: use a user token where one is to be presented


CREDENTIALS: dict[str, Credential] = {
    "none": lambda kind, sub: None,
    "empty-bearer": lambda kind, sub: "Bearer ",
    "basic-scheme": lambda kind, sub: "Basic dXNlcjpwYXNz",
    "garbage": lambda kind, sub: "Bearer not-a-jwt-at-all",
    "three-garbage-segments": lambda kind, sub: "Bearer aaa.bbb.ccc",
    "alg-none": lambda kind, sub: "Bearer " + jwt.encode(_claims(_own(kind), sub), None, algorithm="none"),
    "alg-hs512-right-secret": lambda kind, sub: "Bearer " + _sign(_claims(_own(kind), sub), SECRET[_own(kind)],
                                                                   "HS512"),
    "unknown-secret": lambda kind, sub: "Bearer " + _sign(_claims(_own(kind), sub), UNKNOWN_SECRET),
    "expired": lambda kind, sub: "Bearer " + _sign(_claims(_own(kind), sub, lifetime=200, age=300),
                                                   SECRET[_own(kind)]),
    "expired-within-leeway": lambda kind, sub: "Bearer " + _sign(_claims(_own(kind), sub, lifetime=280, age=290),
                                                                 SECRET[_own(kind)]),
    "missing-exp": lambda kind, sub: "Bearer " + _sign(_drop(_claims(_own(kind), sub), "exp"), SECRET[_own(kind)]),
    "missing-iat": lambda kind, sub: "Bearer " + _sign(_drop(_claims(_own(kind), sub), "iat"), SECRET[_own(kind)]),
    "missing-sub": lambda kind, sub: "Bearer " + _sign(_drop(_claims(_own(kind), sub), "sub"), SECRET[_own(kind)]),
    "wrong-issuer": lambda kind, sub: "Bearer " + _sign({**_claims(_own(kind), sub), "iss": "evil-corp"},
                                                        SECRET[_own(kind)]),
    "issued-in-the-future": lambda kind, sub: "Bearer " + _sign(_claims(_own(kind), sub, age=-3600),
                                                                SECRET[_own(kind)]),
    "not-before-in-the-future": lambda kind, sub: "Bearer " + _sign({**_claims(_own(kind), sub),
                                                                     "nbf": int(time.time()) + 600},
                                                                    SECRET[_own(kind)]),
    "exp-not-a-number": lambda kind, sub: "Bearer " + _sign({**_claims(_own(kind), sub), "exp": "tomorrow"},
                                                            SECRET[_own(kind)]),
    "empty-sub": lambda kind, sub: "Bearer " + _sign({**_claims(_own(kind), sub), "sub": " "}, SECRET[_own(kind)]),
    "numeric-sub": lambda kind, sub: "Bearer " + _sign({**_claims(_own(kind), sub), "sub": 42}, SECRET[_own(kind)]),
    "internal-lifetime-300": lambda kind, sub: "Bearer " + _sign(_claims("internal", sub, lifetime=300),
                                                                 INTERNAL_SECRET),
    "internal-lifetime-301": lambda kind, sub: "Bearer " + _sign(_claims("internal", sub, lifetime=301),
                                                                 INTERNAL_SECRET),
    "internal-secret-admin-audience": lambda kind, sub: "Bearer " + _sign(
        {**_claims("internal", sub), "aud": "arrakis-billing-admin"}, INTERNAL_SECRET),
    "genuine-internal": lambda kind, sub: "Bearer " + _sign(_claims("internal", sub), INTERNAL_SECRET),
    "genuine-admin": lambda kind, sub: "Bearer " + _sign(_claims("admin", sub, lifetime=3600), ADMIN_SECRET),
    "admin-previous-secret": lambda kind, sub: "Bearer " + _sign(_claims("admin", sub, lifetime=3600),
                                                                 ADMIN_PREVIOUS),
    "genuine-user": lambda kind, sub: "Bearer " + _sign(_claims("user", ACCOUNT, lifetime=3600), USER_SECRET),
}

OK = (0, None)  # the route's own success status


def expected(route: str, credential: str) -> tuple[int, str | None]:
    kind = ROUTE_KIND[route]
    if kind is None:
        return OK  # pricing is public: whatever is presented is ignored
    if credential in ("none", "empty-bearer", "basic-scheme"):
        return 401, "MISSING_TOKEN"
    if credential in ("garbage", "three-garbage-segments", "alg-none", "alg-hs512-right-secret", "unknown-secret",
                      "missing-sub", "issued-in-the-future", "not-before-in-the-future", "exp-not-a-number",
                      "empty-sub", "numeric-sub"):
        return 401, "INVALID_TOKEN"
    if credential == "expired":
        return 401, "TOKEN_EXPIRED"
    if credential == "expired-within-leeway":
        return OK
    if credential == "missing-exp":
        return 401, "INVALID_TOKEN"
    if credential == "missing-iat":
        return OK if kind == "user" else (401, "INVALID_TOKEN")
    if credential == "wrong-issuer":
        # Only internal tokens have an issuer to check (users' is optional and unset here).
        return (401, "INVALID_TOKEN") if kind == "internal" else OK
    presented = {"internal-lifetime-300": "internal", "internal-lifetime-301": "internal",
                 "internal-secret-admin-audience": "internal", "genuine-internal": "internal",
                 "genuine-admin": "admin", "admin-previous-secret": "admin", "genuine-user": "user"}[credential]
    if presented != kind:
        return 403, "WRONG_AUDIENCE"
    if credential == "internal-lifetime-301":
        return 401, "TOKEN_LIFETIME_EXCEEDED"
    if credential == "internal-secret-admin-audience":
        return 403, "WRONG_AUDIENCE"
    return OK


class World:
    def __init__(self, db: Any) -> None:
        self.db = db
        self.api = Api()

    def setup_admin(self) -> str:
        return _sign(_claims("admin", f"ops-auth-setup-{next(_subjects)}", lifetime=3600), ADMIN_SECRET)

    def request(self, route: str, subject: str) -> dict[str, Any]:
        """A request that succeeds for the right caller: finalize/release get a fresh reservation
        of `subject`'s, so an accepted call has something to settle."""
        if route in ("finalize", "release"):
            rid = f"res-auth-{next(_subjects)}"
            token = _sign(_claims("internal", subject), INTERNAL_SECRET)
            made = self.api.call("reserve", {"accountId": ACCOUNT, "estimatedCostMicro": "1000",
                                             "reservationId": rid}, token=token)
            assert made.status == 201, made.body
            body = {"reservationId": rid, "actualCostMicro": "400"} if route == "finalize" else {"reservationId": rid}
            return {"body": body}
        return {
            "reserve": {"body": {"accountId": ACCOUNT, "estimatedCostMicro": "1000"}},
            "mint": {"body": {"amountMicro": "1000", "sourceType": "grant", "description": "auth matrix"},
                     "path": {"accountId": ACCOUNT}},
            "mode": {"body": {"mode": "soft"}},
        }.get(route, {})


@pytest.fixture(scope="module")
def world():
    with in_process_moto(TEST_ENV) as db:
        w = World(db)
        minted = w.api.mint(ACCOUNT, 10_000_000, token=w.setup_admin())
        assert minted.status == 201, minted.body
        yield w


@pytest.mark.parametrize("credential", list(CREDENTIALS))
@pytest.mark.parametrize("route", list(ROUTE_KIND))
def test_route_credential_matrix(world, route, credential):
    subject = f"auth-{next(_subjects)}"
    kwargs = world.request(route, subject)
    header = CREDENTIALS[credential](ROUTE_KIND[route], subject)
    headers = {"Authorization": header} if header is not None else {}
    before = snapshot_in_process()

    reply = world.api.call(route, headers=headers, **kwargs)

    status, code = expected(route, credential)
    if (status, code) == OK:
        assert reply.status == OK_STATUS[route], reply.body
        assert reply.code is None
    else:
        assert (reply.status, reply.code) == (status, code), reply.body
        assert snapshot_in_process() == before, "a refused request changed state"
        presented = (header or "").partition(" ")[2]
        assert len(presented) < 8 or presented not in json.dumps(reply.body)


@pytest.mark.parametrize("route", ["balance", "history"])
def test_user_token_is_scoped_to_its_own_account(world, route):
    token = _sign(_claims("user", ACCOUNT, lifetime=3600), USER_SECRET)
    other = world.api.call(route, token=token, query={"accountId": "acct-someone-else"})
    assert (other.status, other.code) == (403, "ACCOUNT_SCOPE"), other.body
    assert "acct-someone-else" not in json.dumps(other.body).replace('"code"', "")
    own = world.api.call(route, token=token, query={"accountId": ACCOUNT})
    assert own.status == 200, own.body
    assert own.body.get("accountId", ACCOUNT) == ACCOUNT


def test_balance_answers_for_the_token_subject_only(world):
    token = _sign(_claims("user", ACCOUNT, lifetime=3600), USER_SECRET)
    reply = world.api.call("balance", token=token)
    assert reply.status == 200
    assert reply.body["accountId"] == ACCOUNT
    assert int(reply.body["totalAvailableMicro"]) > 0


def test_secrets_and_tokens_never_reach_the_logs(world, caplog, capsys):
    """Failing requests are logged (at INFO, as 'request refused' with their code), but neither
    the presented token nor any signing secret appears in any log line of any logger."""
    from billing_core.api import edge as http

    stream = io.StringIO()
    mirror = logging.StreamHandler(stream)
    mirror.setFormatter(http.logger.registered_formatter)
    powertools_logger = logging.getLogger(http.logger.name)
    previous_level = powertools_logger.level
    powertools_logger.addHandler(mirror)
    powertools_logger.addHandler(caplog.handler)
    powertools_logger.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    presented = []
    try:
        for route, credential in [("reserve", "expired"), ("reserve", "unknown-secret"), ("mint", "genuine-internal"),
                                  ("finalize", "internal-lifetime-301"), ("mode", "admin-previous-secret"),
                                  ("history", "alg-none"), ("balance", "missing-exp"), ("reserve", "garbage")]:
            subject = f"auth-log-{next(_subjects)}"
            kwargs = world.request(route, subject) if route != "finalize" else {
                "body": {"reservationId": "res-auth-log", "actualCostMicro": "1"}}
            header = CREDENTIALS[credential](ROUTE_KIND[route], subject)
            presented.append(header.split(" ", 1)[1])
            world.api.call(route, headers={"Authorization": header}, **kwargs)
        user = _sign(_claims("user", ACCOUNT, lifetime=3600), USER_SECRET)
        presented.append(user)
        world.api.call("balance", token=user, query={"accountId": "acct-someone-else"})
    finally:
        powertools_logger.removeHandler(mirror)
        powertools_logger.removeHandler(caplog.handler)
        powertools_logger.setLevel(previous_level)

    captured = capsys.readouterr()
    logs = "\n".join([stream.getvalue(), caplog.text, captured.out, captured.err,
                      *(json.dumps(r.__dict__, default=str) for r in caplog.records)])
    # The capture works: the refusals were logged with their codes.
    for code in ("TOKEN_EXPIRED", "INVALID_TOKEN", "WRONG_AUDIENCE", "TOKEN_LIFETIME_EXCEEDED", "ACCOUNT_SCOPE"):
        assert code in stream.getvalue(), f"{code} was not logged:\n{stream.getvalue()}"
    secrets = [INTERNAL_SECRET, ADMIN_SECRET, ADMIN_PREVIOUS, USER_SECRET, UNKNOWN_SECRET]
    for secret in secrets:
        assert secret not in logs
    for token in presented:
        signature = token.rsplit(".", 1)[-1]
        assert token not in logs
        assert len(signature) < 8 or signature not in logs


def _every_authenticated_route() -> list[tuple[str, str]]:
    from devserver.invoke import load_handler, routes

    found = []
    for name, route in sorted(routes().items()):
        kind = getattr(load_handler(route.code_dir).lambda_handler, "auth_kind", None)
        if kind is not None:
            found.append((name, kind))
    return found


AUTHENTICATED = _every_authenticated_route()


def test_the_route_table_covers_every_served_kind():
    kinds = dict(AUTHENTICATED)
    assert {"reserve", "adjust", "refund", "createtopup", "listdlq", "replaydlq", "grant", "usage", "summary",
            "setplan"} <= set(kinds)
    assert kinds["adjust"] == "admin" and kinds["createtopup"] == "user" and kinds["usage"] == "internal"


@pytest.mark.parametrize("credential", ["none", "garbage", "unknown-secret", "expired", "genuine-internal",
                                        "genuine-admin", "genuine-user"])
@pytest.mark.parametrize(("route", "kind"), AUTHENTICATED)
def test_every_route_refuses_missing_forged_and_wrong_kind_tokens(world, route, kind, credential):
    """Every authenticated route of the template (new ones included automatically): a refused
    credential is refused before the body is looked at, with the documented code, and changes nothing."""
    from devserver.invoke import routes

    status, code = expected("reserve" if kind == "internal" else "mint" if kind == "admin" else "balance",
                            credential)
    if (status, code) == OK:
        return  # the right kind of token: covered by each route's own tests
    header = CREDENTIALS[credential](kind, f"auth-{next(_subjects)}")
    headers = {"Authorization": header} if header is not None else {}
    path = {name: "x-1" for name in ("accountId", "orderId", "itemId", "campaignId")
            if "{" + name + "}" in routes()[route].path}
    before = snapshot_in_process()
    reply = world.api.call(route, {"anything": "1"} if routes()[route].method != "GET" else None, headers=headers,
                           path=path)
    assert (reply.status, reply.code) == (status, code), reply.body
    assert snapshot_in_process() == before
