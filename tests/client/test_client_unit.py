"""billing_client against a scripted transport (httpx.MockTransport): tokens, retries with the
same ids, Retry-After, the error table, the reservation block, the async twin. The same client
runs against the local stack in tests/e2e/test_e2e_client.py."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import jwt
import pytest
from billing_client import (
    CODES,
    AsyncBillingClient,
    BillingClient,
    BillingError,
    Conflict,
    InsufficientCredit,
    NotFound,
    QuotaExceeded,
    RateLimited,
    ReservationExpired,
    ServerError,
    TransportError,
    UpstreamUnavailable,
    ValidationError,
    error_for,
    estimate_tokens,
)

ROOT = Path(__file__).resolve().parents[2]
SECRET = "client-test-internal-secret-0123456789abcdef"
URL = "http://billing.test"

RESERVED = {"reservationId": "r", "reservedMicro": "250000", "expiresAt": "2026-01-01T00:05:00.000000Z",
            "billingMode": "live"}
FINALIZED = {"reservationId": "r", "finalizedMicro": "180000", "releasedMicro": "70000", "overrunMicro": "0",
             "billingMode": "live", "finalizedAt": "2026-01-01T00:01:00.000000Z"}
RELEASED = {"reservationId": "r", "status": "released", "releasedMicro": "250000", "billingMode": "live",
            "releasedAt": "2026-01-01T00:01:00.000000Z"}


def error(status: int, code: str, details: dict | None = None, headers: dict | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": code.lower(), "details": details or {}}},
                          headers=headers)


class Script:
    """Answers requests in turn: an httpx.Response, an exception to raise, or a callable."""

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return answer

    def bodies(self) -> list[dict]:
        return [json.loads(r.content) for r in self.requests]


def client(script: Script, sleeps: list[float] | None = None, **options: object) -> BillingClient:
    waits = sleeps if sleeps is not None else []
    return BillingClient(URL, internal_secret=SECRET, service_id="svc-unit", sleep=waits.append,
                         http_client=httpx.Client(transport=httpx.MockTransport(script)), **options)


def test_tokens_are_short_lived_internal_tokens_for_the_service():
    script = Script(httpx.Response(201, json=RESERVED), httpx.Response(200, json=FINALIZED))
    c = client(script)
    c.reserve("acct-1", 250_000)
    c.finalize("r", 180_000)
    tokens = [r.headers["authorization"].removeprefix("Bearer ") for r in script.requests]
    claims = jwt.decode(tokens[0], SECRET, algorithms=["HS256"], audience="arrakis-internal", issuer="loa-finn")
    assert claims["sub"] == "svc-unit" and 0 < claims["exp"] - claims["iat"] <= 300
    assert tokens[0] == tokens[1]  # reused while fresh
    custom = BillingClient(URL, token_provider=lambda: "given", http_client=httpx.Client(
        transport=httpx.MockTransport(Script(httpx.Response(201, json=RESERVED)))))
    assert custom.reserve("acct-1", 1).reservation_id == "r"
    with pytest.raises(ValueError, match="token_provider"):
        BillingClient(URL)


def test_reserve_sends_a_client_generated_id_and_retries_with_the_same_bytes():
    script = Script(httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), error(503, "CONTENTION"),
                    httpx.Response(500, text="<html>bad gateway</html>"), httpx.Response(201, json=RESERVED))
    sleeps: list[float] = []
    result = client(script, sleeps).reserve("acct-1", 250_000, ttl_seconds=60)
    assert result.reserved_micro == 250_000 and result.billing_mode == "live"
    contents = {r.content for r in script.requests}
    assert len(script.requests) == 5 and len(contents) == 1
    body = script.bodies()[0]
    assert body["reservationId"].startswith("res_") and body["estimatedCostMicro"] == "250000"
    assert body["ttlSeconds"] == 60 and body["poolId"] == "general"
    assert len(sleeps) == 4 and all(0 <= s <= 5 for s in sleeps)


def test_retries_end_with_a_typed_error():
    with pytest.raises(TransportError) as lost:
        client(Script(*[httpx.RemoteProtocolError("dropped")] * 3), max_retries=2).finalize("r", 1)
    assert lost.value.code == "TRANSPORT_ERROR" and "same ids" in lost.value.message
    with pytest.raises(ServerError) as failed:
        client(Script(*[error(500, "INTERNAL_ERROR")] * 2), max_retries=1).release("r")
    assert failed.value.status == 500
    with pytest.raises(UpstreamUnavailable):
        client(Script(httpx.Response(502, text="proxy"))  , max_retries=0).release("r")


def test_429_waits_for_retry_after_and_gives_up_past_the_cap():
    sleeps: list[float] = []
    script = Script(error(429, "RATE_LIMITED", headers={"Retry-After": "3"}), httpx.Response(200, json=RELEASED))
    assert client(script, sleeps).release("r").released_micro == 250_000
    assert sleeps == [3.0]
    with pytest.raises(RateLimited) as limited:
        client(Script(error(429, "RATE_LIMITED", headers={"Retry-After": "120"}))).release("r")
    assert limited.value.retry_after == 120


def test_client_errors_are_not_retried_and_are_typed():
    details = {"accountId": "acct-1", "poolId": "general", "availableMicro": "100", "requestedMicro": "250000",
               "requiredMicro": "250000", "shortfallMicro": "249900", "topUpUrl": "https://b.test/billing#topup"}
    script = Script(error(402, "INSUFFICIENT_CREDIT", details))
    with pytest.raises(InsufficientCredit) as short:
        client(script).reserve("acct-1", 250_000)
    e = short.value
    assert (e.available_micro, e.required_micro, e.shortfall_micro) == (100, 250_000, 249_900)
    assert e.top_up_url == "https://b.test/billing#topup" and e.status == 402 and len(script.requests) == 1
    quota = {"quotaType": "tokens", "currentUsage": 90, "limit": 100, "requested": 20, "billingStatus": "active",
             "planSlug": "starter", "periodStart": "2026-01-01T00:00:00.000000Z",
             "periodEnd": "2026-02-01T00:00:00.000000Z"}
    with pytest.raises(QuotaExceeded) as over:
        client(Script(error(402, "QUOTA_EXCEEDED", quota))).check_quota("org-1", tokens=20)
    q = over.value
    assert (q.quota_type, q.current_usage, q.limit, q.requested) == ("tokens", 90, 100, 20)
    assert (q.period_start, q.period_end, q.plan_slug, q.upgrade_url) == (quota["periodStart"], quota["periodEnd"],
                                                                          "starter", None)
    with pytest.raises(ReservationExpired) as expired:
        client(Script(error(409, "RESERVATION_EXPIRED", {"reservationId": "r", "expiresAt": "t"}))).finalize("r", 1)
    assert expired.value.reservation_id == "r" and isinstance(expired.value, Conflict)


def test_an_unknown_code_falls_back_on_its_status():
    assert type(error_for(404, {"error": {"code": "SOMETHING_NEW", "message": "m"}})) is NotFound
    assert type(error_for(422, {"error": {"code": "SOMETHING_NEW"}})) is ValidationError
    assert type(error_for(418, "teapot")) is BillingError
    assert type(error_for(504, None)) is ServerError


def _server_codes() -> set[str]:
    """Every error code the service can answer: raised in the core and the handlers, built by the
    edge, and listed in docs/api.md."""
    found: set[str] = set()
    patterns = [re.compile(r'code\s*=\s*"([A-Z][A-Z0-9_]+)"'), re.compile(r'proxy\(\d{3},\s*"([A-Z][A-Z0-9_]+)"'),
                re.compile(r'"(?:finalized|released|expired)":\s*"([A-Z][A-Z0-9_]+)"')]
    for path in [*(ROOT / "layers/billing_core/billing_core").rglob("*.py"), *(ROOT / "functions").rglob("*.py")]:
        text = path.read_text()
        for pattern in patterns:
            found |= set(pattern.findall(text))
    errors = (ROOT / "docs/api.md").read_text().split("## Errors", 1)[1]
    found |= set(re.findall(r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)`", errors))
    return found


def test_every_api_error_code_has_its_typed_exception():
    codes = _server_codes()
    assert {"INSUFFICIENT_CREDIT", "QUOTA_EXCEEDED", "RESERVATION_EXPIRED", "ROUTE_NOT_FOUND", "CONTENTION",
            "INTERNAL_ERROR", "ALREADY_FINALIZED"} <= codes
    assert sorted(codes - set(CODES)) == []


def test_the_reservation_block_finalizes_or_releases():
    script = Script(httpx.Response(201, json=RESERVED), httpx.Response(200, json=FINALIZED))
    with client(script).reservation("acct-1", 250_000) as r:
        result = r.finalize(180_000)
    assert (result.finalized_micro, result.released_micro, result.overrun_micro) == (180_000, 70_000, 0)
    assert [r.url.path for r in script.requests] == ["/api/internal/billing/reserve", "/api/internal/billing/finalize"]
    reserve, finalize = script.bodies()
    assert finalize == {"reservationId": reserve["reservationId"], "actualCostMicro": "180000"}

    script = Script(httpx.Response(201, json=RESERVED), httpx.Response(200, json=RELEASED))
    with pytest.raises(RuntimeError, match="the LLM call failed"), client(script).reservation("acct-1", 250_000):
        raise RuntimeError("the LLM call failed")
    assert script.requests[-1].url.path == "/api/internal/billing/release"

    script = Script(httpx.Response(201, json=RESERVED), httpx.Response(200, json=RELEASED))
    with client(script).reservation("acct-1", 250_000) as r:
        pass  # never finalized: released on the way out
    assert r.released is not None and r.released.released_micro == 250_000

    script = Script(httpx.Response(201, json=RESERVED), error(409, "RESERVATION_EXPIRED"))
    with pytest.raises(ReservationExpired), client(script).reservation("acct-1", 250_000) as r:
        r.finalize(1)
    assert len(script.requests) == 2  # nothing to release: it expired

    script = Script(httpx.Response(201, json=RESERVED), error(409, "RESERVATION_RELEASED"))
    with client(script).reservation("acct-1", 250_000):
        pass  # already gone (an operator released it): not an error


def test_a_failing_release_does_not_hide_the_blocks_exception():
    script = Script(httpx.Response(201, json=RESERVED), *[error(500, "INTERNAL_ERROR")] * 2)
    with pytest.raises(KeyError), client(script, max_retries=1).reservation("acct-1", 1):
        raise KeyError("boom")


def test_record_usage_generates_one_request_id_for_all_its_retries():
    usage = {"orgId": "org-1", "planSlug": "starter", "billingStatus": "trial", "period": "2026-01",
             "periodStart": "a", "periodEnd": "b", "allowed": True, "recorded": True, "overLimit": False,
             "enforcement": "hard", "requested": {"tokens": 10, "runs": 1, "seats": 0}, "requestId": "x",
             "recordedAt": "c"}
    script = Script(httpx.ConnectError("refused"), httpx.Response(200, json=usage))
    recorded = client(script).record_usage("org-1", tokens=10, runs=1)
    assert recorded.recorded and recorded.requested.tokens == 10
    ids = {b["requestId"] for b in script.bodies()}
    assert len(ids) == 1 and ids.pop().startswith("req_")
    assert "seats" not in script.bodies()[0]


def test_the_async_client_behaves_the_same():
    async def scenario() -> None:
        script = Script(httpx.ConnectError("refused"), httpx.Response(201, json=RESERVED),
                        httpx.Response(200, json=FINALIZED), httpx.Response(201, json=RESERVED),
                        httpx.Response(200, json=RELEASED), error(402, "INSUFFICIENT_CREDIT", {"availableMicro": "0",
                                                                                              "requiredMicro": "5"}))
        sleeps: list[float] = []

        async def sleep(seconds: float) -> None:
            sleeps.append(seconds)

        async with AsyncBillingClient(URL, internal_secret=SECRET, service_id="svc-unit", sleep=sleep,
                                      http_client=httpx.AsyncClient(transport=httpx.MockTransport(script))) as c:
            async with c.reservation("acct-1", 250_000) as r:
                assert (await r.finalize(180_000)).finalized_micro == 180_000
            with pytest.raises(ValueError, match="cancelled"):
                async with c.reservation("acct-1", 250_000):
                    raise ValueError("cancelled")
            with pytest.raises(InsufficientCredit) as short:
                await c.reserve("acct-1", 5)
            assert short.value.shortfall_micro == 5
        assert len(sleeps) == 1
        assert [r.url.path.rsplit("/", 1)[1] for r in script.requests] == [
            "reserve", "reserve", "finalize", "reserve", "release", "reserve"]
        assert script.requests[0].content == script.requests[1].content

    asyncio.run(scenario())


def test_amounts_are_whole_micro_units():
    c = client(Script())
    for bad in (1.5, -1, True, "5"):
        with pytest.raises(ValueError):
            c.reserve("acct-1", bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("parts", [("hello world",), ("", None, "x" * 9),
                                   ({"role": "user", "content": [{"text": "abcd"}, {"text": "e"}]},)])
def test_the_token_estimate_matches_the_service(parts: tuple):
    from billing_core.quotas.token_estimate import estimate_tokens as service_estimate

    assert estimate_tokens(*parts, max_completion_tokens=7) == service_estimate(*parts, max_completion_tokens=7)
    assert BillingClient.estimate_tokens(*parts, max_completion_tokens=0) == service_estimate(
        *parts, max_completion_tokens=0)


def test_the_package_installs_from_its_directory(tmp_path: Path):
    """`pip install ./clients/python` (here into a target directory, offline: no build isolation),
    built from a copy so the build leaves nothing in the source tree."""
    import shutil
    import subprocess
    import sys

    source = tmp_path / "python"
    shutil.copytree(ROOT / "clients" / "python", source,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp_path / "site"
    run: Callable[..., subprocess.CompletedProcess] = subprocess.run
    built = run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                 "--target", str(target), str(source)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    assert (target / "billing_client" / "py.typed").exists()
    probe = run([sys.executable, "-c", "import billing_client, sys; print(billing_client.__file__)"],
                capture_output=True, text=True, cwd=tmp_path, env={"PYTHONPATH": str(target), "PATH": "/usr/bin"})
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip().startswith(str(target))
