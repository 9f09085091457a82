"""A fault between the DynamoDB write and the response: the transaction commits, then the
connection fails before the handler learns it. The caller sees a 5xx and retries the identical
request; the retry must answer with the original success and the money must move exactly once."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest
from billing_core.api.models.ledger import LotResponse
from billing_core.api.models.reservations import FinalizeResponse, ReleaseResponse, ReserveResponse
from billing_core.kernel import clock
from billing_core.ledger import reservations
from billing_core.ledger.model import Minted
from billing_core.store import dynamo
from billing_core.store import reservations as reservation_store
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

from tests.support.tables import entries_for, ledger, lot_totals, lots, reservation, revenue_shares

ACCOUNT = "acct-fault"
SVC = "svc-fault"

FAULTS = {
    "read-timeout": lambda: ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
    "connection-closed": lambda: ConnectionClosedError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
}


class FaultAfterCommit:
    """Wraps the client's transact_write_items: when armed, the next call is applied and then
    fails as if the response was lost on the way back."""

    def __init__(self, client: Any, monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
        self.original = client.transact_write_items
        self.fault = FAULTS[fault]
        self.armed = False
        self.committed: list[list[dict[str, Any]]] = []
        monkeypatch.setattr(client, "transact_write_items", self)

    def __call__(self, **kwargs: Any) -> Any:
        result = self.original(**kwargs)
        if self.armed:
            self.armed = False
            self.committed.append(kwargs["TransactItems"])
            raise self.fault()
        return result

    def committed_response(self, operation: str) -> dict[str, Any]:
        """The answer the failed attempt would have given, from what it committed: the reservation
        item it wrote (reserve, finalize, release) or its idempotency record (mint)."""
        (items,) = self.committed
        for action in items:
            for op in action.values():
                key = op.get("Key") or {k: op["Item"][k] for k in ("pk", "sk")}
                pk = key["pk"]["S"]
                if operation in ("reserve", "finalize", "release") and pk.startswith("RES#"):
                    res = reservation_store.get(pk[len("RES#"):])
                    assert res is not None
                    if operation == "reserve":
                        return ReserveResponse.of(reservations.reserved(res))
                    if operation == "finalize":
                        return FinalizeResponse.of(reservations.finalized(res))
                    return ReleaseResponse.of(reservations.released(res))
                if operation == "mint" and pk.startswith("IDEM#"):
                    record = dynamo.get("BillingTable", {"pk": pk, "sk": key["sk"]["S"]})
                    assert record is not None
                    return LotResponse.of(Minted(**record["result"]))
        raise AssertionError(f"nothing of a {operation} in the committed transaction: {items}")


@pytest.fixture(params=sorted(FAULTS))
def fault(request, aws, monkeypatch):
    return FaultAfterCommit(aws, monkeypatch, request.param)


@pytest.fixture
def live(api, tokens):
    admin = tokens.admin("ops-fault-setup")
    assert api.set_mode("live", token=admin).status == 200
    assert api.mint(ACCOUNT, 1_000_000, token=admin).status == 201
    return admin


def _assert_failed_without_internals(reply, secret_bits=("Traceback", "ReadTimeout", "ConnectionClosed")):
    assert 500 <= reply.status < 600, reply
    assert reply.code is not None
    assert not any(bit in str(reply.body) for bit in secret_bits), reply.body


@pytest.mark.parametrize("estimate", [300_000, 1_000_000], ids=["part-of-balance", "whole-balance"])
def test_reserve_retry_after_lost_response(api, tokens, live, fault, aws, estimate):
    """With the whole balance reserved by the lost attempt, the retry finds no credit left: it
    must still answer with the original reservation, not 402."""
    svc = tokens.internal(SVC)
    body = {"accountId": ACCOUNT, "estimatedCostMicro": str(estimate), "reservationId": "res-fault-1"}

    fault.armed = True
    first = api.call("reserve", body, token=svc)
    _assert_failed_without_internals(first)
    original = fault.committed_response("reserve")

    clock.advance(7)  # a fresh computation would now give another expiresAt
    retry = api.call("reserve", body, token=svc)
    again = api.call("reserve", body, token=svc)

    assert retry.status == 201, retry.body
    assert retry.body == original
    assert again.status == 201 and again.body == original
    totals = lot_totals(aws, ACCOUNT)
    assert (totals["available"], totals["reserved"], totals["consumed"]) == (1_000_000 - estimate, estimate, 0)
    assert Counter(e["entryType"] for e in entries_for(aws, "res-fault-1")) == {"reserve": 1}
    balance = api.call("balance", token=tokens.user(ACCOUNT))
    assert balance.body["pools"][0]["availableMicro"] == str(1_000_000 - estimate)


def test_finalize_retry_after_lost_response(api, tokens, live, fault, aws):
    svc = tokens.internal(SVC)
    reserved = api.call("reserve", {"accountId": ACCOUNT, "estimatedCostMicro": "400000"}, token=svc)
    assert reserved.status == 201
    rid = reserved.body["reservationId"]
    body = {"reservationId": rid, "actualCostMicro": "100000"}

    fault.armed = True
    first = api.call("finalize", body, token=svc)
    _assert_failed_without_internals(first)
    original = fault.committed_response("finalize")

    clock.advance(7)
    retry = api.call("finalize", body, token=svc)

    assert retry.status == 200, retry.body
    assert retry.body == original
    assert (retry.body["finalizedMicro"], retry.body["releasedMicro"]) == ("100000", "300000")
    totals = lot_totals(aws, ACCOUNT)
    assert (totals["available"], totals["reserved"], totals["consumed"]) == (900_000, 0, 100_000)
    kinds = Counter(e["entryType"] for e in entries_for(aws, rid))
    assert kinds == {"reserve": 1, "finalize": 1}  # the finalize entry carries the revenue shares
    assert revenue_shares(aws, rid) == {"sys-foundation": 10_000, "sys-commons": 5_000, "sys-community-pool": 2_500}
    other = api.call("finalize", {"reservationId": rid, "actualCostMicro": "100001"}, token=svc)
    assert (other.status, other.code) == (409, "ALREADY_FINALIZED")


def test_release_retry_after_lost_response(api, tokens, live, fault, aws):
    svc = tokens.internal(SVC)
    reserved = api.call("reserve", {"accountId": ACCOUNT, "estimatedCostMicro": "250000"}, token=svc)
    assert reserved.status == 201
    rid = reserved.body["reservationId"]

    fault.armed = True
    first = api.call("release", {"reservationId": rid}, token=svc)
    _assert_failed_without_internals(first)
    original = fault.committed_response("release")

    clock.advance(7)
    retry = api.call("release", {"reservationId": rid}, token=svc)

    assert retry.status == 200, retry.body
    assert retry.body == original
    assert retry.body["releasedMicro"] == "250000"
    totals = lot_totals(aws, ACCOUNT)
    assert (totals["available"], totals["reserved"], totals["consumed"]) == (1_000_000, 0, 0)
    assert Counter(e["entryType"] for e in entries_for(aws, rid)) == {"reserve": 1, "release": 1}
    assert reservation(aws, rid)["status"] == "released"


def test_mint_retry_after_lost_response(api, tokens, live, fault, aws):
    admin = tokens.admin("ops-fault-mint")
    body = {"amountMicro": "5000000", "sourceType": "grant", "description": "retried grant",
            "idempotencyKey": "grant-2026-0001"}

    fault.armed = True
    first = api.call("mint", body, token=admin, path={"accountId": "acct-fault-mint"})
    _assert_failed_without_internals(first)
    original = fault.committed_response("mint")

    clock.advance(7)
    retry = api.call("mint", body, token=admin, path={"accountId": "acct-fault-mint"})
    again = api.call("mint", body, token=admin, path={"accountId": "acct-fault-mint"})

    assert retry.status == 201, retry.body
    assert retry.body == original
    assert again.status == 201 and again.body == original
    minted = lots(aws, "acct-fault-mint")
    assert [lot["lotId"] for lot in minted] == [original["lotId"]]
    assert lot_totals(aws, "acct-fault-mint")["available"] == 5_000_000
    deposits = [e for e in ledger(aws) if e["accountId"] == "acct-fault-mint" and e["entryType"] == "deposit"]
    assert len(deposits) == 1 and deposits[0]["amountMicro"] == 5_000_000
    balance = api.call("balance", token=tokens.user("acct-fault-mint"))
    assert balance.body["totalAvailableMicro"] == "5000000"


class SentTwice:
    """botocore's own retry after a lost answer: the next TransactWriteItems is applied, its
    answer lost, and the very same request (same ClientRequestToken) sent again, whose answer the
    caller gets. DynamoDB (and DynamoDB Local) answer the re-send from the token; moto applies it
    again, so the transaction's own conditions must refuse it and the request still answer."""

    def __init__(self, client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.original = client.transact_write_items
        self.armed = False
        monkeypatch.setattr(client, "transact_write_items", self)

    def __call__(self, **kwargs: Any) -> Any:
        if self.armed:
            self.armed = False
            kwargs.setdefault("ClientRequestToken", uuid.uuid4().hex)  # as botocore fills it
            self.original(**kwargs)
        return self.original(**kwargs)


@pytest.mark.parametrize("body", [{"deltaMicro": "-250000"}, {"deltaMicro": "400000"}, {"balanceMicro": "100"}],
                         ids=["debit", "credit", "set"])
def test_keyless_adjust_resent_by_the_sdk_applies_once(api, tokens, live, aws, monkeypatch, body):
    admin = tokens.admin("ops-fault-adjust")
    sent = SentTwice(aws, monkeypatch)

    sent.armed = True
    reply = api.call("adjust", {**body, "reason": "resent"}, token=admin, path={"accountId": ACCOUNT})

    assert reply.status == 200, reply.body
    assert reply.body["previousBalanceMicro"] == "1000000"
    expected = int(body.get("balanceMicro") or 1_000_000 + int(body["deltaMicro"]))
    assert reply.body["newBalanceMicro"] == str(expected)
    assert api.call("balance", token=tokens.user(ACCOUNT)).body["totalAvailableMicro"] == str(expected)
    adjustments = [e for e in ledger(aws) if e["accountId"] == ACCOUNT and e["entryType"] == "adjustment"]
    assert [e["entryId"] for e in adjustments] == [reply.body["entryId"]]


def test_keyless_mint_resent_by_the_sdk_applies_once(api, tokens, live, aws, monkeypatch):
    admin = tokens.admin("ops-fault-mint-keyless")
    sent = SentTwice(aws, monkeypatch)

    sent.armed = True
    reply = api.call("mint", {"amountMicro": "700000", "sourceType": "grant", "description": "no key"},
                     token=admin, path={"accountId": "acct-fault-keyless"})

    assert reply.status == 201, reply.body
    assert [lot["lotId"] for lot in lots(aws, "acct-fault-keyless")] == [reply.body["lotId"]]
    assert lot_totals(aws, "acct-fault-keyless")["available"] == 700_000
    deposits = [e for e in ledger(aws) if e["accountId"] == "acct-fault-keyless" and e["entryType"] == "deposit"]
    assert len(deposits) == 1
