"""Gateway vocabulary: operations, status codes, delivery states, reason codes.

Texts follow docs/gateway.md §4 (status codes), §6.2 (delivery states) and §6.3 (reason codes).
Only "OK" and "Authorization failed." are observed wordings; the rest are our own short
English texts, which clients must not parse (docs/gateway.md §11).
"""

# The fourteen operations of json.aspsms.com, spelled as the gateway documents them.
OPERATIONS = (
    "CheckCredits",
    "SendTextSMS",
    "SendSimpleTextSMS",
    "InquireDeliveryNotifications",
    "SendOriginatorUnlockCode",
    "UnlockOriginator",
    "CheckOriginatorAuthorization",
    "SendTokenSMS",
    "VerifyToken",
    "CreateVoucher",
    "GetVoucherTransactions",
    "RedeemVoucher",
    "VersionInfo",
    "ListAllStatusCodes",
)

# A production client posts to /checkCredits (docs/gateway.md §1): paths match in any case.
_BY_LOWER_NAME = {name.lower(): name for name in OPERATIONS}

# 27 is left out on purpose: nothing is known about it (docs/gateway.md §11 "do not emit").
STATUS_TEXT = {
    "1": "OK",
    "2": "Connection to the ASPSMS back end failed.",
    "3": "Authorization failed.",
    "4": "Binary file not found.",
    "5": "Not enough credits.",
    "6": "Time-out.",
    "7": "Transmission error, please retry.",
    "8": "Invalid userkey.",
    "9": "Invalid password.",
    "10": "Invalid originator.",
    "11": "Invalid message data.",
    "12": "Invalid binary data.",
    "13": "Invalid binary file type.",
    "14": "Invalid MCC.",
    "15": "Invalid MNC.",
    "16": "Invalid XSer.",
    "17": "Invalid buffered message notification URL.",
    "18": "Invalid delivery notification URL.",
    "19": "Invalid non-delivery notification URL.",
    "20": "No recipient given.",
    "21": "Binary data missing.",
    "22": "Invalid deferred delivery time.",
    "23": "Transaction reference number missing.",
    "24": "Service temporarily unavailable.",
    "25": "User access denied.",
    "26": "Exists.",
    "28": "Originator needs no authorization.",
    "29": "Originator authorization pending.",
    "30": "Originator not authorized.",
    "31": "Originator already authorized.",
    "32": "No restrictions for notification recipient.",
    "33": "Notification recipient authorization pending.",
    "34": "Notification recipient not authorized.",
    "35": "Notification recipient already authorized.",
    "36": "Security token authorization pending.",
    "37": "Security token not authorized.",
    "38": "Security token not found.",
    "39": "Security token already authorized.",
}

DELIVERY_TEXT = {
    "-1": "Not yet submitted or rejected",
    "0": "Delivered",
    "1": "Buffered",
    "2": "Not delivered",
}

REASON_TEXT = {
    "000": "Unknown subscriber",
    **{f"{n:03d}": "Service temporarily unavailable" for n in range(1, 9)},
    "009": "Illegal error code",
    "010": "Network time-out",
    "030": "Originator not authorized",
    "031": "Originator already authorized",
    "100": "Facility not supported",
    "101": "Unknown subscriber",
    "102": "Facility not provided",
    "103": "Call barred",
    "104": "Operation barred",
    "105": "SC congestion",
    "106": "Facility not supported",
    "107": "Absent subscriber",
    "108": "Delivery failure",
    "109": "SC congestion",
    "110": "Protocol error",
    "111": "MS not equipped",
    "112": "Unknown SC",
    "113": "SC congestion",
    "114": "Illegal MS",
    "115": "MS not a subscriber",
    "116": "Error in MS",
    "117": "SMS lower layer not provisioned",
    "118": "System failure",
    "119": "PLMN system failure",
    "120": "HLR system failure",
    "121": "VLR system failure",
    "122": "Previous VLR system failure",
    "123": "Controlling MSC system failure",
    "124": "VMSC system failure",
    "125": "EIR system failure",
    "126": "System failure",
    "127": "Unexpected data value",
    "200": "Error in service-centre address",
    "201": "Invalid absolute validity period",
    "202": "Message exceeds maximum",
    "203": "Unable to unpack GSM message",
    "204": "Unable to convert to IA5 alphabet",
    "205": "Invalid validity-period format",
    "206": "Invalid destination address",
    "207": "Duplicate message submit",
    "208": "Invalid message-type indicator",
}


class Refusal(Exception):
    """A request the gateway answers with HTTP 200 and a StatusCode other than "1"."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def canonical_operation(name: str) -> str | None:
    """The documented spelling of an operation name, or None when there is no such operation."""
    return _BY_LOWER_NAME.get(name.lower())


def envelope(code: str, **fields) -> dict:
    """The gateway's answer: StatusCode and StatusInfo as strings, plus operation fields."""
    return {**fields, "StatusCode": code, "StatusInfo": STATUS_TEXT.get(code, "Unknown status.")}


def status_code_list() -> list[dict]:
    """Every status code with its text, in numeric order (ListAllStatusCodes)."""
    return [{"StatusCode": code, "StatusInfo": text} for code, text in STATUS_TEXT.items()]
