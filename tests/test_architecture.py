"""The core's explicit choices: the implementation, losses as objects, trainable and state, names, saving."""

import copy

import numpy as np
import pytest
from conftest import published_model

from minicnn import (
    CategoricalCrossentropy,
    Conv2D,
    Dense,
    Flatten,
    Input,
    Layer,
    MaxPool2D,
    Sequential,
    SparseCategoricalCrossentropy,
    implementation,
    load_model,
)
from minicnn.registry import LAYERS, Registry
from minicnn.saving import ModelFileError


def tiny_model(seed=0, last_activation="softmax"):
    return Sequential([Input((6, 6, 2)), Conv2D(3, 3, padding="same", activation="relu", seed=seed),
                       MaxPool2D(2), Flatten(), Dense(4, activation=last_activation, seed=seed + 1)])


def data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 6, 6, 2)).astype(np.float32), rng.integers(0, 4, n)


# ------------------------------------------------------------------- the implementation is the model's choice

def test_compile_pins_the_implementation_and_none_follows_the_active_one():
    x, _ = data()
    model = Sequential([Input((6, 6, 2)), MaxPool2D(2)])
    seen = []

    class Spy(Layer):
        def forward(self, x, training=False):
            seen.append(implementation.current())
            return x

    model.add(Spy())
    model.compile("adam", implementation="reference")
    assert model.implementation == "reference"
    model.predict(x)
    with implementation.use("fast"):
        model.predict(x)
    model.compile("adam")  # implementation=None: follow the active one
    with implementation.use("reference"):
        model.predict(x)
    model.predict(x)
    assert seen == ["reference", "reference", "reference", implementation.DEFAULT]
    with pytest.raises(ValueError, match=r"compile: implementation must be one of \('fast', 'reference'\)"):
        model.compile("adam", implementation="numpy")


def test_compile_kernels_is_the_deprecated_name_of_implementation():
    x, _ = data()
    model = Sequential([Input((6, 6, 2)), MaxPool2D(2)])
    seen = []

    class KernelsSpy(Layer):
        def forward(self, x, training=False):
            seen.append(implementation.current())
            return x

    model.add(KernelsSpy())
    with pytest.warns(DeprecationWarning, match="compile: kernels= is deprecated, use implementation="):
        model.compile("adam", kernels="reference")
    assert model.implementation == "reference"
    with implementation.use("fast"):
        model.predict(x)
    assert seen == ["reference"]
    for both in ({"implementation": "fast"}, {"implementation": None}):
        with pytest.raises(TypeError, match="compile: got both implementation= and kernels="):
            model.compile("adam", kernels="fast", **both)
    with pytest.raises(TypeError, match="compile: got both implementation= and kernels="):
        model.compile("adam", None, None, "fast", kernels="fast")  # implementation given by position
    assert model.implementation == "reference"  # unchanged by the refused calls
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="compile: implementation must be"):
        model.compile("adam", kernels="numpy")


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


def test_compute_loss_and_gradients_returns_no_input_gradient_when_asked_in_both_implementations():
    x, y = data()
    for name in implementation.IMPLEMENTATIONS:
        model = published_model().astype(np.float64)
        model.compile("adam", loss="sparse_categorical_crossentropy", implementation=name)
        xx = np.random.default_rng(0).random((2, 28, 28, 1))
        yy = np.eye(10)[[1, 2]]
        assert model.compute_loss_and_gradients(xx, yy, input_gradient=False)[2] is None, name
        assert model.compute_loss_and_gradients(xx, yy)[2].shape == xx.shape, name


# --------------------------------------------------------------------------- losses

def test_from_logits_trains_a_model_that_ends_in_logits_like_the_softmax_one():
    x, y = data()
    with_softmax, with_logits = tiny_model(), tiny_model(last_activation=None)
    with_softmax.compile("sgd", loss=SparseCategoricalCrossentropy())
    with_logits.compile("sgd", loss=SparseCategoricalCrossentropy(from_logits=True))
    a = with_softmax.fit(x, y, epochs=2, batch_size=4, verbose=0, seed=0).history["loss"]
    b = with_logits.fit(x, y, epochs=2, batch_size=4, verbose=0, seed=0).history["loss"]
    np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_allclose(with_softmax.get_weights()[-1], with_logits.get_weights()[-1], rtol=1e-5)


def test_losses_say_which_labels_they_expect():
    model = tiny_model()
    model.compile("adam", loss="categorical_crossentropy")
    x, y = data()
    with pytest.raises(ValueError, match=r"categorical_crossentropy expects one-hot labels of shape \(N, 4\)"
                                         r".*sparse_categorical_crossentropy"):
        model.fit(x, y, verbose=0)
    model.compile("adam", loss=SparseCategoricalCrossentropy())
    with pytest.raises(ValueError, match=r"integer labels of shape \(N,\) or \(N, 1\).*"
                                         r"For one-hot labels use loss='categorical_crossentropy'"):
        model.fit(x, np.eye(4)[y], verbose=0)
    model.fit(x, y[:, None], verbose=0)  # (N, 1), as keras.datasets.cifar10 returns them
    with pytest.raises(ValueError, match="from_logits=True.*softmax"):
        model.compile("adam", loss=CategoricalCrossentropy(from_logits=True))


