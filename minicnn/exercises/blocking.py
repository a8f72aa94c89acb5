"""While an exercise is graded, minicnn's own implementation of the piece it asks for is unavailable.

Each exercise names the library's functions and methods that compute what the student must write
(``Exercise.blocks``, as ``"module:qualname"``). :func:`blocked` replaces
each one, wherever a minicnn module holds it (a module attribute, a class attribute, a tuple in a
module-level dict such as ``ACTIVATIONS``), with a function that raises :class:`LibraryPieceCalled`
("you called minicnn's own col2im_reference; the exercise asks you to write it"), and puts every
one back on exit. So ``return super().backward_affine_pass(dz, cache)`` in a stub, or a call to
``col2im_reference``, fails its cases with that message instead of passing.

The grader's own modules (:data:`GRADER_MODULES`) keep the originals: their expected values are
computed with them. ``python -m minicnn.exercises grade`` grades in a subprocess
(:mod:`minicnn.exercises.run`), so the replacements live and die with that process.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator

GRADER_MODULES = ("minicnn.exercises", "minicnn.gradcheck")
"""Modules left alone: the grader computes expected values with the library's own pieces."""


class LibraryPieceCalled(RuntimeError):
    """The submission called minicnn's own implementation of the piece the exercise asks for."""


def resolve(reference: str) -> tuple[object, str, object]:
    """``"minicnn.layers.dense:Dense.backward_affine_pass"`` -> (the class Dense, the attribute name,
    the function); a module-level function gives (the module, its name, the function). A method a class
    inherits is found, and blocked, on the class that defines it."""
    module_name, qualname = reference.split(":")
    owner = importlib.import_module(module_name)
    *path, attribute = qualname.split(".")
    for part in path:
        owner = getattr(owner, part)
    if isinstance(owner, type):
        owner = next(cls for cls in owner.__mro__ if attribute in vars(cls))
    return owner, attribute, vars(owner)[attribute]


def stand_in(name: str, exercise: str):
    """The function that replaces minicnn's ``name`` while ``exercise`` is graded."""

    def called(*args, **kwargs):
        raise LibraryPieceCalled(f"you called minicnn's own {name}; the exercise {exercise!r} asks you to "
                                 "write it yourself (the grader makes the library's version unavailable)")

    called.__name__ = called.__qualname__ = name.rsplit(".", 1)[-1]
    return called


@contextlib.contextmanager
def blocked(references: tuple[str, ...], exercise: str) -> Iterator[None]:
    """Replace each of ``references`` by a stand-in that raises, wherever minicnn holds it; restore them on
    exit."""
    undo: list[tuple[object, object, object]] = []  # (container, key, original); containers: modules, dicts
    try:
        for reference in references:
            owner, attribute, original = resolve(reference)
            name = reference.split(":")[1]
            replacement = stand_in(name, exercise)
            if isinstance(owner, type):
                undo.append((owner, attribute, original))
                setattr(owner, attribute, replacement)
                continue
            for module_name, module in list(sys.modules.items()):
                student = module_name.startswith("minicnn_exercise_")
                grader = module_name.startswith(GRADER_MODULES)
                if grader or not (module_name.startswith("minicnn.") or student):
                    continue
                for key, value in list(vars(module).items()):
                    if value is original:
                        undo.append((module, key, original))
                        setattr(module, key, replacement)
                    elif isinstance(value, dict):
                        for k, v in list(value.items()):
                            if isinstance(v, tuple) and any(item is original for item in v):
                                undo.append((value, k, v))
                                value[k] = tuple(replacement if item is original else item for item in v)
        yield
    finally:
        for container, key, original in reversed(undo):
            if isinstance(container, dict):
                container[key] = original
            else:
                setattr(container, key, original)
