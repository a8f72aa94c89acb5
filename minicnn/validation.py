"""Checks of numeric arguments, each raising a ValueError that names the argument, the rule and the value.

``what`` names the argument with its caller, as the message should start:
``check_int(batch_size, "fit: batch_size", minimum=1)`` raises
``fit: batch_size must be an integer >= 1; got 0``. NumPy's integers and floats count
(they register as :class:`numbers.Integral` and :class:`numbers.Real`); bools do not.
"""

from __future__ import annotations

from numbers import Integral, Real


def check_int(value, what: str, minimum: int) -> int:
    """``value`` as an int if it is an integer ``>= minimum``; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def check_positive(value, what: str) -> float:
    """``value`` as a float if it is a real number ``> 0``; ValueError otherwise (for NaN too)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not value > 0:
        raise ValueError(f"{what} must be a number > 0; got {value!r}")
    return float(value)
