"""check_layer's diagnoses (:mod:`minicnn.gradcheck.layer`): wrong shapes and missing gradients named,
kinks counted and left out, the worst entries and the docs section a report points at."""

import numpy as np
import pytest

from minicnn import AveragePooling2D, BatchNormalization, Conv2D, Dense, LeakyReLU, MaxPool2D, ReLU, gradcheck

rng = np.random.default_rng(0)


# --------------------------------------------------------------------------- shapes and keys


def test_a_backward_returning_the_wrong_shape_fails_naming_the_layer():
    class FlatDense(Dense):
        def backward_affine_pass(self, dz, cache):
            dx, grads = super().backward_affine_pass(dz, cache)
            return dx.reshape(-1), grads  # same numbers, flattened

    report = gradcheck.check_layer(FlatDense(3, seed=0, name="flat"), rng.random((4, 5)))
    assert not report.ok and report.blamed == ["flat"]
    assert ('layer "flat" (FlatDense): dx has shape (20,); expected (4, 5), the shape of its input'
            in str(report))
    assert {c.name for c in report.checks} == {"kernel", "bias"}  # the parameters are still compared


def test_a_missing_bias_gradient_is_a_clear_message_not_a_key_error():
    class NoBias(Dense):
        def backward_affine_pass(self, dz, cache):
            return dz @ self.params["kernel"].T, {"kernel": cache["x"].T @ dz}

    report = gradcheck.check_layer(NoBias(3, seed=0, name="head"), rng.random((4, 5)))
    assert not report.ok and report.blamed == ["head"]
    assert ("backward left no gradient for 'bias' in grads (it must fill the same keys as params: "
            "['bias', 'kernel']; got ['kernel'])") in str(report)
    with pytest.raises(AssertionError, match='layer "head"'):
        report.assert_ok()


def test_a_backward_that_raises_is_named_in_the_report():
    class Unfinished(ReLU):
        def backward_pass(self, dout, cache):
            raise NotImplementedError("write ReLU.backward_pass")

    report = gradcheck.check_layer(Unfinished(name="todo"), rng.standard_normal((2, 3)))
    assert not report.ok and report.blamed == ["todo"]
    assert "backward raised NotImplementedError: write ReLU.backward" in str(report)


def test_gradcheck_catches_a_wrong_backward():
    class BrokenDense(Dense):
        def backward_affine_pass(self, dz, cache):
            dx, grads = super().backward_affine_pass(dz, cache)
            grads["bias"] = grads["bias"] * 1.01  # a 1% mistake
            return dx, grads

    report = gradcheck.check_layer(BrokenDense(3, seed=0), np.random.default_rng(0).random((4, 5)))
    assert not report.ok and report.errors["bias"] > 1e-3 and report.errors["kernel"] < 1e-6
    with pytest.raises(AssertionError, match="bias"):
        report.assert_ok()


def test_a_constant_factor_the_caller_names_is_told_in_its_words():
    class DividedDense(Dense):
        def backward_affine_pass(self, dz, cache):
            dx, grads = super().backward_affine_pass(dz, cache)
            return dx, {**grads, "kernel": grads["kernel"] / len(dz)}

    x = np.random.default_rng(0).random((4, 5))
    factors = [(1 / 4, "divided by the batch size N = 4")]
    named = gradcheck.check_layer(DividedDense(3, seed=0), x, factors=factors)
    assert "analytic = 0.25 x numeric at every checked entry: divided by the batch size N = 4" in str(named)
    plain = gradcheck.check_layer(DividedDense(3, seed=0), x)
    assert "a missing or extra constant factor = 1/4" in str(plain)


# --------------------------------------------------------------------------- kinks


def test_relu_kinks_are_counted_and_left_out():
    x = rng.standard_normal((3, 8))
    x[:, :3] = 0.0  # on the kink: no derivative there
    report = gradcheck.check_layer(ReLU(), x)
    report.assert_ok()
    assert report.kinks == 9 and report.checks[0].checked == 24 - 9
    assert "kinks: 9 entries left out" in str(report)


def test_max_pool_ties_are_kinks():
    report = gradcheck.check_layer(MaxPool2D(2), np.zeros((1, 4, 4, 2)))  # every window a tie
    report.assert_ok()
    assert report.kinks == 32 and report.checks[0].checked == 0
    assert "only kinks, so not compared: x" in str(report)


def test_kinks_do_not_hide_a_wrong_backward():
    class Leaky(ReLU):
        def backward_pass(self, dout, cache):
            return dout * np.where(cache["a"] > 0, 1.0, 0.1), {}  # wrong below zero

    x = rng.standard_normal((3, 8))
    x[:, :2] = 0.0
    report = gradcheck.check_layer(Leaky(), x)
    assert not report.ok and report.kinks == 6
    assert "analytic is nonzero at" in str(report) and "x numeric" not in str(report)
    assert "derivation: docs/backprop.md#activations" in str(report)  # found through the base class


def test_without_kinks_counted_a_zero_background_would_fail():
    """The reason for kink handling: the same check with kinks compared fails on a zero input."""
    layer = Conv2D(2, 3, padding="same", activation="relu", seed=0)
    x = np.zeros((1, 5, 5, 1))
    x[0, 2, 2, 0] = 1.0
    report = gradcheck.check_layer(layer, x)
    report.assert_ok()
    assert report.kinks > 0
    bias = [c for c in report.checks if c.name == "bias"][0]
    assert bias.kinks == 2 and bias.checked == 0  # zero bias on a zero background: both filters at z = 0


# --------------------------------------------------------------------------- the report


def test_worst_entries_give_index_values_and_ratio():
    class Doubled(Dense):
        def backward_affine_pass(self, dz, cache):
            dx, grads = super().backward_affine_pass(dz, cache)
            return 2 * dx, grads

    report = gradcheck.check_layer(Doubled(3, seed=0), rng.random((4, 5)))
    x = report.checks[0]
    assert x.name == "x" and len(x.worst) == gradcheck.WORST
    for entry in x.worst:
        assert entry.ratio == pytest.approx(2.0)
        assert len(entry.index) == 2 and 0 <= entry.index[0] < 4 and 0 <= entry.index[1] < 5
    assert "analytic = 2 x numeric at every checked entry" in str(report)


@pytest.mark.parametrize(("layer", "section"), [
    (BatchNormalization(), "batchnormalization"), (LeakyReLU(), "leakyrelu"),
    (AveragePooling2D(2), "averagepooling2d-and-globalaveragepooling2d"), (Dense(2), "dense"),
], ids=lambda v: type(v).__name__ if not isinstance(v, str) else v)
def test_a_report_points_at_the_section_its_layer_names(layer, section):
    report = gradcheck.check_layer(layer, rng.standard_normal((2, 4, 4, 3)) if section != "dense"
                                   else rng.standard_normal((2, 3)))
    assert report.sections == {report.subject: f"docs/backprop.md#{section}"}
