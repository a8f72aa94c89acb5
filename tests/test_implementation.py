"""The choice of implementation (fast or reference): explicit, scoped, and under its old names deprecated."""

import os
import subprocess
import sys

import numpy as np
import pytest

from minicnn import implementation, kernels


def test_implementation_choice_rejects_unknown_names():
    with pytest.raises(ValueError,
                       match=r"implementation.use must be one of \('fast', 'reference'\); got 'cuda'"):
        with implementation.use("cuda"):
            pass
    assert implementation.current() in implementation.IMPLEMENTATIONS


def test_use_sets_the_implementation_for_its_block_only_and_dispatchers_follow_it():
    x = np.random.default_rng(0).random((2, 5, 5, 3)).astype(np.float32)
    calls = []
    dispatch = kernels.pair(lambda v: calls.append("reference") or v, lambda v: calls.append("fast") or v)
    before = implementation.current()
    with implementation.use("reference"):
        assert implementation.current() == "reference"
        with implementation.use("fast"):
            dispatch(x)
        dispatch(x)
    assert implementation.current() == before
    assert calls == ["fast", "reference"]


def run_python(code: str, **variables: str) -> subprocess.CompletedProcess:
    """``python -c code`` with DeprecationWarnings shown and only ``variables`` of the two settings."""
    env = {k: v for k, v in os.environ.items() if k not in ("MINICNN_IMPLEMENTATION", "MINICNN_KERNELS")}
    return subprocess.run([sys.executable, "-W", "always::DeprecationWarning", "-c", code],
                          env={**env, **variables}, capture_output=True, text=True)


CURRENT = ("from minicnn import implementation; print(implementation.current());"
           "exec('with implementation.use(\"fast\"): print(implementation.current())')")


def test_the_environment_sets_only_the_default_implementation():
    for value in ("reference", "fast"):
        done = run_python(CURRENT, MINICNN_IMPLEMENTATION=value)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == [value, "fast"]
        assert "DeprecationWarning" not in done.stderr
    bad = run_python("import minicnn", MINICNN_IMPLEMENTATION="numpy")
    assert bad.returncode != 0
    assert "MINICNN_IMPLEMENTATION must be one of ('fast', 'reference'); got 'numpy'" in bad.stderr


# --------------------------------------------------------------------------- the old names, deprecated


def test_minicnn_kernels_variable_still_works_with_a_deprecation_warning():
    done = run_python(CURRENT, MINICNN_KERNELS="reference")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["reference", "fast"]
    assert "DeprecationWarning: MINICNN_KERNELS is deprecated: set MINICNN_IMPLEMENTATION" in done.stderr
    bad = run_python("import minicnn", MINICNN_KERNELS="numpy")
    assert bad.returncode != 0 and "MINICNN_KERNELS must be one of ('fast', 'reference')" in bad.stderr


def test_both_variables_set_is_an_error_naming_both():
    both = run_python("import minicnn", MINICNN_KERNELS="reference", MINICNN_IMPLEMENTATION="reference")
    assert both.returncode != 0
    assert "MINICNN_IMPLEMENTATION='reference' and MINICNN_KERNELS='reference' are both set" in both.stderr


@pytest.mark.parametrize(("old", "new"), [("use", "use"), ("current", "current"),
                                          ("PATHS", "IMPLEMENTATIONS"), ("DEFAULT", "DEFAULT"),
                                          ("check_path", "check")])
def test_old_names_in_minicnn_kernels_warn_and_are_the_new_ones(old, new):
    with pytest.warns(DeprecationWarning, match=rf"minicnn.kernels.{old} is deprecated: use "
                                                rf"minicnn.implementation.{new}$"):
        got = getattr(kernels, old)
    assert got is getattr(implementation, new)


def test_old_kernels_use_and_current_still_choose_the_implementation():
    with pytest.warns(DeprecationWarning, match="minicnn.kernels.use is deprecated"):
        use = kernels.use
    with pytest.warns(DeprecationWarning, match="minicnn.kernels.current is deprecated"):
        current = kernels.current
    with use("reference"):
        assert implementation.current() == current() == "reference"
        with use("fast"):
            assert implementation.current() == current() == "fast"
    with pytest.warns(DeprecationWarning, match="minicnn.kernels.use is deprecated"):
        from minicnn.kernels import use as imported  # noqa: F401  (from-imports go through the same path)
    with pytest.raises(AttributeError, match="module 'minicnn.kernels' has no attribute 'paths'"):
        kernels.paths  # noqa: B018
