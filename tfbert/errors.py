"""Exceptions tfbert raises for bad input.

Every message is one line that names the problem and the fix, so the CLI can
print it without a traceback (see ``tfbert.cli``).
"""


def printable(value: object) -> str:
    """``str(value)`` with non-printable characters (line breaks, tabs, NUL, ESC, ...) escaped as
    ``ascii()`` writes them: quoted in a message or printed to a terminal, a value stays on one
    line and cannot send control sequences."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in str(value))


class TfbertError(Exception):
    """Base class: a user-facing error with a one-line, actionable message."""


class UnknownModelError(TfbertError, LookupError):
    """A model name that is not in the registry."""


class ConfigError(TfbertError, ValueError):
    """A bad option value (unknown head, bad sequence length, ...)."""


class DataError(TfbertError, ValueError):
    """Bad training or prediction data (missing file or column, bad labels)."""


class ExportError(TfbertError, RuntimeError):
    """A model that cannot be exported the way that was asked."""


class WorkerError(TfbertError, RuntimeError):
    """A distributed run lost a worker, or its cluster never assembled."""
