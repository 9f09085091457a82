"""The reserve -> finalize walk-through a calling service does, through the handlers."""


def test_live_reserve_finalize_moves_exactly_the_cost(api, tokens):
    admin, svc, user = tokens.admin(), tokens.internal(), tokens.user("acct-1")
    assert api.set_mode("live", token=admin).status == 200
    assert api.mint("acct-1", 1_000_000, token=admin).status == 201

    reserved = api.call("reserve", {"accountId": "acct-1", "estimatedCostMicro": "600000"}, token=svc)
    assert reserved.status == 201, reserved.body
    assert reserved.body["billingMode"] == "live"

    done = api.call("finalize", {"reservationId": reserved.body["reservationId"], "actualCostMicro": "250000"},
                    token=svc)
    assert done.status == 200, done.body
    assert done.body["finalizedMicro"] == "250000"
    assert done.body["releasedMicro"] == "350000"

    balance = api.call("balance", token=user)
    assert balance.body["totalAvailableMicro"] == "750000"
    assert balance.body["pools"][0]["consumedMicro"] == "250000"
