"""The SMS text around the code, per locale. The gateway puts the code where
``<VERIFICATIONCODE>`` stands; this service never sees the code itself."""

from __future__ import annotations

import re

PLACEHOLDER = "<VERIFICATIONCODE>"
TEMPLATES = {
    "en": "Your verification code is <VERIFICATIONCODE>. It is valid for {minutes} minutes. "
          "Never share it with anyone.",
    "de": "Ihr Bestätigungscode lautet <VERIFICATIONCODE>. Er ist {minutes} Minuten gültig. "
          "Geben Sie ihn niemandem weiter.",
    "fr": "Votre code de vérification est <VERIFICATIONCODE>. Il est valable {minutes} minutes. "
          "Ne le communiquez à personne.",
    "it": "Il suo codice di verifica è <VERIFICATIONCODE>. È valido {minutes} minuti. "
          "Non lo comunichi a nessuno.",
}
LOCALE_PATTERN = re.compile(r"\A[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8}){0,2}\Z")


def language(locale: str | None) -> str:
    """``de-CH`` → ``de``; languages we have no text for fall back to English."""
    base = (locale or "en").replace("_", "-").split("-")[0].lower()
    return base if base in TEMPLATES else "en"


def render(locale: str | None, minutes: int, custom: str | None = None) -> str:
    template = custom or TEMPLATES[language(locale)]
    return template.replace("{minutes}", str(minutes))