def test_loss_objects_compute_keras_values():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    expected = -np.mean(np.log([0.7, 0.8]))
    assert SparseCategoricalCrossentropy()([0, 2], p) == pytest.approx(expected)
    assert CategoricalCrossentropy()(np.eye(3)[[0, 2]], p) == pytest.approx(expected)
    z = np.log(p) + 3.0  # logits of the same probabilities
    assert SparseCategoricalCrossentropy(from_logits=True)([0, 2], z) == pytest.approx(expected)


# --------------------------------------------------------------------------- layers: trainable, state, names

def test_trainable_false_freezes_a_layer_but_keeps_its_gradients():
    x, y = data()
    model = tiny_model()
    conv = model.layers[0]
    conv.trainable = False
    before = conv.params["kernel"].copy()
    model.compile("adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    np.testing.assert_array_equal(conv.params["kernel"], before)
    assert np.abs(conv.grads["kernel"]).sum() > 0
    assert not np.array_equal(model.layers[-1].params["kernel"], tiny_model().layers[-1].params["kernel"])
    lines = []
    model.summary(print_fn=lines.append)
    text = lines[0]
    assert "Trainable params: 112" in text and "Non-trainable params: 57" in text  # 27*4+4; 3*3*2*3+3


def test_state_is_saved_loaded_and_counted(tmp_path):
    class Scale(Layer):
        def build(self, input_shape):
            super().build(input_shape)
            self.state = {"scale": np.full(input_shape[-1], 2.0, np.float32)}

        def forward_pass(self, x, training):
            return x * self.state["scale"], {}

    model = Sequential([Input((3,)), Scale(name="scale"), Dense(2, activation="softmax", seed=0)])
    model.layers[0].state["scale"][:] = [1.0, 5.0, 7.0]
    lines = []
    model.summary(print_fn=lines.append)
    assert "Non-trainable params: 3 " in lines[0]
    model.save(tmp_path / "m.npz")
    with pytest.raises(ModelFileError, match=r"unknown class 'Scale'.*custom_objects=\{'Scale': Scale\}"):
        load_model(tmp_path / "m.npz")  # a class of one's own is registered nowhere
    loaded = load_model(tmp_path / "m.npz", custom_objects={"Scale": Scale})
    np.testing.assert_array_equal(loaded.layers[0].state["scale"], [1.0, 5.0, 7.0])
    assert "Scale" not in LAYERS


def test_layer_classes_are_registered_explicitly_once():
    assert {"Conv2D", "Dense", "Dropout", "Flatten", "Input", "MaxPooling2D", "ReLU", "Softmax"} <= set(
        LAYERS.names())
    assert "Dense" not in Registry("layer")  # each registry holds what was registered in it, nothing else
    subclass = type("MyDense", (Dense,), {})
    assert "MyDense" not in LAYERS  # defining a subclass registers nothing
    with pytest.raises(ValueError, match="a layer named 'Dense' is registered already"):
        LAYERS.register()(type("Dense", (Layer,), {}))
    assert LAYERS.get("Dense") is Dense and subclass is not Dense


def test_duplicate_layer_names_are_an_error_and_automatic_names_are_unique():
    with pytest.raises(ValueError, match="named 'a' already"):
        Sequential([Input((4,)), Dense(3, name="a"), Dense(3, name="a")])
    model = Sequential([Input((4,)), Dense(3, name="dense_1"), Dense(3), Dense(3)])
    assert [layer.name for layer in model.layers] == ["dense_1", "dense", "dense_2"]
    layer = Dense(2)
    model.add(layer)
    with pytest.raises(ValueError, match="in the model already"):
        model.add(layer)


# --------------------------------------------------------------------------- saving

def test_a_loaded_model_goes_on_training_bit_identically(tmp_path):
    x, y = data(24)
    model = published_model(3)
    model.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    xx = np.random.default_rng(1).random((24, 28, 28, 1)).astype(np.float32)
    yy = np.arange(24) % 10
    model.fit(xx, yy, epochs=1, batch_size=8, verbose=0, seed=4)
    twin = copy.deepcopy(model)
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.optimizer.iterations == 3 and loaded.loss.name == "sparse_categorical_crossentropy"
    a = twin.fit(xx, yy, epochs=3, initial_epoch=1, batch_size=8, verbose=0, seed=4).history["loss"]
    b = loaded.fit(xx, yy, epochs=3, initial_epoch=1, batch_size=8, verbose=0, seed=4).history["loss"]
    assert a == b
    for w_a, w_b in zip(twin.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(w_a, w_b)


def test_resuming_with_initial_epoch_equals_an_uninterrupted_run():
    x, y = data(16)
    whole, parts = tiny_model(), tiny_model()
    for m in (whole, parts):
        m.compile("adam", loss="sparse_categorical_crossentropy")
    whole.fit(x, y, epochs=3, batch_size=4, verbose=0, seed=9)
    parts.fit(x, y, epochs=1, batch_size=4, verbose=0, seed=9)
    parts.fit(x, y, epochs=3, initial_epoch=1, batch_size=4, verbose=0, seed=9)
    for a, b in zip(whole.get_weights(), parts.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("choice", ["reference", "fast", None])
def test_the_implementation_is_saved_and_files_with_the_old_key_kernels_load(tmp_path, choice):
    import json

    model = tiny_model()
    model.compile("adam", loss="sparse_categorical_crossentropy", implementation=choice)
    model.save(tmp_path / "m.npz")
    arrays = dict(np.load(tmp_path / "m.npz"))
    config = json.loads(str(arrays["__config__"]))
    assert config["compile"]["implementation"] == choice and "kernels" not in config["compile"]
    assert load_model(tmp_path / "m.npz").implementation == choice
    config["compile"]["kernels"] = config["compile"].pop("implementation")  # as written before the rename
    arrays["__config__"] = np.array(json.dumps(config))
    np.savez(tmp_path / "old.npz", **arrays)
    assert load_model(tmp_path / "old.npz").implementation == choice


@pytest.mark.parametrize("name", ["m.keras", "m.h5", "m"])
def test_save_refuses_other_formats_names(tmp_path, name):
    with pytest.raises(ValueError, match="minicnn writes its own .npz format"):
        tiny_model().save(tmp_path / name)
    assert not list(tmp_path.iterdir())


def test_load_model_names_the_file_and_the_problem(tmp_path):
    good = tmp_path / "m.npz"
    tiny_model().save(good)
    truncated = tmp_path / "t.npz"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(ModelFileError, match="t.npz"):
        load_model(truncated)
    random = tmp_path / "r.npz"
    random.write_bytes(np.random.default_rng(0).bytes(2000))
    with pytest.raises(ModelFileError, match="r.npz"):
        load_model(random)
    other = tmp_path / "o.npz"
    np.savez(other, a=np.zeros(3))
    with pytest.raises(ModelFileError, match="o.npz is not a minicnn model"):
        load_model(other)
    arrays = dict(np.load(good))
    arrays["dense/kernel"] = np.full_like(arrays["dense/kernel"], np.nan)
    nan = tmp_path / "n.npz"
    np.savez(nan, **arrays)
    with pytest.raises(ModelFileError, match="dense/kernel in .*n.npz holds NaN"):
        load_model(nan)
    del arrays["dense/kernel"]
    missing = tmp_path / "x.npz"
    np.savez(missing, **arrays)
    with pytest.raises(ModelFileError, match="x.npz lacks the array 'dense/kernel'"):
        load_model(missing)


# --------------------------------------------------------------------------- bad training

def test_a_non_finite_loss_stops_fit_naming_epoch_and_batch():
    x, y = data(16)
    model = tiny_model()
    model.compile("adam", loss="sparse_categorical_crossentropy")
    model.layers[-1].params["bias"][0] = np.inf  # logits inf - inf: the loss is NaN from the first batch
    frozen = [w.copy() for w in model.get_weights()]
    message = r"loss is nan at epoch 1, batch 1 of 4.*smaller learning rate"
    with pytest.raises(FloatingPointError, match=message):
        with np.errstate(invalid="ignore"):
            model.fit(x, y, epochs=5, batch_size=4, verbose=0)
    for before, after in zip(frozen, model.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)  # no step was taken with the bad gradients


@pytest.mark.parametrize("kwargs,message", [
    ({"validation_split": 0.9}, "leaves 0 for training"),
    ({"batch_size": True}, "batch_size must be an integer"),
    ({"epochs": 2, "initial_epoch": 2}, "initial_epoch"),
])
def test_fit_arguments_get_clear_errors(kwargs, message):
    x, y = data(2)
    model = tiny_model()
    model.compile("adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=message):
        model.fit(x, y, verbose=0, **kwargs)


def test_validation_split_takes_the_last_samples_before_the_labels_are_encoded():
    x, y = data(10)
    model = tiny_model()
    model.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=1, validation_split=0.2, verbose=0, shuffle=False)
    assert history.history["val_loss"][0] == pytest.approx(model.evaluate(x[8:], y[8:])[0], rel=1e-6)

