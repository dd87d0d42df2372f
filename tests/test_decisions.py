"""The Lua scripts' decisions as types (service/verification/decisions.py): each answer is
read in one place into an enum and a frozen result, and an answer no script gives is an
error, never a silent fall-through."""

from __future__ import annotations

import dataclasses
import time

import pytest

from service.verification import keys
from service.verification.decisions import (
    Claim,
    Claimed,
    Count,
    Counted,
    Ended,
    Ending,
    Reservation,
    Send,
    Settled,
    Settlement,
)
from service.verification.store import VerificationStore

PH = "ab12" + "0" * 28


@pytest.mark.parametrize(("parse", "answer", "expected"), [
    (Claim.parse, ["limited", 2, "4000"], Claim(Claimed.LIMITED, wait_ms=4000, window=2)),
    (Claim.parse, ["closed", "approved"], Claim(Claimed.CLOSED, status="approved")),
    (Claim.parse, ["locked", "60000"], Claim(Claimed.LOCKED, wait_ms=60000)),
    (Count.parse, ["refused", 3, "1000", 1], Count(Counted.REFUSED, 3, 1000, True)),
    (Count.parse, ["tripped", 1, "5"], Count(Counted.TRIPPED, 1, 5)),
    (Count.parse, ["ok"], Count(Counted.OK)),
    (Settlement.parse, ["wrong", "status", "pending"],
     Settlement(Settled.WRONG, {"status": "pending"})),
    (Ending.parse, ["not_found"], Ending(Ended.NOT_FOUND)),
])
def test_each_answer_is_read_into_its_result(parse, answer, expected):
    assert parse(answer) == expected


def test_a_reservation_names_its_decision_and_the_wait_or_the_state():
    assert Reservation.parse(["cooldown", "1.5e+04"], "vf_seen") == Reservation(
        Send.COOLDOWN, "vf_seen", 15000)
    created = Reservation.parse(["created", "vf_new", "sends", "1"], None)
    assert (created.outcome, created.state) == (Send.CREATED, {"sends": "1"})


def test_results_are_frozen_and_an_unknown_decision_is_refused():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Claim(Claimed.BUSY).wait_ms = 1
    with pytest.raises(ValueError):
        Claim.parse(["claimd"])


def test_the_store_answers_typed_results_from_the_real_scripts(redis_db):
    store = VerificationStore(redis_db, b"secret")
    now = int(time.time() * 1000)
    new_id = keys.new_id(PH)
    reservation = store.reserve_send(
        client="acme", phone_hash=PH, seen_pointer=None, new_id=new_id, now_ms=now,
        cooldown_ms=30_000, max_sends=3, expires_ms=now + 60_000,
        fields={"client": "acme", "status": "pending", "ref": "r1", "sends": 1,
                "expires": now + 60_000, "next_resend": now + 30_000})
    assert reservation.outcome is Send.CREATED and reservation.state["status"] == "pending"
    again = store.reserve_send(
        client="acme", phone_hash=PH, seen_pointer=new_id, new_id=keys.new_id(PH),
        now_ms=now + 1, cooldown_ms=30_000, max_sends=3, expires_ms=now + 60_000, fields={})
    assert again.outcome is Send.COOLDOWN and 0 < again.wait_ms <= 30_000
    assert store.claim_attempt(keys.new_id(PH), PH, client="acme", now_ms=now, hold_ms=1000,
                               masked_phone="+41*", lockout=(5, 1, 2)) == Claim(
        Claimed.NOT_FOUND)
    assert store.end_pending(new_id, client="acme", now_ms=now, status="canceled",
                             masked_phone="+41*") == Ending(Ended.ENDED, "canceled")
