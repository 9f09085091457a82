"""template.yaml, the handlers' routers, the sample events and the OpenAPI document must agree:
routes are declared once per handler and the template wires exactly those."""

import json
import subprocess
import sys
from pathlib import Path

from samcli.yamlhelper import yaml_parse

from tests.support.env import ROOT
from tests.support.handlers import handler_module


def _template():
    return yaml_parse((ROOT / "template.yaml").read_text())


def _template_routes():
    routes = set()
    for resource in _template()["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        code = Path(resource["Properties"]["CodeUri"]).name
        for event in (resource["Properties"].get("Events") or {}).values():
            if event["Type"] == "Api":
                routes.add((code, event["Properties"]["Method"].upper(), event["Properties"]["Path"]))
    return routes


def _handler_routes():
    routes = set()
    for code, _method, _ in _template_routes():
        module = handler_module(code)
        if not hasattr(module, "router"):
            continue
        for (rule, methods, *_rest) in module.router._routes:
            path = rule.replace("<", "{").replace(">", "}")
            for m in methods if isinstance(methods, tuple | list) else (methods,):
                routes.add((code, m.upper(), path))
    return routes


def test_every_template_route_is_served_by_its_handler_and_vice_versa():
    assert _template_routes() == _handler_routes()


def test_every_function_has_a_handler_and_a_sample_event():
    for resource in _template()["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        code = Path(resource["Properties"]["CodeUri"]).name
        assert (ROOT / "functions" / code / "app.py").exists()
        assert (ROOT / "events" / f"{code}.json").exists(), f"events/{code}.json missing"


def test_openapi_document_is_what_the_handlers_generate():
    result = subprocess.run([sys.executable, "scripts/generate_openapi.py", "--check"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    document = json.loads((ROOT / "functions/openapi/openapi.json").read_text())
    assert "/api/internal/billing/reserve" in document["paths"]
    assert "/admin/billing/accounts/{accountId}/mint" in document["paths"]


JWT_SECRETS = {
    "internal": {"BILLING_INTERNAL_JWT_SECRET"},
    "admin": {"BILLING_ADMIN_JWT_SECRET", "BILLING_ADMIN_JWT_SECRET_PREV"},
    "user": {"BILLING_USER_JWT_SECRET"},
    None: set(),
}
ALL_SECRETS = {"BILLING_INTERNAL_JWT_SECRET", "BILLING_ADMIN_JWT_SECRET", "BILLING_ADMIN_JWT_SECRET_PREV",
               "BILLING_USER_JWT_SECRET", "NOWPAYMENTS_IPN_SECRET", "STRIPE_WEBHOOK_SECRET", "NOWPAYMENTS_API_KEY",
               "STRIPE_SECRET_KEY"}
PROVIDER_SECRETS = {"webhooks": {"NOWPAYMENTS_IPN_SECRET", "STRIPE_WEBHOOK_SECRET"},
                    "topups": {"NOWPAYMENTS_API_KEY", "STRIPE_SECRET_KEY"}}


def test_every_function_receives_only_the_secrets_it_uses():
    """The sweeper holds no token secret; the balance function no admin secret: a function's
    secrets are its callers' (by the kind its edge authenticates) and, for money in, its provider's."""
    template = _template()
    assert not ALL_SECRETS & set(template["Globals"]["Function"]["Environment"]["Variables"])
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        code = Path(resource["Properties"]["CodeUri"]).name
        variables = set((resource["Properties"].get("Environment") or {}).get("Variables") or {})
        module = handler_module(code)
        kind = getattr(module.lambda_handler, "auth_kind", None)
        expected = JWT_SECRETS[kind] | PROVIDER_SECRETS.get(code, set())
        assert variables & ALL_SECRETS == expected, (name, sorted(variables & ALL_SECRETS), sorted(expected))


def test_every_stream_consumer_skips_a_poison_record_and_says_where():
    """A stream record that always fails would otherwise hold its shard for the stream's 24 hours
    and every event behind it: retries are bounded and skipped batches land in a queue that alarms."""
    resources = _template()["Resources"]
    alarmed = {dim["Value"]["Fn::GetAtt"][0] for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"
               for dim in r["Properties"].get("Dimensions", []) if isinstance(dim.get("Value"), dict)
               and "Fn::GetAtt" in dim["Value"]}
    streams = [(name, source["Properties"]) for name, r in resources.items()
               if r["Type"] == "AWS::Serverless::Function"
               for source in r["Properties"].get("Events", {}).values() if source["Type"] == "DynamoDB"]
    assert streams
    for name, props in streams:
        assert 0 <= props["MaximumRetryAttempts"] <= 10 and props["BisectBatchOnFunctionError"], name
        assert 60 <= props["MaximumRecordAgeInSeconds"] < 86_400, name
        failure = props["DestinationConfig"]["OnFailure"]
        assert failure["Type"] == "SQS", name
        queue = failure["Destination"]["Fn::GetAtt"][0]
        assert resources[queue]["Type"] == "AWS::SQS::Queue" and queue in alarmed, (name, queue)
