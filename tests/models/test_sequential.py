"""Sequential: its layers and their names, building, weights, and the forward and backward pass
through its steps (in both implementations); the deprecated spellings of its implementation choice."""

import numpy as np
import pytest
from conftest import published_model
from example_models import every_layer_model, small_digits_model, tiny_data, tiny_model

from minicnn import (
    Conv2D,
    Dense,
    Flatten,
    Input,
    MaxPool2D,
    Sequential,
    SparseCategoricalCrossentropy,
    gradcheck,
    implementation,
)

# --------------------------------------------------------------------------- structure

def test_input_layer_only_first():
    with pytest.raises(ValueError, match="first"):
        Sequential([Dense(3), Input((4,))])


def test_duplicate_layer_names_are_an_error_and_automatic_names_are_unique():
    with pytest.raises(ValueError, match="named 'a' already"):
        Sequential([Input((4,)), Dense(3, name="a"), Dense(3, name="a")])
    model = Sequential([Input((4,)), Dense(3, name="dense_1"), Dense(3), Dense(3)])
    assert [layer.name for layer in model.layers] == ["dense_1", "dense", "dense_2"]
    layer = Dense(2)
    model.add(layer)
    with pytest.raises(ValueError, match="in the model already"):
        model.add(layer)


def test_input_shape_on_the_first_layer_builds_the_model():
    model = every_layer_model()
    assert model.built and model.input_shape == (8, 8, 3) and model.output_shape == (3,)
    assert model.count_params() == 4 * 27 + 16 + 6 * 2 * 4 + 6 + 6 * 5 + 5 + 5 * 3 + 3  # BN: 4 arrays of 4
    with pytest.raises(ValueError, match=r'"dense" \(Dense\) was given input_shape=\(3,\), but only the '):
        Sequential([Input((4,)), Dense(3, input_shape=(3,))])
    with pytest.raises(ValueError, match="Conv2D: input_shape must be positive sizes"):
        Conv2D(2, 3, input_shape=(0, 4, 1))


def test_model_builds_from_first_data_without_input_layer():
    model = Sequential([Flatten(), Dense(3, activation="softmax", seed=0)])
    out = model.predict(np.ones((2, 2, 2, 1), np.float32))
    assert out.shape == (2, 3) and model.count_params() == 4 * 3 + 3


def test_get_layer_by_name_or_index():
    model = every_layer_model()
    assert model.get_layer("batch_normalization") is model.layers[1]
    assert model.get_layer(index=-1) is model.layers[-1]
    with pytest.raises(ValueError, match="no layer named 'bn'; the layers are"):
        model.get_layer("bn")
    with pytest.raises(ValueError, match="pass either name or index"):
        model.get_layer()
    with pytest.raises(ValueError, match="index 12 is out of range for 12 layers"):
        model.get_layer(index=12)


# --------------------------------------------------------------------------- weights

def test_layer_weights_get_and_set_in_keras_order():
    model = every_layer_model()
    bn = model.get_layer("batch_normalization")
    assert [w.shape for w in bn.weights] == [(4,)] * 4
    assert bn.weights[0] is bn.params["gamma"] and bn.weights[2] is bn.state["moving_mean"]
    copies = bn.get_weights()
    copies[0][:] = 7.0
    assert not (bn.params["gamma"] == 7.0).any()  # get_weights copies
    bn.set_weights([np.full(4, 2.0), np.zeros(4), np.ones(4), np.full(4, 3.0)])
    assert bn.params["gamma"].dtype == np.float32 and (bn.state["moving_variance"] == 3.0).all()
    with pytest.raises(ValueError, match=r'set_weights: layer "batch_normalization" \(\w+\) has 4'):
        bn.set_weights([np.ones(4)])
    with pytest.raises(ValueError, match=r"batch_normalization/beta has shape \(4,\); got \(5,\)"):
        bn.set_weights([np.ones(4), np.ones(5), np.ones(4), np.ones(4)])
    assert (bn.params["gamma"] == 2.0).all()  # a failed set_weights changes nothing
    assert model.get_layer("conv2d").get_weights()[0].shape == (3, 3, 3, 4)


def test_set_weights_checks_shapes():
    model = small_digits_model()
    weights = model.get_weights()
    weights[0] = weights[0][..., :4]
    with pytest.raises(ValueError, match="conv2d/kernel"):
        model.set_weights(weights)


# --------------------------------------------------------------------------- forward and backward

def test_whole_published_model_gradients():
    rng = np.random.default_rng(0)
    report = gradcheck.check_model(published_model(), rng.random((3, 28, 28, 1)), [3, 1, 4])
    report.assert_ok()
    assert len(report.checks) == 9  # the input and 8 parameter tensors


def test_compute_loss_and_gradients_returns_no_input_gradient_when_asked_in_both_implementations():
    x, y = tiny_data()
    for name in implementation.IMPLEMENTATIONS:
        model = published_model().astype(np.float64)
        model.compile("adam", loss="sparse_categorical_crossentropy", implementation=name)
        xx = np.random.default_rng(0).random((2, 28, 28, 1))
        yy = np.eye(10)[[1, 2]]
        assert model.compute_loss_and_gradients(xx, yy, input_gradient=False)[2] is None, name
        assert model.compute_loss_and_gradients(xx, yy)[2].shape == xx.shape, name


def test_from_logits_trains_a_model_that_ends_in_logits_like_the_softmax_one():
    x, y = tiny_data()
    with_softmax, with_logits = tiny_model(), tiny_model(last_activation=None)
    with_softmax.compile("sgd", loss=SparseCategoricalCrossentropy())
    with_logits.compile("sgd", loss=SparseCategoricalCrossentropy(from_logits=True))
    a = with_softmax.fit(x, y, epochs=2, batch_size=4, verbose=0, seed=0).history["loss"]
    b = with_logits.fit(x, y, epochs=2, batch_size=4, verbose=0, seed=0).history["loss"]
    np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_allclose(with_softmax.get_weights()[-1], with_logits.get_weights()[-1], rtol=1e-5)


def test_trainable_false_freezes_a_layer_but_keeps_its_gradients():
    x, y = tiny_data()
    model = tiny_model()
    conv = model.layers[0]
    conv.trainable = False
    before = conv.params["kernel"].copy()
    model.compile("adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    np.testing.assert_array_equal(conv.params["kernel"], before)
    assert np.abs(conv.grads["kernel"]).sum() > 0
    assert not np.array_equal(model.layers[-1].params["kernel"], tiny_model().layers[-1].params["kernel"])


def test_sequential_path_and_kernels_are_deprecated_names():
    model = Sequential([Input((6, 6, 2)), MaxPool2D(2)])
    model.compile("adam", implementation="reference")
    with pytest.warns(DeprecationWarning, match=r"Sequential.path\(\) is deprecated: use "
                                                r"Sequential.implementation_context\(\)"):
        context = model.path()
    with implementation.use("fast"), context:
        assert implementation.current() == "reference"
    with pytest.warns(DeprecationWarning,
                      match="Sequential.kernels is deprecated: use Sequential.implementation"):
        assert model.kernels == "reference"
    with pytest.warns(DeprecationWarning, match="Sequential.kernels is deprecated"):
        model.kernels = "fast"
    assert model.implementation == "fast"
