"""The implementation a check runs (:mod:`minicnn.gradcheck.implementation`), and its deprecated name."""

import numpy as np
import pytest

from minicnn import Adam, Dense, Input, Sequential, gradcheck

rng = np.random.default_rng(0)


@pytest.mark.parametrize("check", ["check_layer", "check_model", "check_optimizer"])
def test_kernels_is_the_deprecated_name_of_implementation(check):
    """``kernels=`` still chooses what is checked, with a DeprecationWarning; with ``implementation=``
    as well it is a TypeError naming the check."""
    arguments = {"check_layer": (Dense(3, seed=0), rng.random((2, 4))),
                 "check_model": (Sequential([Input((4,)), Dense(3, activation="softmax", seed=0)]),
                                 rng.random((2, 4)), [0, 1]),
                 "check_optimizer": (Adam(),)}[check]
    function = getattr(gradcheck, check)
    with pytest.warns(DeprecationWarning, match=f"{check}: kernels= is deprecated, use implementation="):
        report = function(*arguments, kernels="fast")
    report.assert_ok()
    assert report.checked.startswith("fast implementation")
    with pytest.raises(TypeError, match=f"{check}: got both implementation= and kernels="):
        function(*arguments, kernels="fast", implementation="fast")
