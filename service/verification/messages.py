"""The SMS text around the code, per locale. The gateway puts the code where
``<VERIFICATIONCODE>`` stands; this service never sees the code itself."""

from __future__ import annotations

import re

from service.verification import gsm
from service.verification.codes import MAX_MASK_LENGTH

PLACEHOLDER = "<VERIFICATIONCODE>"
TEMPLATES = {
    "en": "Your verification code is <VERIFICATIONCODE>. It is valid for {minutes} minutes. "
          "Never share it with anyone.",
    "de": "Ihr Bestätigungscode lautet <VERIFICATIONCODE>. Er ist {minutes} Minuten gültig. "
          "Geben Sie ihn niemandem weiter.",
    "fr": "Votre code de vérification est <VERIFICATIONCODE>. Il est valable {minutes} minutes. "
          "Ne le communiquez à personne.",
    # "È" is not in the GSM 7-bit alphabet (it would make the SMS UCS-2, in two parts)
    "it": "Il suo codice di verifica è <VERIFICATIONCODE>. Vale {minutes} minuti. "
          "Non lo comunichi a nessuno.",
}
# The longest code the gateway can put in: a mask of the longest length a request may give.
LONGEST_CODE = "8" * MAX_MASK_LENGTH
LOCALE_PATTERN = re.compile(r"\A[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8}){0,2}\Z")


def language(locale: str | None) -> str:
    """``de-CH`` → ``de``; languages we have no text for fall back to English."""
    base = (locale or "en").replace("_", "-").split("-")[0].lower()
    return base if base in TEMPLATES else "en"


def render(locale: str | None, minutes: int, custom: str | None = None) -> str:
    template = custom or TEMPLATES[language(locale)]
    return template.replace("{minutes}", str(minutes))


def longest_cost(locale: str | None, minutes: int, custom: str | None = None) -> gsm.Cost:
    """Encoding and parts of the SMS at its longest: the longest code in place."""
    return gsm.cost(render(locale, minutes, custom).replace(PLACEHOLDER, LONGEST_CODE))
