"""The SMS text around the code, per locale. The gateway puts the code where
``<VERIFICATIONCODE>`` stands; this service never sees the code itself.

A service's text for a locale is its own template for that locale, else its one template
(OTP_MESSAGE_TEMPLATE for the default service), else the built-in text, which starts with
the service's friendly_name when it has one ("Acme: Your verification code is …").
``{service}`` in a template stands for the friendly_name (the originator if none is set).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

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


def language(locale: str | None, own: Collection[str] = ()) -> str:
    """``de-CH`` → ``de``; languages we have no text for (built in, or ``own``: a
    service's templates) fall back to English."""
    base = (locale or "en").replace("_", "-").split("-")[0].lower()
    return base if base in TEMPLATES or base in own else "en"


def render(locale: str | None, minutes: int, custom: str | None = None, *,
           service: str | None = None) -> str:
    """``custom``, or the built-in text for the locale (after ``service: `` if given)."""
    if custom:
        template = custom
    else:
        builtin = TEMPLATES.get(language(locale), TEMPLATES["en"])
        template = f"{service}: {builtin}" if service else builtin
    return template.replace("{minutes}", str(minutes))


def text_for(locale: str, minutes: int, *, templates: Mapping[str, str],
             template: str | None, friendly_name: str | None, originator: str) -> str:
    """A service's text for ``locale`` (see the module's docstring)."""
    custom = templates.get(locale) or template
    if custom:
        custom = custom.replace("{service}", friendly_name or originator)
    return render(locale, minutes, custom, service=friendly_name)


def longest_cost(locale: str | None, minutes: int, custom: str | None = None) -> gsm.Cost:
    """Encoding and parts of the SMS at its longest: the longest code in place."""
    return gsm.cost(render(locale, minutes, custom).replace(PLACEHOLDER, LONGEST_CODE))
