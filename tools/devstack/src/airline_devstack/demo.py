"""Placeholder for `airline-demo` (the end-to-end demo); the lead replaces this module."""

from __future__ import annotations


def main() -> int:
    raise NotImplementedError(
        "airline-demo is not written yet: airline_devstack.demo is a stub owned by the lead. "
        "The stack itself works: `airline-stack up` / `status` / `down`."
    )
