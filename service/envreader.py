"""Reading environment variables: typed values, ``NAME_FILE`` secrets, every problem at once.

A problem is a :class:`ConfigError` whose message is one line naming the variable. A
:class:`Collector` keeps reading after a problem and raises them all together, so an
operator fixes a configuration in one round instead of one variable per start.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

T = TypeVar("T")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
# The variables that may be given as NAME_FILE: credentials, and REDIS_URL, which may hold
# a password.
FILE_VARIABLES = (
    "ASPSMS_USERKEY", "ASPSMS_PASSWORD", "OTP_API_KEYS", "OTP_ADMIN_KEYS", "OTP_SECRET",
    "REDIS_URL",
)


class ConfigError(ValueError):
    """Configuration values are missing or invalid; each line of ``lines`` names one."""

    def __init__(self, variable: str, problem: str):
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.lines = [str(self)]

    @classmethod
    def of(cls, errors: Iterable[ConfigError]) -> ConfigError:
        errors = list(errors)
        combined = errors[0]
        if len(errors) > 1:
            combined = cls(errors[0].variable, "")
            combined.lines = [line for error in errors for line in error.lines]
            combined.args = ("; ".join(combined.lines),)
        return combined

    @property
    def variables(self) -> list[str]:
        return [line.split(":", 1)[0] for line in self.lines]


def report(error: ConfigError) -> None:
    """Each problem as its own line on standard error."""
    for line in error.lines:
        print(f"configuration error: {line}", file=sys.stderr, flush=True)


class Collector:
    """Runs readers, keeping every ConfigError; :meth:`done` raises them as one."""

    def __init__(self):
        self.errors: list[ConfigError] = []

    def __call__(self, read: Callable[[], T]) -> T | None:
        try:
            return read()
        except ConfigError as e:
            self.errors.append(e)
            return None

    def done(self) -> None:
        if self.errors:
            raise ConfigError.of(self.errors)


class Env:
    """Raw values, resolving ``NAME_FILE`` for the variables that accept it."""

    def __init__(self, environ: Mapping[str, str], sandbox: bool = False):
        self.environ = environ
        self.sandbox = sandbox

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self.environ.get(name)
        file_name = self.environ.get(f"{name}_FILE")
        if file_name and name not in FILE_VARIABLES:
            raise ConfigError(f"{name}_FILE", f"is not supported; set {name} itself")
        if value not in (None, "") and file_name:
            raise ConfigError(name, f"set both {name} and {name}_FILE; choose one")
        if file_name:
            try:
                with open(file_name, encoding="utf-8") as handle:
                    value = handle.read()
            except (OSError, UnicodeDecodeError) as e:
                reason = getattr(e, "strerror", None) or "not UTF-8 text"
                raise ConfigError(f"{name}_FILE", f"cannot read {file_name}: {reason}") from e
        if value is None or value.strip() == "":
            return default
        return value.strip()

    def given(self, name: str) -> bool:
        """Whether the variable or its file variant is set at all."""
        return bool(self.environ.get(name, "").strip() or self.environ.get(f"{name}_FILE"))

    def whole(self, name: str) -> int | None:
        """A whole number, or None when unset."""
        raw = self.get(name)
        if raw is None:
            return None
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(name, f"must be a whole number, got {raw!r}") from None

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.whole(name)
        if value is None:
            return default
        if not low <= value <= high:
            raise ConfigError(name, f"must be between {low} and {high}, got {value}")
        return value

    def number(self, name: str, default: float, low: float, high: float) -> float:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(name, f"must be a number of seconds, got {raw!r}") from None
        if not low < value <= high:
            raise ConfigError(name, f"must be more than {low} and at most {high}, got {raw}")
        return value

    def flag(self, name: str) -> bool | None:
        """true/false (also 1/0, yes/no, on/off), or None when unset."""
        raw = self.get(name)
        if raw is None:
            return None
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise ConfigError(name, f"must be true or false, got {raw!r}")

    def boolean(self, name: str, default: bool) -> bool:
        value = self.flag(name)
        return default if value is None else value
