"""Admin tokens: where they come from, the claims of minted ones, and that neither the secret nor a
token is ever printed (except by `billing-admin token`, whose job it is)."""

from __future__ import annotations

import os

import jwt
import pytest

from billing_admin import auth
from billing_admin.client import ApiClient
from tests.support.cli import SECRET
from tests.support.fakeapi import FakeApi, Reply, error

AUDIENCE = "arrakis-billing-admin"


def decode(token: str, audience: str = AUDIENCE) -> dict:
    return jwt.decode(token, SECRET, algorithms=["HS256"], audience=audience,
                      options={"require": ["exp", "iat", "sub", "aud"]})


def test_minted_token_claims() -> None:
    source = auth.MintedToken(SECRET, "alice", clock=lambda: 1_900_000_000)
    claims = jwt.decode(source.get(), SECRET, algorithms=["HS256"], audience=AUDIENCE,
                        options={"verify_exp": False, "verify_iat": False})
    assert claims["aud"] == AUDIENCE and claims["sub"] == "alice"
    assert claims["iat"] == 1_900_000_000 and claims["exp"] == 1_900_000_000 + auth.TOKEN_LIFETIME
    assert auth.TOKEN_LIFETIME <= 300  # short-lived
    assert jwt.get_unverified_header(source.get())["alg"] == "HS256"


def test_minted_tokens_are_reused_then_renewed_before_they_expire() -> None:
    now = [1_900_000_000.0]
    source = auth.MintedToken(SECRET, "alice", clock=lambda: now[0])
    first = source.get()
    now[0] += auth.TOKEN_LIFETIME - auth.REFRESH_MARGIN - 1
    assert source.get() == first
    now[0] += 2
    renewed = source.get()
    assert renewed != first
    assert jwt.decode(renewed, SECRET, algorithms=["HS256"], audience=AUDIENCE,
                      options={"verify_exp": False, "verify_iat": False})["iat"] == int(now[0])


def test_subject_is_the_actor_else_the_login_name_never_an_environment_variable() -> None:
    """$USER (or $LOGNAME) can hold anything, e.g. a bearer token a README stored in it: the actor
    recorded in the ledger is --actor or the login name from the password database."""
    import pwd

    token = jwt.encode({"sub": "acct-demo", "exp": 2_000_000_000}, "x" * 32, algorithm="HS256")
    environ = {"BILLING_ADMIN_JWT_SECRET": SECRET, "USER": token, "LOGNAME": token}
    login = pwd.getpwuid(os.getuid()).pw_name
    assert auth.resolve(environ).subject == login  # type: ignore[union-attr]
    assert token not in auth.resolve(environ).subject  # type: ignore[union-attr]
    assert auth.resolve(environ, actor="carol").subject == "carol"  # type: ignore[union-attr]
    assert auth.resolve({"BILLING_ADMIN_JWT_SECRET": SECRET}).subject  # type: ignore[union-attr]


@pytest.mark.parametrize("actor", ["eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig/x", "a b", "-x", "x" * 129, "ACCT#x",
                                   "bob\n", ""])
def test_an_actor_that_is_not_an_identifier_is_a_usage_error(cli, fake: FakeApi, actor: str) -> None:
    ran = cli("balance", "acct-1", "--actor", actor)
    assert ran.code == 2 and fake.requests == [], ran.err
    assert "eyJzdWIi" not in ran.err  # a token given as --actor is not echoed whole


def test_audience_can_be_configured() -> None:
    source = auth.resolve({"BILLING_ADMIN_JWT_SECRET": SECRET, "BILLING_ADMIN_JWT_AUDIENCE": "other-aud"})
    assert decode(source.get(), "other-aud")["aud"] == "other-aud"


def test_token_precedence() -> None:
    environ = {"BILLING_ADMIN_JWT_SECRET": SECRET, "BILLING_ADMIN_TOKEN": "from-env"}
    assert auth.resolve(environ, token="from-flag").get() == "from-flag"
    assert auth.resolve(environ).get() == "from-env"
    assert isinstance(auth.resolve({"BILLING_ADMIN_JWT_SECRET": SECRET}), auth.MintedToken)
    with pytest.raises(auth.ConfigError):
        auth.resolve({})


