"""An event as its stream entry holds it (lua/_event.lua), and as a webhook body.

The entry carries the verification's fields as they were right after the decision
(``f:<field>``), so the body shows the verification object the API showed then, whatever
happened to it since; the phone is masked once the verification has ended, as the API
masks it. The body is the contract's (§8):
``{"type", "timestamp", "data": {"service_id", "verification"}}``; a tripped budget has no
verification (``null``) and says which budget in ``data.budget``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from service.verification.model import Verification, rfc3339
from service.verification.phones import mask_phone
from service.verification.tenant import DEFAULT

TYPES = ("verification.started", "verification.resent", "verification.approved",
         "verification.canceled", "verification.expired", "verification.max_attempts_reached",
         "delivery.delivered", "delivery.failed", "delivery.buffered", "phone.locked",
         "budget.breaker_tripped")


@dataclass(frozen=True)
class Event:
    stream: str
    entry_id: str
    fields: dict[str, str]

    @property
    def webhook_id(self) -> str:
        """Stable: the same on every attempt and on a redelivery by hand (``wid``)."""
        if "wid" in self.fields:
            return self.fields["wid"]
        tag = self.stream.split("{", 1)[1].split("}", 1)[0]
        return f"msg_{tag}_{self.entry_id}"

    @property
    def type(self) -> str:
        return self.fields.get("type", "")

    @property
    def service_id(self) -> str:
        return self.fields.get("svc") or self.fields.get("f:svc") or DEFAULT

    @property
    def at_ms(self) -> int:
        return int(self.fields.get("at") or self.entry_id.split("-")[0])

    @property
    def queued_ms(self) -> int:
        """When this entry was written (a redelivery by hand is a new entry)."""
        return int(self.entry_id.split("-")[0])

    def verification(self, max_sends: int) -> dict[str, Any] | None:
        state = {name[2:]: value for name, value in self.fields.items()
                 if name.startswith("f:")}
        if "vid" not in self.fields or "client" not in state:
            return None
        if state.get("status") != "pending" and "*" not in state.get("phone", "*"):
            state["phone"] = mask_phone(state["phone"])  # masked once ended, as the API does
        return Verification.from_hash(self.fields["vid"], state).public(max_sends)

    def body(self, max_sends: int) -> str:
        data: dict[str, Any] = {"service_id": self.service_id,
                                "verification": self.verification(max_sends)}
        if self.type == "budget.breaker_tripped":
            kind = self.fields.get("breaker", "").split(":")[2:3]
            data["budget"] = {"kind": kind[0] if kind else "unknown",
                              "paused_until": rfc3339(int(self.fields.get("until") or 0))}
        return json.dumps({"type": self.type, "timestamp": rfc3339(self.at_ms), "data": data},
                          separators=(",", ":"))
