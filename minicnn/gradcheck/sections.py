"""Where ``docs/backprop.md`` derives each backward pass, for a report to point at."""

from __future__ import annotations

DOCS = "docs/backprop.md"
SECTIONS = {"Dense": "dense", "Conv2D": "conv2d", "MaxPooling2D": "maxpooling2d", "Dropout": "dropout",
            "Flatten": "flatten", "ReLU": "activations", "Softmax": "activations",
            "loss": "softmax-and-cross-entropy", "Adam": "adam", "SGD": "adam",
            "ConvPoolBlock": "the-fast-implementation-one-step-for-conv2d--maxpool2d--dropout"}
"""The section of ``docs/backprop.md`` that derives each backward pass."""


def docs_section(kind: type | str) -> str:
    """The docs section for a class (or the nearest base class the docs derive), or a name."""
    names = [c.__name__ for c in kind.__mro__] if isinstance(kind, type) else [kind]
    found = [SECTIONS[name] for name in names if name in SECTIONS]
    return f"{DOCS}#{found[0]}" if found else DOCS
