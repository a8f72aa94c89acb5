"""Where ``docs/backprop.md`` derives a backward pass, for a report to point at.

Each layer, optimizer, loss and fused step says it itself, in its class attribute
``docs_section``: the anchor of a heading of ``docs/backprop.md`` (``"dense"``).
"""

from __future__ import annotations

DOCS = "docs/backprop.md"


def docs_link(obj) -> str:
    """``docs/backprop.md#<docs_section>`` for a class or an instance; ``docs/backprop.md`` if it names none
    (a class of one's own that derives from ``Layer`` itself, say)."""
    section = getattr(obj, "docs_section", None)
    return f"{DOCS}#{section}" if section else DOCS
