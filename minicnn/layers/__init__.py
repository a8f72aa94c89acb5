"""Layers, one module each, every one with a hand-written forward and backward pass.

The contract all of them keep is in :mod:`minicnn.layers.base`. This package
imports each of its modules and exports what each lists in ``__all__``, so a new
layer is one new module here (plus its kernels, docs and tests) and nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil

from minicnn.layers.base import Layer

__all__ = ["Layer"]

for _module_info in pkgutil.iter_modules(__path__):
    _module = importlib.import_module(f"{__name__}.{_module_info.name}")
    for _name in getattr(_module, "__all__", ()):
        globals()[_name] = getattr(_module, _name)
        __all__.append(_name)
del _module_info, _module, _name
