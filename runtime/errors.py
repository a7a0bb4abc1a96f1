"""The one exception the runtime raises for a user's mistake.

Every message is one line that names the problem and the fix; the CLI prints it as it is
and exits non-zero, an app can catch it. Bugs stay ordinary exceptions.
"""


class EdgeS2SError(Exception):
    """A problem with the user's input, bundle or environment (not a bug)."""


class BundleError(EdgeS2SError):
    """The bundle on disk is missing, corrupt, or does not match its manifest."""


class InputError(EdgeS2SError):
    """The input to decode is empty, too long, undecodable or otherwise unusable."""


def int_option(value, name: str, lo: int, hi: int | None = None, what: str = "") -> int:
    """An integer argument of the API (bools, floats and None refused) within [lo, hi], else one
    InputError line naming it (`what` says what it counts)."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= lo and (hi is None or value <= hi)
    if not ok:
        bound = f"from {lo} to {hi}" if hi is not None else f">= {lo}"
        raise InputError(f"{name} must be {bound}{what}, a whole number; got {value!r}")
    return value
