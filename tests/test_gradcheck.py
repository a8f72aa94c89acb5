"""gradcheck diagnoses: shapes and keys, kinks, sampling, hints, both implementations, the optimizer
check, real MNIST."""

import os

import numpy as np
import pytest

from minicnn import (
    SGD,
    Adam,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Input,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Sequential,
    gradcheck,
    to_categorical,
)

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


def test_a_model_whose_backward_returns_none_names_the_layer():
    class Silent(Flatten):
        def backward_pass(self, dout, cache):
            return None, {}

    model = Sequential([Input((2, 2, 1)), Silent(), Dense(3, activation="softmax", seed=0)])
    report = gradcheck.check_model(model, rng.random((2, 2, 2, 1)), [0, 2])
    assert not report.ok and report.blamed == ["flatten"]
    assert "dx is NoneType; expected an array of shape (2, 2, 2, 1)" in str(report)
    assert report.checks == []  # no end-to-end comparison without a whole chain


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


# --------------------------------------------------------------------------- sampling, hints, implementations


def test_sampling_covers_corners_faces_and_nonzero_entries():
    analytic = np.zeros((2, 5, 6, 3))
    analytic[1, 2, 3, 1] = 1.0
    chosen = gradcheck.choose_entries(analytic, 3, np.random.default_rng(0))
    picked = {np.unravel_index(i, analytic.shape) for i in chosen}
    assert (1, 2, 3, 1) in picked
    assert {(n, h, w, c) for n in (0, 1) for h in (0, 4) for w in (0, 5) for c in (0, 2)} <= picked
    assert len(gradcheck.choose_entries(analytic, None, np.random.default_rng(0))) == analytic.size
    for axis in range(4):
        for end in (0, analytic.shape[axis] - 1):
            assert sum(index[axis] == end for index in picked) >= gradcheck.EDGE_CHECKS


@pytest.mark.parametrize("analytic,numeric,factors,expected", [
    ([0.5, -1.0, 2.0], [1.0, -2.0, 4.0], [], "analytic = 0.5 x numeric at every checked entry: a missing or "
                                               "extra constant factor = 1/2"),
    ([-1.0, 2.0], [1.0, -2.0], [], "the sign is wrong"),
    ([0.75, 1.5], [1.0, 2.0], [(0.75, "the dropout scale is missing")], "the dropout scale is missing"),
    ([0.0, 1.0, 0.0], [1.0, 0.0, 2.0], [], "analytic is 0 at 2 entries where numeric is not"),
    ([1.0, 2.1, 2.9], [1.0, 2.0, 3.0], [], "no constant factor"),
])
def test_factor_hints(analytic, numeric, factors, expected):
    assert expected in gradcheck.factor_hint(np.array(analytic), np.array(numeric), factors)


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


def test_the_report_names_the_implementation_and_the_fused_steps():
    model = Sequential([Input((6, 6, 1)), Conv2D(2, 3, activation="relu", seed=0), MaxPool2D(2),
                        Dropout(0.5, seed=0), Flatten(), Dense(3, activation="softmax", seed=0)])
    x, y = rng.random((2, 6, 6, 1)), [0, 1]
    fast = gradcheck.check_model(model, x, y, implementation="fast")
    fast.assert_ok()
    assert fast.checked == "fast implementation (Numba kernels), fused steps conv2d+max_pooling2d+dropout"
    assert {c.step for c in fast.step_checks} == {"loss", "conv2d+max_pooling2d+dropout", "flatten", "dense"}
    reference = gradcheck.check_model(model, x, y)
    assert reference.checked.startswith("reference implementation")
    assert "max_pooling2d" in {c.step for c in reference.step_checks}
    with pytest.raises(ValueError, match="check_model: implementation must be one of"):
        gradcheck.check_model(model, x, y, implementation="numpy")


def test_both_implementations_in_one_report():
    model = Sequential([Input((4,)), Dense(3, activation="softmax", seed=0)])
    report = gradcheck.check_model(model, rng.random((2, 4)), [0, 1], implementation="both")
    report.assert_ok()
    assert {"x [reference]", "x [fast]"} <= set(report.errors)


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


# --------------------------------------------------------------------------- optimizers


@pytest.mark.parametrize("optimizer", [Adam(), Adam(0.01, beta_1=0.5, beta_2=0.9), SGD(0.1),
                                       SGD(0.1, momentum=0.9)], ids=repr)
def test_optimizers_follow_their_textbook_formula(optimizer):
    report = gradcheck.check_optimizer(optimizer, steps=4)
    report.assert_ok()
    assert len(report.checks) == 8  # two parameters, four steps
    assert optimizer.iterations == 0 and optimizer.state == {}  # a copy was stepped


def test_a_wrong_momentum_is_caught(monkeypatch):
    def update(self, name, param, grad):
        velocity = np.zeros_like(param)  # a fresh velocity every step: the state is never kept
        velocity = self.momentum * velocity - self.learning_rate * grad
        param += velocity

    monkeypatch.setattr(SGD, "update", update)
    report = gradcheck.check_optimizer(SGD(0.1, momentum=0.9))
    assert not report.ok and report.blamed == ["SGD"]
    errors = {c.name: c.relative_error for c in report.checks}
    assert errors["step 1: w"] < 1e-12 and errors["step 2: w"] > 1e-2  # the first step has no momentum yet
    assert "SGD.update" in str(report)
    assert "derivation: docs/backprop.md#sgd-with-nesterov-momentum" in str(report)


@pytest.mark.parametrize(("layer", "section"), [
    (BatchNormalization(), "batchnormalization"), (LeakyReLU(), "leakyrelu"),
    (AveragePooling2D(2), "averagepooling2d-and-globalaveragepooling2d"), (Dense(2), "dense"),
], ids=lambda v: type(v).__name__ if not isinstance(v, str) else v)
def test_a_report_points_at_the_section_its_layer_names(layer, section):
    report = gradcheck.check_layer(layer, rng.standard_normal((2, 4, 4, 3)) if section != "dense"
                                   else rng.standard_normal((2, 3)))
    assert report.sections == {report.subject: f"docs/backprop.md#{section}"}


# --------------------------------------------------------------------------- the README snippet on real MNIST


@pytest.mark.slow
def test_readme_snippet_passes_on_real_mnist_thanks_to_kinks():
    from minicnn import datasets
    from minicnn.experiments.published_model import mnist_cnn

    if not os.environ.get("MINICNN_DATA"):
        pytest.skip("MINICNN_DATA is not set: no real MNIST here")
    (x_train, y_train), _ = datasets.load_mnist(download=False)
    x_train, y_train = datasets.prepare_images(x_train[:3]), to_categorical(y_train[:3], 10)
    model = mnist_cnn(seed=0)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    report = gradcheck.check_model(model, x_train[:3], y_train[:3])
    report.assert_ok()
    assert report.kinks > 50  # MNIST's zero background: z = b = 0 there
    assert f"kinks: {report.kinks} entries left out" in str(report)
