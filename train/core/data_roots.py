"""Where the corpora that live beside the repository are found (bAbI, FSDD): `$EDGE_S2S_DATA/<name>`
when that variable is set, else `../shared/data/<name>` next to the source checkout. In a regular
(non-editable) install the second place does not exist, so the commands that read these corpora
take the folder as an option too, and say both ways in one line when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

ENV = "EDGE_S2S_DATA"
CHECKOUT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def shared_data(name: str) -> Path:
    """The default folder of corpus `name`."""
    env = os.environ.get(ENV)
    return (Path(env) if env else CHECKOUT_DATA) / name


def where_hint(name: str, option: str) -> str:
    """How to point a command at corpus `name`."""
    return (f"pass {option} DIR, or set {ENV} to the folder that holds {name}/ (a checkout keeps it in "
            f"../shared/data)")
