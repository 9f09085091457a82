"""The whole local stack over HTTP (fixture app), the real template's routes, and the tokens."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import jwt
import pytest
import requests

from devserver.gateway import SAM_CLI_VERSION, SamCliVersionError, build_api, check_sam_cli_version
from devserver.testing import start_stack
from devserver.tokens import DEV_SECRET_DEFAULTS, make_token
from tests.support.banner import fake_stack

REPO = Path(__file__).resolve().parents[2]
FIXTURE_TEMPLATE = Path(__file__).parent / "fixtures" / "template.yaml"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    """One stack for the module; its teardown checks that SIGTERM stops it cleanly."""
    running = start_stack(template=FIXTURE_TEMPLATE, workers=3, seed="fixture_core:seed",
                          log_dir=tmp_path_factory.mktemp("fixture-stack"))
    try:
        yield running
    finally:
        code = running.stop()
    assert code == 0, running.log()
    assert "devserver: stopping" in running.log()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{running.url}/echo/x", timeout=5)


def test_concurrent_http_requests_each_get_their_own_answer(stack):
    names = [f"http-{i}" for i in range(30)]

    def get(name):
        return requests.get(f"{stack.url}/echo/{name}", params={"sleep": "0.05"}, timeout=30)

    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(get, names))
    for name, response in zip(names, responses, strict=True):
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["name"], body["resolverSees"], body["moduleSees"]) == (name, name, name)
        assert body["env"]["AWS_ENDPOINT_URL"] == stack.moto_url


def test_seeded_data_is_read_through_the_emulation(stack):
    response = requests.get(f"{stack.url}/items/seeded", timeout=30)
    assert response.status_code == 200
    assert response.json()["items"][0]["note"] == {"S": "from seed"}
    assert requests.get(f"{stack.url}/items/absent", timeout=30).status_code == 404


def test_tables_exist_in_the_stacks_emulation(stack):
    client = boto3.client(
        "dynamodb",
        endpoint_url=stack.moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    assert client.list_tables()["TableNames"] == ["ItemsTable"]


def test_a_failing_handler_is_a_502_and_the_stack_carries_on(stack):
    response = requests.get(f"{stack.url}/boom", timeout=30)
    assert response.status_code == 502
    assert response.json() == {"message": "Internal server error"}
    assert requests.get(f"{stack.url}/echo/still-up", timeout=30).status_code == 200


def test_unknown_route_is_api_gateways_403(stack):
    response = requests.get(f"{stack.url}/nowhere", timeout=30)
    assert response.status_code == 403
    assert response.json() == {"message": "Missing Authentication Token"}


def test_real_template_stack_starts_with_its_tables_and_routes(tmp_path):
    """`make run` as far as devserver is concerned (the seed belongs to the core)."""
    with start_stack(workers=1, seed=None, log_dir=tmp_path) as running:
        client = boto3.client(
            "dynamodb",
            endpoint_url=running.moto_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        assert {"BillingTable", "LedgerTable"} <= set(client.list_tables()["TableNames"])
        missing = requests.get(f"{running.url}/no/such/route", timeout=30)
        # template.yaml's GatewayResponses.MISSING_AUTHENTICATION_TOKEN, as API Gateway would answer
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "ROUTE_NOT_FOUND"


def test_routes_come_from_the_template():
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    doc = yaml.load((REPO / "template.yaml").read_text(), Loader=Loader)  # a SafeLoader subclass
    expected = {
        (event["Properties"]["Method"].upper(), event["Properties"]["Path"], name)
        for name, resource in doc["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
        for event in (resource["Properties"].get("Events") or {}).values()
        if event["Type"] == "Api"
    }
    api = build_api(REPO / "template.yaml")
    got = {(method, route.path, route.function_name) for route in api.routes for method in route.methods}
    assert got == expected
    assert api.stage_name == "v1"


def test_sam_cli_version_is_pinned(monkeypatch):
    import samcli

    check_sam_cli_version()
    monkeypatch.setattr(samcli, "__version__", "1.171.0")
    with pytest.raises(SamCliVersionError, match=SAM_CLI_VERSION):
        check_sam_cli_version()


@pytest.mark.parametrize(
    ("kind", "secret", "claims"),
    [
        ("internal", "BILLING_INTERNAL_JWT_SECRET", {"iss": "loa-finn", "aud": "arrakis-internal", "sub": "svc-demo"}),
        ("admin", "BILLING_ADMIN_JWT_SECRET", {"aud": "arrakis-billing-admin", "sub": "ops-admin"}),
        ("user", "BILLING_USER_JWT_SECRET", {"sub": "acct-demo"}),
    ],
)
def test_tokens_cli_prints_a_fresh_valid_token(kind, secret, claims):
    env = {k: v for k, v in os.environ.items() if k not in DEV_SECRET_DEFAULTS}
    out = subprocess.run(
        [sys.executable, "-m", "devserver.tokens", kind],
        cwd=REPO, env=env, capture_output=True, text=True, check=True, timeout=30,
    ).stdout.strip()
    decoded = jwt.decode(
        out,
        DEV_SECRET_DEFAULTS[secret],
        algorithms=["HS256"],
        audience=claims.get("aud"),
        options={"verify_aud": "aud" in claims},
    )
    for key, value in claims.items():
        assert decoded[key] == value
    assert decoded["exp"] > time.time()
    if kind == "internal":
        assert decoded["exp"] - decoded["iat"] <= 300
    else:
        assert decoded["exp"] - decoded["iat"] >= 3600


def test_tokens_use_the_environments_secret_and_subject():
    token = make_token("user", "acct-42", environ={"BILLING_USER_JWT_SECRET": "s" * 40})
    assert jwt.decode(token, "s" * 40, algorithms=["HS256"])["sub"] == "acct-42"


def test_banner_has_secrets_tokens_and_a_curl(capsys):
    from devserver.__main__ import banner

    stack = fake_stack()
    text = banner(stack)
    for name, value in DEV_SECRET_DEFAULTS.items():
        assert f"{name}={value}" in text
    assert "curl -s http://127.0.0.1:3000/api/billing/pricing" in text
    assert "-m devserver.tokens internal)" in text
    assert json.dumps(stack.tables)  # a banner for a real stack lists its tables too
    assert "BillingTable, LedgerTable" in text
