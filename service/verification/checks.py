"""Checking a code: the claim, the gateway's answer, the settlement. No Flask here.

At most one VerifyToken per verification is in flight (claim_attempt.lua), because the
gateway re-approves a verified token for any code; a check whose answer never arrives is
settled as if the gateway had decided (settle_check.lua).
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import random
import time

from service.events import Event
from service.gateway import GatewayError, TokenNotFound
from service.verification import errors
from service.verification.codes import matches_mask, normalise_input
from service.verification.decisions import Claimed, Settled
from service.verification.end_users import EndUser
from service.verification.model import Verification, now_ms
from service.verification.phones import mask_phone
from service.verification.tenant import Tenant
from service.verification.upstream import problem_for

log = logging.getLogger(__name__)

CLAIM_WAIT_SECONDS = 3.0
# A check waiting for another one polls with a doubling, jittered pause: about a dozen
# round trips in CLAIM_WAIT_SECONDS, however long the other check takes.
FIRST_POLL_SECONDS = 0.02
LONGEST_POLL_SECONDS = 0.4
FIRST_LOCK_MS = 60_000
LONGEST_LOCK_MS = 24 * 3600 * 1000


class Checks:
    """VerificationService's checks (a mixin: it uses the service's store, gateway, limits,
    clock, on_event, read, _found and _test_code; the tenant's policy, phones and limits)."""

    @staticmethod
    def _lockout(tenant: Tenant) -> tuple[int, int, int]:
        return tenant.policy.max_failures_per_phone, FIRST_LOCK_MS, LONGEST_LOCK_MS

    def check(self, tenant: Tenant, client: str, code: str, *,
              verification_id: str | None = None, phone: str | None = None,
              end_user_ip: str | None = None,
              end_user_id: str | None = None) -> tuple[Verification, bool]:
        """Spend one attempt on ``code``; approve at most once. The end user's IP limit
        is counted for every check that names one, whatever its outcome (a wrong id too:
        guessing is what the limit is for)."""
        end_user = self.store.end_user(end_user_ip, end_user_id,
                                       require_ip=tenant.policy.require_end_user_ip)
        verification = self._find_for_check(tenant, client, verification_id, phone, end_user)
        self._raise_if_closed(verification)
        expected = (self._test_code(tenant.policy, verification.phone) if verification.test
                    else None)
        form = self._code_form(verification, expected)
        typed = normalise_input(code, form)
        if not matches_mask(typed, form):
            raise errors.InvalidCode("The code does not have the form of the codes we send.")
        verification = self._claim(tenant, verification)
        try:
            valid = self._ask_gateway(verification, typed, expected)
        except GatewayError as e:
            raise self._check_failed(tenant, verification, e) from e
        settlement = self._settle(tenant, verification, "valid" if valid else "wrong")
        settled = Verification.from_hash(verification.id, settlement.state)
        if settlement.decision is Settled.UNCHANGED:
            self._raise_if_closed(settled)
        approved = settlement.decision is Settled.APPROVED
        self.on_event(Event.CHECKED, verification=settled, valid=approved)
        return settled, approved

    @staticmethod
    def _code_form(verification: Verification, expected: str | None) -> str:
        """The mask the right code follows. A test number's code is the configured one
        (``expected``), whatever mask its verification was started with, so only its length
        is a form."""
        return verification.mask if expected is None else "N" * len(expected)

    def _check_failed(self, tenant: Tenant, verification: Verification, error: GatewayError):
        """Only a check the gateway surely did not carry out is taken back (no connection,
        or a status saying it did nothing: credentials, credits, its back end). Any other may
        have verified the token, after which the gateway approves every code: it spends the
        attempt, counts as a failure for the phone, and its token is never asked again
        (settle_check.lua); the caller must send a new code."""
        settlement = self._settle(tenant, verification,
                                  "unknown" if error.may_have_acted else "error")
        problem = problem_for(error)
        if settlement.decision is Settled.UNKNOWN:
            log.warning("gateway check failed after it may have arrived: outcome unknown, "
                        "attempt spent, a new code is needed",
                        extra={"verification_id": verification.id})
            problem.extensions["resend_required"] = settlement.state.get("status") == "pending"
            problem.outcome_unknown = True
        return problem

    def _find_for_check(self, tenant: Tenant, client: str, verification_id: str | None,
                        phone: str | None, end_user: EndUser) -> Verification:
        """The verification checked; its first read counts the end user's IP limit, in the
        same round trip (a pipeline: the limit's keys are in a slot of their own)."""
        counting = self.limits.end_user_check(tenant, end_user)
        if verification_id is None:
            # the number as texted, not as the rules would text it now: a service that
            # narrowed its countries still finds the verifications it sent before
            phone_hash = self.store.phone_hash(tenant.phones.normalise(phone))
            if counting is None:
                verification_id = self.store.pointer(client, phone_hash)
            else:
                verification_id, answer = self.store.pointer_along(client, phone_hash, counting)
                self.limits.decide(counting, answer)
            if verification_id is None:
                raise errors.VerificationNotFound("No verification for this phone number.")
        elif counting is not None:
            data, answer = self.store.read_along(verification_id, counting)
            self.limits.decide(counting, answer)
            return self._found(tenant, client, verification_id, data)
        return self.read(tenant, client, verification_id)

    def _claim(self, tenant: Tenant, verification: Verification) -> Verification:
        """The verification as claimed: with the token reference current at the claim (a
        resend since it was read brings a new one; the one read may be spent)."""
        windows = self.limits.check_windows(tenant, verification.phone_hash)
        deadline = time.monotonic() + CLAIM_WAIT_SECONDS
        pause = FIRST_POLL_SECONDS
        while True:
            claim = self.store.claim_attempt(
                verification.id, verification.phone_hash, client=verification.client,
                now_ms=now_ms(self.clock), hold_ms=self.claim_hold_ms,
                masked_phone=mask_phone(verification.phone), lockout=self._lockout(tenant),
                windows=windows, service=tenant.id)
            if claim.decision is Claimed.CLAIMED:
                return dataclasses.replace(verification, token_reference=claim.reference)
            if claim.decision is Claimed.NOT_FOUND:
                raise errors.VerificationNotFound("No such verification.")
            if claim.decision is Claimed.CLOSED:
                raise self._closed(claim.status)
            if claim.decision is Claimed.LOCKED:
                self.on_event(Event.PHONE_LOCKED)
                raise errors.RateLimited("Too many wrong codes for this phone number.",
                                         claim.wait_ms / 1000, "phone_locked")
            if claim.decision is Claimed.RESEND_REQUIRED:
                raise errors.ResendRequired(
                    "The SMS gateway did not answer the last check of this code, so its "
                    "outcome is unknown; send a new code (POST /otp/start) and check that one.")
            if claim.decision is Claimed.LIMITED:
                self.limits.refuse_check(tenant, claim.window, claim.wait_ms)
            left = deadline - time.monotonic()
            if left <= 0:
                raise errors.CheckInProgress("Another check of this verification is running.",
                                             headers={"Retry-After": "1"})
            # jitter spreads the waiters' polls; the last one lands on the deadline
            time.sleep(min(pause * random.uniform(0.75, 1.0), left))
            pause = min(pause * 2, LONGEST_POLL_SECONDS)

    def _ask_gateway(self, verification: Verification, typed: str,
                     expected: str | None) -> bool:
        """``expected``: a test number's configured code (None once its entry expired)."""
        if verification.test:
            if expected is None:
                return False
            if not verification.case_sensitive:
                typed, expected = typed.upper(), expected.upper()
            return hmac.compare_digest(typed.encode(), expected.encode())
        try:
            return self.gateway.verify_token(verification.phone, verification.token_reference,
                                             typed)
        except TokenNotFound:
            return False  # replaced or expired at the gateway: the code cannot be right

    def _settle(self, tenant: Tenant, verification: Verification, outcome: str):
        return self.store.settle_check(
            verification.id, verification.phone_hash, outcome=outcome,
            now_ms=now_ms(self.clock), masked_phone=mask_phone(verification.phone),
            lockout=self._lockout(tenant), token_reference=verification.token_reference,
            service=tenant.id)

    def _raise_if_closed(self, verification: Verification) -> None:
        if not verification.is_pending:
            raise self._closed(verification.status)

    @staticmethod
    def _closed(status: str) -> errors.VerificationClosed:
        return errors.VerificationClosed(f"The verification has ended ({status}).",
                                         verification_status=status)
