"""The sample events in events/ are real API Gateway events that the handlers serve (with a
fresh token swapped in, since the committed ones expire)."""

import json

from devserver.invoke import LambdaContext
from tests.support.env import ROOT
from tests.support.handlers import handler_module

KIND = {"reserve": "internal", "finalize": "internal", "release": "internal", "balance": "user",
        "history": "user", "admin": "admin"}


def _invoke(name, tokens):
    event = json.loads((ROOT / "events" / f"{name}.json").read_text())
    if name in KIND:
        subject = "acct-demo" if KIND[name] == "user" else "svc-demo"
        token = getattr(tokens, KIND[name])(subject)
        event["headers"]["Authorization"] = f"Bearer {token}"
    return handler_module(name).lambda_handler(event, LambdaContext())


def test_every_sample_event_is_served(api, tokens):
    assert _invoke("admin", tokens)["statusCode"] == 201
    assert api.set_mode("live", token=tokens.admin()).status == 200
    assert _invoke("reserve", tokens)["statusCode"] == 201
    finalized = _invoke("finalize", tokens)
    assert finalized["statusCode"] == 200
    assert json.loads(finalized["body"])["finalizedMicro"] == "180000"
    api.call("reserve", {"accountId": "acct-demo", "estimatedCostMicro": "1", "reservationId": "sample-run-2"},
             token=tokens.internal("svc-demo"))
    assert _invoke("release", tokens)["statusCode"] == 200
    balance = json.loads(_invoke("balance", tokens)["body"])
    assert balance["totalAvailableMicro"] == "4820000"
    history = json.loads(_invoke("history", tokens)["body"])
    assert [e["entryType"] for e in history["entries"]][:2] == ["release", "reserve"]
    assert _invoke("pricing", tokens)["statusCode"] == 200
    assert json.loads(_invoke("openapi", tokens)["body"])["openapi"].startswith("3.")


def test_bootstrap_event_seeds_without_overwriting(api, tokens):
    api.set_mode("live", token=tokens.admin())
    event = json.loads((ROOT / "events" / "bootstrap.json").read_text())
    result = handler_module("bootstrap").lambda_handler(event, LambdaContext())
    assert result["Status"] == "SUCCESS"
    assert json.loads(handler_module("pricing").lambda_handler(
        json.loads((ROOT / "events" / "pricing.json").read_text()), LambdaContext())["body"])["billingMode"] == "live"
