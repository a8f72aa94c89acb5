"""The names a model file or a string can use, one registry per kind, each entry registered explicitly.

``compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])``,
``Dense(kernel_initializer="he_normal")`` and every saved model name things by strings. Each
kind has one :class:`Registry` here, and each class (or function) joins its kind with a
decorator in its own module, in the spirit of Keras' ``register_keras_serializable``::

    @OPTIMIZERS.register("adam")
    class Adam(Optimizer):
        ...

registers ``Adam`` under its class name (how a saved file names it) and under Keras' string
``"adam"``. Nothing registers itself: a subclass defined in a test, an exercise or a user's
script stays out of every registry unless it is registered, so no registry ever needs
cleaning up. A user's own layer is passed to :func:`minicnn.load_model` in ``custom_objects``,
as in Keras.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """The objects of one kind (``"optimizer"``, ...) by name; :meth:`get` says which names exist."""

    def __init__(self, kind: str):
        self.kind = kind
        self._objects: dict[str, T] = {}

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"

    def register(self, *aliases: str) -> Callable[[T], T]:
        """A decorator: register a class or function under its ``__name__`` and the ``aliases``."""
        def add_under_names(obj: T) -> T:
            for name in (obj.__name__, *aliases):
                self.add(name, obj)
            return obj
        return add_under_names

    def add(self, name: str, obj: T) -> None:
        """Register ``obj`` under ``name``; ValueError if the name is taken."""
        if name in self._objects:
            raise ValueError(f"a {self.kind} named {name!r} is registered already: {self._objects[name]!r}")
        self._objects[name] = obj

    def get(self, name: str) -> T:
        """The object registered under ``name``; ValueError listing the known names otherwise."""
        if not isinstance(name, str) or name not in self._objects:
            raise ValueError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return self._objects[name]

    __getitem__ = get

    def __contains__(self, name: object) -> bool:
        return name in self._objects

    def names(self) -> list[str]:
        """Every registered name, sorted (case-insensitively, so ``adam`` sits beside ``Adam``)."""
        return sorted(self._objects, key=lambda name: (name.lower(), name))

    def objects(self) -> list[T]:
        """Every registered object once, in the order of registration (an alias adds none)."""
        return list({id(obj): obj for obj in self._objects.values()}.values())


LAYERS = Registry("layer")
"""Layer classes by class name, as saved files and Keras' configs name them (``"Conv2D"``)."""

OPTIMIZERS = Registry("optimizer")
"""Optimizer classes by class name and by Keras' lower-case name (``"Adam"``, ``"adam"``)."""

LOSSES = Registry("loss")
"""Loss classes by class name and by Keras' name (``"sparse_categorical_crossentropy"``)."""

METRICS = Registry("metric")
"""Metric classes by class name and by Keras' names (``"accuracy"``, ``"acc"``, ...)."""

SCHEDULES = Registry("learning-rate schedule")
"""Learning-rate schedule classes by class name (``"ExponentialDecay"``)."""

INITIALIZERS = Registry("kernel initializer")
"""Kernel initialiser functions by Keras' name and class name (``"he_normal"``, ``"HeNormal"``)."""

REGULARIZERS = Registry("regularizer")
"""Weight penalty classes by class name and Keras' name (``"L2"``, ``"l2"``)."""
