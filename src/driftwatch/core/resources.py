"""Where built-in scenarios and rule packs live: package data in a wheel install, the
repository's top-level folders in an editable/source checkout."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

_PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def builtin_dir(kind: Literal["scenarios", "monitors"]) -> Path | None:
    installed = _PACKAGE_ROOT / "_builtin" / kind
    if installed.is_dir():
        return installed
    checkout = _PACKAGE_ROOT.parents[1] / kind  # src/driftwatch → repo root
    if checkout.is_dir():
        return checkout
    return None
