"""Credits, originator unlocking, vouchers and the two info operations.

Behaviour: docs/gateway.md §8 and §10.
"""

import hmac
import secrets
from dataclasses import dataclass
from decimal import Decimal

from . import fields
from .codes import Refusal, envelope, status_code_list
from .timefmt import iso_utc

VERSION = "ASPSMS-Simulator 1.0 build:1"
MAX_VOUCHERS = 100  # per CreateVoucher call; the gateway's own limit is unknown
UNLOCK_SENDER = "ASPSMS"


@dataclass
class Voucher:
    code: str
    remark: str
    credits: Decimal
    created: float
    redeemed: float | None = None

    def to_json(self) -> dict:
        """SOAP `Vouchers` entry shape (docs/gateway.md §10), every value a string."""
        return {
            "VoucherCode": self.code,
            "Remark": self.remark,
            "Credits": format_credits(self.credits),
            "Created": iso_utc(self.created),
            "Redeemed": iso_utc(self.redeemed) if self.redeemed is not None else "",
        }


def format_credits(amount: Decimal) -> str:
    """`1000`, `997.5`: a plain decimal string without exponent or trailing zeros."""
    text = format(amount, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def check_credits(sim, body: dict) -> dict:
    return envelope("1", Credits=format_credits(sim.credits))


def send_originator_unlock_code(sim, body: dict) -> dict:
    """Text a random 8-digit unlock code to a numeric originator (docs/gateway.md §8)."""
    kind, originator = fields.originator(body.get("Originator"))
    if kind == "alpha":
        return envelope("28")
    if originator in sim.authorized_originators:
        return envelope("31")
    code = str(10_000_000 + secrets.randbelow(90_000_000))  # 8 digits, like the spec's example
    sim.unlock_codes[originator] = code
    text = f"Your ASPSMS originator unlock code: {code}"
    sim.record_message(originator, text, "SendOriginatorUnlockCode", UNLOCK_SENDER, code=code)
    return envelope("1")


def unlock_originator(sim, body: dict) -> dict:
    """1 with the right code, 31 when already unlocked, 30 for a wrong code (§8 A)."""
    kind, originator = fields.originator(body.get("Originator"))
    code = fields.text(body, "UnlockCode", "11", default=None, numbers=True).strip()
    fields.text(body, "AffiliateID", "11")
    if kind == "alpha":
        return envelope("28")
    if originator in sim.authorized_originators:
        return envelope("31")
    expected = sim.unlock_codes.get(originator)
    if expected is None or not hmac.compare_digest(code.encode(), expected.encode()):
        return envelope("30")
    del sim.unlock_codes[originator]
    sim.authorized_originators.add(originator)
    return envelope("1")


def check_originator_authorization(sim, body: dict) -> dict:
    """28 no restrictions, 29 pending, 30 not authorized, 31 authorized."""
    kind, originator = fields.originator(body.get("Originator"))
    if kind == "alpha":
        return envelope("28")
    if originator in sim.authorized_originators:
        return envelope("31")
    return envelope("29" if originator in sim.unlock_codes else "30")


def create_voucher(sim, body: dict) -> dict:
    """Move credits from the balance into new voucher codes."""
    count = fields.positive_number(body.get("NumberOfVouchers"), "11")
    amount = fields.positive_number(body.get("AmountCreditsPerVoucher"), "11")
    remark = fields.text(body, "Remarks", "11")
    if count != count.to_integral_value() or count > MAX_VOUCHERS:
        raise Refusal("11")
    sim.charge(count * amount)
    codes = []
    for _ in range(int(count)):
        code = secrets.token_hex(6).upper()
        sim.vouchers[code] = Voucher(code, remark, amount, sim.now())
        codes.append(code)
    return envelope("1", VoucherCodes=codes)


def get_voucher_transactions(sim, body: dict) -> dict:
    return envelope("1", vouchers=[voucher.to_json() for voucher in sim.vouchers.values()])


def redeem_voucher(sim, body: dict) -> dict:
    """Add a voucher's credits; unknown or redeemed already: code 11 (docs/gateway.md §10 A)."""
    code = fields.text(body, "RedeemCode", "11", default=None).strip().upper()
    voucher = sim.vouchers.get(code)
    if voucher is None or voucher.redeemed is not None:
        raise Refusal("11")
    voucher.redeemed = sim.now()
    sim.credits += voucher.credits
    return envelope("1")


def version_info(sim, body: dict) -> dict:
    return envelope("1", VersionInfo=VERSION)


def list_all_status_codes(sim, body: dict) -> dict:
    return envelope("1", StatusCodes=status_code_list())


HANDLERS = {
    "CheckCredits": check_credits,
    "SendOriginatorUnlockCode": send_originator_unlock_code,
    "UnlockOriginator": unlock_originator,
    "CheckOriginatorAuthorization": check_originator_authorization,
    "CreateVoucher": create_voucher,
    "GetVoucherTransactions": get_voucher_transactions,
    "RedeemVoucher": redeem_voucher,
    "VersionInfo": version_info,
    "ListAllStatusCodes": list_all_status_codes,
}
# Operations that answer without credentials (docs/gateway.md §10: "no input").
PUBLIC = frozenset({"VersionInfo", "ListAllStatusCodes"})
