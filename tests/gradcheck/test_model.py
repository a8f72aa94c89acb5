"""check_model (:mod:`minicnn.gradcheck.model`): a broken step named, the implementation and the fused
steps in the report, every layer kind in one model, and the README's snippet on real MNIST."""

import copy
import os

import numpy as np
import pytest

from minicnn import (
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    Input,
    LeakyReLU,
    MaxPool2D,
    Sequential,
    gradcheck,
    to_categorical,
)

rng = np.random.default_rng(0)


def test_a_model_whose_backward_returns_none_names_the_layer():
    class Silent(Flatten):
        def backward_pass(self, dout, cache):
            return None, {}

    model = Sequential([Input((2, 2, 1)), Silent(), Dense(3, activation="softmax", seed=0)])
    report = gradcheck.check_model(model, rng.random((2, 2, 2, 1)), [0, 2])
    assert not report.ok and report.blamed == ["flatten"]
    assert "dx is NoneType; expected an array of shape (2, 2, 2, 1)" in str(report)
    assert report.checks == []  # no end-to-end comparison without a whole chain


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


def test_check_model_passes_with_every_new_layer():
    model = Sequential([
        Input((8, 8, 2)), Conv2D(3, 3, strides=(1, 2), padding="same", use_bias=False, seed=0),
        BatchNormalization(), LeakyReLU(), AveragePooling2D(2), Conv2D(4, 2, activation="tanh", seed=1),
        GlobalAveragePooling2D(), Dense(3, activation="sigmoid", seed=2), Activation("softmax"),
    ])
    x = np.random.default_rng(0).standard_normal((4, 8, 8, 2))
    gradcheck.check_model(copy.deepcopy(model), x, np.array([0, 1, 2, 1]), implementation="both").assert_ok()


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
