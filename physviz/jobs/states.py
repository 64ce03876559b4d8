"""The states a job can be in, and which of them are final."""
from __future__ import annotations

STATES = ("pending", "running", "completed", "failed", "cancelled", "unknown")
TERMINAL = ("completed", "failed", "cancelled")


def is_terminal(state: str | None) -> bool:
    """Whether a job in `state` has ended (completed, failed or cancelled): its state changes no more."""
    return state in TERMINAL