def test_repr_hides_secret_and_tokens() -> None:
    minted = auth.MintedToken(SECRET, "alice")
    token = minted.get()
    static = auth.StaticToken("static-token-value", "--token")
    client = ApiClient("http://127.0.0.1:1", minted)
    for text in (repr(minted), str(minted), repr(static), repr(client)):
        assert SECRET not in text and token not in text and "static-token-value" not in text


def test_each_request_carries_a_minted_admin_token(cli, fake: FakeApi) -> None:
    fake.route("GET", r"/admin/billing/accounts/acct-1/balance", {"accountId": "acct-1", "pools": []})
    assert cli("balance", "acct-1", "--actor", "ops-dana").code == 0
    (sent,) = fake.requests
    claims = decode(sent.token or "")
    assert claims["sub"] == "ops-dana" and claims["exp"] - claims["iat"] == auth.TOKEN_LIFETIME
    assert sent.headers["user-agent"].startswith("billing-admin/")


def test_a_given_token_is_sent_as_is(cli, fake: FakeApi) -> None:
    fake.route("GET", r"/admin/billing/accounts/acct-1/balance", {"accountId": "acct-1", "pools": []})
    assert cli("balance", "acct-1", env={"BILLING_ADMIN_TOKEN": "given.token.value"}).code == 0
    assert cli("balance", "acct-1", "--token", "flag.token.value").code == 0
    assert [r.token for r in fake.requests] == ["given.token.value", "flag.token.value"]


def test_secret_and_tokens_never_reach_the_output(cli, fake: FakeApi) -> None:
    fake.route("POST", r"/admin/billing/accounts/ok/mint", Reply(201, {"lotId": "lot-1", "originalMicro": "5"}))
    fake.route("POST", r"/admin/billing/accounts/refused/mint", error(401, "INVALID_TOKEN", "bad signature"))
    fake.route("GET", r"/admin/billing/config", error(500, "INTERNAL_ERROR", "internal error"))
    outputs = []
    for argv in (["mint", "ok", "5", "--source-type", "deposit", "--description", "d"],
                 ["mint", "ok", "5", "--source-type", "deposit", "--description", "d", "--json"],
                 ["mint", "refused", "5", "--source-type", "deposit", "--description", "d"],
                 ["mint", "refused", "5", "--source-type", "deposit", "--description", "d", "--json"],
                 ["mode", "--json"], ["mode"], ["balance", "nobody"], ["--help"],
                 ["mint", "x", "5", "--source-type", "deposit", "--description", "d", "--url", "http://127.0.0.1:9"]):
        ran = cli(*argv, env={"BILLING_ADMIN_TOKEN": None})
        outputs.append(ran.out + ran.err)
    sent_tokens = {r.token for r in fake.requests if r.token}
    assert sent_tokens
    for text in outputs:
        assert SECRET not in text
        for token in sent_tokens:
            assert token not in text
    assert any("INVALID_TOKEN" in text and "hint" in text for text in outputs)


def test_token_command_prints_a_usable_token(cli, fake: FakeApi) -> None:
    ran = cli("token", "--actor", "ops-erin")
    assert ran.code == 0 and SECRET not in ran.out + ran.err
    claims = decode(ran.out.strip())
    assert claims["sub"] == "ops-erin" and claims["exp"] - claims["iat"] == auth.TOKEN_LIFETIME

    ran = cli("token", "--ttl", "3600", "--json")
    body = ran.json()
    assert decode(body["token"])["exp"] - decode(body["token"])["iat"] == 3600
    assert body["sub"] == auth.default_actor() and body["aud"] == AUDIENCE and body["expiresAt"].endswith("Z")
    assert fake.requests == []  # minted locally, nothing sent


def test_token_command_needs_the_secret(cli) -> None:
    ran = cli("token", env={"BILLING_ADMIN_JWT_SECRET": None, "BILLING_ADMIN_TOKEN": "x"})
    assert ran.code == 2 and "BILLING_ADMIN_JWT_SECRET" in ran.err and ran.out == ""


def test_plain_http_to_a_remote_host_is_warned_about(cli) -> None:
    ran = cli("balance", "acct-1", "--url", "http://192.0.2.1:9", "--timeout", "0.2", "--max-retries", "0")
    assert "plain HTTP" in ran.err
