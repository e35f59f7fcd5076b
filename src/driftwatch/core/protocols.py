"""Contracts shared across stages. Each docstring says what an implementation may do."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from driftwatch.core.records import Finding


@runtime_checkable
class FindingSink(Protocol):
    """Receives findings after they are stored.

    Called from the monitor engine's worker thread, never from the agent's thread, with
    findings in detection order. ``send`` may block briefly (a webhook with a timeout) but
    must not raise: a sink that fails records the failure itself. ``close`` flushes and is
    called once, at shutdown.
    """

    name: str

    def send(self, findings: Sequence[Finding]) -> None: ...

    def close(self) -> None: ...


class NullSink:
    """Drops everything: the default when alerting is off."""

    name = "null"

    def send(self, findings: Sequence[Finding]) -> None:
        return None

    def close(self) -> None:
        return None
