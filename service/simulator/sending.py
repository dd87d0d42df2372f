"""SendTextSMS, SendSimpleTextSMS and InquireDeliveryNotifications (docs/gateway.md §5, §6.1)."""

from . import fields
from .codes import Refusal, envelope
from .delivery import notification_urls
from .timefmt import deferred_wait

_NO_URLS: dict[str, str | None] = {}


def send_text_sms(sim, body: dict) -> dict:
    """The full send: callbacks, deferred delivery, flash flag."""
    urls = notification_urls(body)
    wait = deferred_wait(body.get("DeferredDeliveryTime"), sim.now())
    fields.flag(body.get("FlashingSMS"), "11")
    fields.text(body, "AffiliateID", "11")
    return _send(sim, body, "SendTextSMS", urls, wait)


def send_simple_text_sms(sim, body: dict) -> dict:
    """Text only; SendSimpleTextSMS has no callback or scheduling fields (docs/gateway.md §5.2)."""
    return _send(sim, body, "SendSimpleTextSMS", _NO_URLS, 0.0)


def inquire_delivery_notifications(sim, body: dict) -> dict:
    """Rows for the `;`-separated TRNs; none given is code 23."""
    value = body.get("TransactionReferenceNumbers")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    trns = [trn.strip() for trn in value.split(";")] if isinstance(value, str) else []
    trns = [trn for trn in trns if trn]
    if not trns:
        raise Refusal("23")
    return envelope("1", DeliveryNotifications=sim.deliveries.inquire(trns))


def _send(sim, body: dict, operation: str, urls: dict, wait: float) -> dict:
    sender = sim.sender(body.get("Originator"), required=True)
    targets = fields.recipients(body.get("Recipients"))
    message = fields.text(body, "MessageText", "11", default=None)
    force_gsm = fields.flag(body.get("ForceGSM7bit"), "11")
    parts = fields.message_parts(message, force_gsm)
    # docs/gateway.md §5.3 A: every recipient pays for every part.
    sim.charge(parts * len(targets))
    for phone, trn in targets:
        sim.record_message(phone, message, operation, sender, trn=trn)
        sim.deliveries.submit(phone, trn, urls, wait)
    return envelope("1")


HANDLERS = {
    "SendTextSMS": send_text_sms,
    "SendSimpleTextSMS": send_simple_text_sms,
    "InquireDeliveryNotifications": inquire_delivery_notifications,
}
