"""The model API Keras users guess: evaluate(return_dict=True), metrics_names, get_layer, layer weights,
save_weights/load_weights, input_shape= on the first layer, to_json, and every new layer saved and loaded."""

import json

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
    load_model,
    model_from_json,
)
from minicnn.saving import ModelFileError


def every_layer_model(seed: int = 0) -> Sequential:
    return Sequential([
        Conv2D(4, 3, strides=(1, 2), padding="same", use_bias=False, kernel_initializer="he_normal",
               seed=seed, input_shape=(8, 8, 3)),
        BatchNormalization(), LeakyReLU(0.1), AveragePooling2D(2),
        Conv2D(6, (2, 1), activation="relu", kernel_initializer="he_uniform", seed=seed + 1),
        MaxPool2D(1), Dropout(0.2, seed=seed + 2), Activation("tanh"),
        GlobalAveragePooling2D(), Dense(5, activation="sigmoid", seed=seed + 3), Dense(3, seed=seed + 4),
        Activation("softmax"),
    ])


def data(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 8, 8, 3)).astype(np.float32), rng.integers(0, 3, n)


def test_input_shape_on_the_first_layer_builds_the_model():
    model = every_layer_model()
    assert model.built and model.input_shape == (8, 8, 3) and model.output_shape == (3,)
    assert model.count_params() == 4 * 27 + 16 + 6 * 2 * 4 + 6 + 6 * 5 + 5 + 5 * 3 + 3  # BN: 4 arrays of 4
    with pytest.raises(ValueError, match=r'"dense" \(Dense\) was given input_shape=\(3,\), but only the '):
        Sequential([Input((4,)), Dense(3, input_shape=(3,))])
    with pytest.raises(ValueError, match="Conv2D: input_shape must be positive sizes"):
        Conv2D(2, 3, input_shape=(0, 4, 1))


def test_evaluate_returns_a_dict_or_a_list_in_metrics_names_order():
    x, y = data()
    model = every_layer_model()
    model.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    assert model.metrics_names == ["loss", "accuracy"]
    scores = model.evaluate(x, y, return_dict=True)
    assert list(scores) == ["loss", "accuracy"]
    assert model.evaluate(x, y) == [scores["loss"], scores["accuracy"]]
    assert scores["accuracy"] == np.mean(model.predict(x).argmax(1) == y)
    model.compile("adam", loss="sparse_categorical_crossentropy")
    assert model.evaluate(x, y) == scores["loss"] and model.metrics_names == ["loss"]
    assert model.train_on_batch(x, y, return_dict=True).keys() == {"loss"}


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


def test_save_weights_and_load_weights(tmp_path):
    x, y = data()
    model = every_layer_model()
    model.compile("adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    model.save_weights(tmp_path / "m.weights.npz")
    other = every_layer_model(seed=9)
    other.load_weights(tmp_path / "m.weights.npz")
    for a, b in zip(model.get_weights(), other.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.predict(x), other.predict(x))
    with pytest.raises(ValueError, match=r"must end in '.weights.npz'.*got 'm.weights.h5'"):
        model.save_weights(tmp_path / "m.weights.h5")
    smaller = Sequential([Input((8, 8, 3)), Flatten(), Dense(3, activation="softmax")])
    with pytest.raises(ModelFileError, match="the model needs"):
        smaller.load_weights(tmp_path / "m.weights.npz")


def test_to_json_describes_the_architecture_and_reads_back():
    model = every_layer_model()
    spec = json.loads(model.to_json())
    assert spec["class_name"] == "Sequential" and spec["config"]["input_shape"] == [8, 8, 3]
    assert [layer["class_name"] for layer in spec["config"]["layers"]][:4] == [
        "Conv2D", "BatchNormalization", "LeakyReLU", "AveragePooling2D"]
    rebuilt = model_from_json(model.to_json())
    assert rebuilt.to_json() == model.to_json()
    for a, b in zip(model.get_weights(), rebuilt.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # seeded layers: the same initial weights
    with pytest.raises(ValueError, match="model_from_json: expected the JSON of Sequential.to_json"):
        model_from_json('{"layers": []}')


def test_every_new_layer_goes_on_training_bit_identically_after_load(tmp_path, implementation):
    x, y = data(24)
    model = every_layer_model()
    model.compile("rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, seed=0)
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    a = model.fit(x, y, batch_size=8, epochs=3, initial_epoch=1, verbose=0, seed=0).history
    b = loaded.fit(x, y, batch_size=8, epochs=3, initial_epoch=1, verbose=0, seed=0).history
    assert a == b
    for wa, wb in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
