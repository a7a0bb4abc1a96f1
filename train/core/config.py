"""What every training config shares: reading one back from a run's config.json."""

from __future__ import annotations

from dataclasses import fields
from typing import Any


def config_from_dict(cls, model_cls, d: dict[str, Any]):
    """A training config (with its nested model config) from a dict; unknown keys refused."""
    unknown = sorted(set(d) - {f.name for f in fields(cls)})
    if unknown:
        raise ValueError(f"unknown training config keys {unknown}")
    d = dict(d)
    if isinstance(d.get("model"), dict):
        bad = sorted(set(d["model"]) - {f.name for f in fields(model_cls)})
        if bad:
            raise ValueError(f"unknown model config keys {bad}")
        d["model"] = model_cls(**d["model"])
    return cls(**d)
