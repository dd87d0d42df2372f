"""The verification domain: start, check (checks.py), read and cancel. No Flask here.

Every call is handed the service (tenant) it is for: its policy, phone rules and limits
(issue 17). The domain never looks a tenant up, so a changed policy applies to the next
request it is handed with; verifications belong to one service (the hash's ``svc``) and
one owner (``client``: the key's name for the default service, else the service's id).

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
from service.verification.decisions import Ended, Ending, Reservation, Send
from service.verification.delivery import NO_NOTIFIER, DeliveryNotifier, NoNotifier
from service.verification.model import Verification, now_ms
from service.verification.phones import mask_phone
from service.verification.plan import StartPlan, options, refuse_if_limited
from service.verification.policy import Policy
from service.verification.store import UNREAD, Unreplicated, VerificationStore
from service.verification.take_backs import TakeBacks
from service.verification.tenant import DEFAULT, Tenant
from service.verification.uncount import CountedSend
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
    end_user_ip: str | None = None  # the end user's address as the caller saw it
    end_user_id: str | None = None  # the caller's opaque id of the end user (an HMAC kept)


@dataclass(frozen=True)
class Started:
    verification: Verification
    created: bool


class VerificationService(Checks):
    def __init__(self, *, store: VerificationStore, gateway: AspsmsClient,
                 notifier: DeliveryNotifier | NoNotifier = NO_NOTIFIER,
                 clock: Callable[[], float] = time.time,
                 on_event: Callable[..., None] | None = None, claim_hold_seconds: float = 35,
                 limits: PhoneLimits | NoLimits = NO_LIMITS):
        self.store = store
        self.gateway = gateway
        self.notifier = notifier
        self.clock = clock
        self.limits = limits
        self.take_backs = TakeBacks(clock=clock)
        self.on_event = on_event or (lambda *args, **kwargs: None)
        # a claim outlives the longest gateway call (timeout, two connect retries)
        self.claim_hold_ms = int(claim_hold_seconds * 1000)

    # -- start ---------------------------------------------------------------------------
    def start(self, tenant: Tenant, client: str, request: StartRequest) -> Started:
        """Send a code: a new verification, or a resend on the pending one."""
        plan = self._plan(tenant, client, request)
        self.take_backs.flush(plan.phone_hash)  # this phone's undos the store failed, first
        seen, reservation = self._reserve(tenant.policy, plan)
        counted = None  # a test number counts nothing
        if not plan.test:
            try:  # counted after the reservation, so only sends count (a breaker too)
                counted = self.limits.count_send(tenant, plan.phone, plan.phone_hash,
                                                 plan.end_user, safe=plan.safe)
            except Exception:  # a refusal, the store down, or a bug in count_limits.lua
                self._take_back(plan, reservation, seen)
                raise
        verification = Verification.from_hash(reservation.verification_id, reservation.state)
        try:
            self._deliver(tenant.policy, verification)
        except GatewayError as e:
            raise self._send_failed(plan, reservation, seen, e, counted) from e
        self.on_event(Event.SENT, country=plan.phone.country, test=plan.test,
                      verification=verification)
        return Started(verification, reservation.outcome is Send.CREATED)

    def _plan(self, tenant: Tenant, client: str, request: StartRequest) -> StartPlan:
        policy = tenant.policy
        end_user = self.store.end_user(request.end_user_ip, request.end_user_id,
                                       require_ip=policy.require_end_user_ip)
        phone = tenant.phones.parse(request.phone)
        mask, validity = options(policy, request.code_mask, request.validity_minutes)
        if not policy.sms_enabled:
            raise errors.SmsDisabled("Sending SMS is switched off (OTP_SMS_ENABLED=false)."
                                     if tenant.id == DEFAULT else
                                     "Sending SMS is switched off for this service.")
        # a test number's code is never sent
        test = self._test_code(policy, phone.e164) is not None
        return StartPlan(
            service=tenant.id, client=client, phone=phone,
            phone_hash=self.store.phone_hash(phone.e164), mask=mask, validity_minutes=validity,
            case_sensitive=request.case_sensitive,
            locale=messages.language(request.locale, policy.templates),
            reference=request.reference or "", test=test,
            tracked=self.notifier.tracks and not test, end_user=end_user,
            safe=any(phone.e164.startswith(entry) for entry in policy.safe_list))

    def _send_failed(self, plan: StartPlan, reservation: Reservation, seen: str | None,
                     error: GatewayError, counted: CountedSend | None) -> errors.ServiceError:
        """A send without an answer may have texted the code and been charged, so it stands
        as sent: it counts toward OTP_MAX_SENDS (its limits and budgets are counted
        already), the verification stays pending, a resend awaits the cooldown. Any other
        failed send is taken back; its limits and budgets (``counted``) only when the gateway
        surely did nothing (sent nothing, charged nothing): another may have texted someone."""
        unknown = isinstance(error, GatewayTimeout) and error.outcome_unknown
        if not unknown:
            self._take_back(plan, reservation, seen)
        if not error.may_have_acted:
            self.limits.take_back(counted)
        self.on_event(Event.SEND_FAILED, country=plan.phone.country, service=plan.service)
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

    def _reserve(self, policy: Policy, plan: StartPlan) -> tuple[str | None, Reservation]:
        """The pointer as last read (None: no verification behind it), and the reservation."""
        seen = UNREAD  # most starts are a phone's first: the script reads the pointer
        for _ in range(5):
            now = now_ms(self.clock)
            new_id = keys.new_id(plan.phone_hash)
            fields = plan.fields(now, max_attempts=policy.max_attempts,
                                 resend_cooldown=policy.resend_cooldown)
            prior = None if seen is UNREAD else seen
            try:
                reservation = self.store.reserve_send(
                    client=plan.client, phone_hash=plan.phone_hash, seen_pointer=seen,
                    new_id=new_id, now_ms=now, cooldown_ms=policy.resend_cooldown * 1000,
                    max_sends=policy.max_sends, expires_ms=fields["expires"],
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
        refuse_if_limited(reservation)
        return (None if seen is UNREAD else seen), reservation

    @staticmethod
    def _test_code(policy: Policy, e164: str) -> str | None:
        entry = (policy.test_numbers or {}).get(e164)
        if entry is None:
            return None
        if entry.expires < datetime.now(UTC).date():
            log.warning("test number entry has expired and is ignored")
            return None
        return entry.code

    def _deliver(self, policy: Policy, verification: Verification) -> None:
        if verification.test:
            self.on_event(Event.TEST_NUMBER_USED, verification=verification)
            return
        urls = self.notifier.urls_for(verification)
        self.gateway.send_token_sms(
            verification.phone,
            token_reference=verification.token_reference,
            message_data=messages.text_for(
                verification.locale, verification.validity_minutes, templates=policy.templates,
                template=policy.message_template, friendly_name=policy.friendly_name,
                originator=policy.originator),
            token_validity=verification.validity_minutes,
            token_mask=verification.mask,
            case_sensitive=verification.case_sensitive,
            originator=policy.originator,
            **urls,
        )

    # -- read and cancel -----------------------------------------------------------------
    def read(self, tenant: Tenant, client: str, verification_id: str | None) -> Verification:
        """The verification, ended as expired when its time is up."""
        data = self.store.read(verification_id) if verification_id else None
        return self._found(tenant, client, verification_id, data)

    def _found(self, tenant: Tenant, client: str, verification_id: str | None,
               data: dict[str, str] | None) -> Verification:
        """The verification read as ``data``, if it is the tenant's and the client's."""
        if (data is None or data.get("client") != client
                or (data.get("svc") or DEFAULT) != tenant.id):
            raise errors.VerificationNotFound("No such verification.")
        verification = Verification.from_hash(verification_id, data)
        if verification.is_pending and verification.expires_ms <= now_ms(self.clock):
            self._end(verification, "expired")
            return self.read(tenant, client, verification_id)
        return verification

    def cancel(self, tenant: Tenant, client: str, verification_id: str) -> Verification:
        verification = self.read(tenant, client, verification_id)
        ending = self._end(verification, "canceled")
        if ending.decision is Ended.CLOSED:
            raise self._closed(ending.status)
        return self.read(tenant, client, verification_id)

    def _end(self, verification: Verification, status: str) -> Ending:
        ending = self.store.end_pending(
            verification.id, client=verification.client, now_ms=now_ms(self.clock),
            status=status, masked_phone=mask_phone(verification.phone))
        if ending.decision is Ended.NOT_FOUND:
            raise errors.VerificationNotFound("No such verification.")
        return ending
