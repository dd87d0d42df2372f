"""The verification domain: start, check (checks.py), read and cancel. No Flask here.

Single use, attempt counting and expiry live in this service, not in the gateway (which has
no attempt limit and re-approves a verified token for any code, docs/gateway.md §7.2). Every
decision that must be atomic is one Lua script of :mod:`service.verification.store`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from service.events import Event
from service.gateway import AspsmsClient, GatewayError, GatewayTimeout
from service.verification import errors, keys, messages
from service.verification.budgets import NO_LIMITS, NoLimits, PhoneLimits
from service.verification.checks import Checks
from service.verification.codes import validate_mask
from service.verification.decisions import Ended, Ending, Reservation, Send
from service.verification.delivery import NO_NOTIFIER, DeliveryNotifier, NoNotifier
from service.verification.model import Verification, now_ms
from service.verification.phones import PhonePolicy, mask_phone
from service.verification.plan import StartPlan
from service.verification.policy import Policy
from service.verification.store import UNREAD, Unreplicated, VerificationStore
from service.verification.take_backs import TakeBacks
from service.verification.upstream import problem_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StartRequest:
    phone: str
    locale: str | None = None
    code_mask: str | None = None
    validity_minutes: int | None = None
    case_sensitive: bool = False
    reference: str | None = None


@dataclass(frozen=True)
class Started:
    verification: Verification
    created: bool


class VerificationService(Checks):
    def __init__(self, *, store: VerificationStore, gateway: AspsmsClient, policy: Policy,
                 phones: PhonePolicy, notifier: DeliveryNotifier | NoNotifier = NO_NOTIFIER,
                 clock: Callable[[], float] = time.time,
                 on_event: Callable[..., None] | None = None, claim_hold_seconds: float = 35,
                 limits: PhoneLimits | NoLimits = NO_LIMITS):
        self.store = store
        self.gateway = gateway
        self.policy = policy
        self.phones = phones
        self.notifier = notifier
        self.clock = clock
        self.limits = limits
        self.take_backs = TakeBacks(clock=clock)
        self.on_event = on_event or (lambda *args, **kwargs: None)
        # a claim outlives the longest gateway call (timeout, two connect retries)
        self.claim_hold_ms = int(claim_hold_seconds * 1000)

    # -- start ---------------------------------------------------------------------------
    def start(self, client: str, request: StartRequest) -> Started:
        """Send a code: a new verification, or a resend on the pending one."""
        plan = self._plan(client, request)
        self.take_backs.flush(plan.phone_hash)  # this phone's undos the store failed, first
        seen, reservation = self._reserve(plan)
        if not plan.test:
            try:  # counted after the reservation, so only sends count (a breaker too)
                self.limits.count_send(plan.phone, plan.phone_hash)
            except Exception:  # a refusal, the store down, or a bug in count_limits.lua
                self._take_back(plan, reservation, seen)
                raise
        verification = Verification.from_hash(reservation.verification_id, reservation.state)
        try:
            self._deliver(verification)
        except GatewayError as e:
            raise self._send_failed(plan, reservation, seen, e) from e
        self.on_event(Event.SENT, country=plan.phone.country, test=plan.test,
                      verification=verification)
        return Started(verification, reservation.outcome is Send.CREATED)

    def _plan(self, client: str, request: StartRequest) -> StartPlan:
        phone = self.phones.parse(request.phone)
        mask, validity = self._options(request)
        if not self.policy.sms_enabled:
            raise errors.SmsDisabled("Sending SMS is switched off (OTP_SMS_ENABLED=false).")
        test = self._test_code(phone.e164) is not None  # a test number's code is never sent
        return StartPlan(
            client=client, phone=phone, phone_hash=self.store.phone_hash(phone.e164),
            mask=mask, validity_minutes=validity, case_sensitive=request.case_sensitive,
            locale=messages.language(request.locale), reference=request.reference or "",
            test=test, tracked=self.notifier.tracks and not test)

    def _send_failed(self, plan: StartPlan, reservation: Reservation, seen: str | None,
                     error: GatewayError) -> errors.ServiceError:
        """A send without an answer may have texted the code and been charged, so it stands
        as sent: it counts toward OTP_MAX_SENDS (its limits and budgets are counted
        already), the verification stays pending, a resend awaits the cooldown. Any other
        failed send is taken back."""
        unknown = isinstance(error, GatewayTimeout) and error.outcome_unknown
        if not unknown:
            self._take_back(plan, reservation, seen)
        self.on_event(Event.SEND_FAILED, country=plan.phone.country)
        problem = problem_for(error, verification_id=reservation.verification_id)
        if unknown:
            problem.extensions["verification_id"] = reservation.verification_id
            problem.outcome_unknown = True
        return problem

    def _take_back(self, plan: StartPlan, reservation: Reservation, seen: str | None,
                   reference: str = "") -> None:
        """Undo a reserved send that never went out; later, if the store fails now."""
        def undo():
            return self.store.undo_send(
                client=plan.client, phone_hash=plan.phone_hash, reservation=reservation,
                seen_pointer=seen, reference=reference,
                trn=plan.trn(reservation.verification_id))

        self.take_backs.run(undo, key=plan.phone_hash,
                            until=int(reservation.state["expires"]) / 1000)

    def _take_back_unanswered(self, plan: StartPlan, seen: str | None, fields: dict,
                              new_id: str) -> None:
        """reserve_send.lua may have run with its answer lost (Redis timed out, or froze and
        ran it later): take back what it may have reserved, a creation under ``new_id`` or a
        resend under the new token reference. Each is a no-op if it never happened."""
        state = {"sends": "1", "expires": str(fields["expires"])}
        self._take_back(plan, Reservation(Send.CREATED, new_id, state=state), seen)
        if seen is not None:
            self._take_back(plan, Reservation(Send.RESEND, seen, state=state), seen,
                            reference=fields["ref"])

    def _reserve(self, plan: StartPlan) -> tuple[str | None, Reservation]:
        """The pointer as last read (None: no verification behind it), and the reservation."""
        seen = UNREAD  # most starts are a phone's first: the script reads the pointer
        for _ in range(5):
            now = now_ms(self.clock)
            new_id = keys.new_id(plan.phone_hash)
            fields = plan.fields(now, max_attempts=self.policy.max_attempts,
                                 resend_cooldown=self.policy.resend_cooldown)
            prior = None if seen is UNREAD else seen
            try:
                reservation = self.store.reserve_send(
                    client=plan.client, phone_hash=plan.phone_hash, seen_pointer=seen,
                    new_id=new_id, now_ms=now, cooldown_ms=self.policy.resend_cooldown * 1000,
                    max_sends=self.policy.max_sends, expires_ms=fields["expires"],
                    fields=fields, trns=(plan.trn(prior), plan.trn(new_id)))
            except Unreplicated as e:
                self._take_back(plan, e.reservation, prior)
                raise
            except errors.StoreUnavailable:
                self._take_back_unanswered(plan, prior, fields, new_id)
                raise
            if reservation.outcome is not Send.RETRY:
                break
            seen = reservation.verification_id  # the pointer as the script found it
        else:
            raise errors.CheckInProgress("Concurrent starts for this phone; try again.")
        self._refuse_if_limited(reservation)
        return (None if seen is UNREAD else seen), reservation

    def _options(self, request: StartRequest) -> tuple[str, int]:
        mask = request.code_mask or self.policy.code_mask
        problem = validate_mask(mask)
        if problem:
            raise errors.ValidationFailed(f"code_mask {problem}.",
                                          errors={"code_mask": [problem]})
        validity = request.validity_minutes or self.policy.validity_minutes
        if not 1 <= validity <= self.policy.validity_minutes:
            message = f"must be between 1 and {self.policy.validity_minutes}"
            raise errors.ValidationFailed(f"validity_minutes {message}.",
                                          errors={"validity_minutes": [message]})
        return mask, validity

    @staticmethod
    def _refuse_if_limited(reservation: Reservation) -> None:
        if reservation.outcome is Send.COOLDOWN:
            raise errors.RateLimited("Wait before asking for another code.",
                                     reservation.wait_ms / 1000, "resend_cooldown")
        if reservation.outcome is Send.MAX_SENDS:
            raise errors.RateLimited("No more codes can be sent for this verification.",
                                     reservation.wait_ms / 1000, "max_sends")

    def _test_code(self, e164: str) -> str | None:
        entry = (self.policy.test_numbers or {}).get(e164)
        if entry is None:
            return None
        if entry.expires < datetime.now(UTC).date():
            log.warning("test number entry has expired and is ignored")
            return None
        return entry.code

    def _deliver(self, verification: Verification) -> None:
        if verification.test:
            self.on_event(Event.TEST_NUMBER_USED, verification=verification)
            return
        urls = self.notifier.urls_for(verification)
        self.gateway.send_token_sms(
            verification.phone,
            token_reference=verification.token_reference,
            message_data=messages.render(verification.locale, verification.validity_minutes,
                                         self.policy.message_template),
            token_validity=verification.validity_minutes,
            token_mask=verification.mask,
            case_sensitive=verification.case_sensitive,
            originator=self.policy.originator,
            **urls,
        )

    # -- read and cancel -----------------------------------------------------------------
    def read(self, client: str, verification_id: str | None) -> Verification:
        """The verification, ended as expired when its time is up."""
        data = self.store.read(verification_id) if verification_id else None
        if data is None or data.get("client") != client:
            raise errors.VerificationNotFound("No such verification.")
        verification = Verification.from_hash(verification_id, data)
        if verification.is_pending and verification.expires_ms <= now_ms(self.clock):
            self._end(verification, "expired")
            return self.read(client, verification_id)
        return verification

    def cancel(self, client: str, verification_id: str) -> Verification:
        verification = self.read(client, verification_id)
        ending = self._end(verification, "canceled")
        if ending.decision is Ended.CLOSED:
            raise self._closed(ending.status)
        return self.read(client, verification_id)

    def _end(self, verification: Verification, status: str) -> Ending:
        ending = self.store.end_pending(
            verification.id, client=verification.client, now_ms=now_ms(self.clock),
            status=status, masked_phone=mask_phone(verification.phone))
        if ending.decision is Ended.NOT_FOUND:
            raise errors.VerificationNotFound("No such verification.")
        return ending
