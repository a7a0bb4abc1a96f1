"""The training layer's user errors (each message is one line naming the problem and the fix)."""

from __future__ import annotations

from ...runtime.errors import EdgeS2SError


class RunError(EdgeS2SError, ValueError):
    """The run directory cannot be started or resumed as asked."""


class DataError(EdgeS2SError, ValueError):
    """A training data file is missing or malformed (message names file:line and the fix)."""
