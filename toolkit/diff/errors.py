"""The one error ``rbkit diff`` raises for bad input."""

from __future__ import annotations


class DiffError(Exception):
    """A diff that cannot be made; ``str()`` is one line naming the source (never a password)."""
