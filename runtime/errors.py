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
