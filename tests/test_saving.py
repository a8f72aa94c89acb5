"""A model saved and loaded (minicnn.saving, through Sequential.save, load_model, save_weights,
load_weights, to_json and model_from_json): architecture, weights, state, compile settings and
optimizer state come back, training goes on bit-identically, bad files get clear errors."""

import copy
import json

import numpy as np
import pytest
from conftest import published_model
from example_models import (
    digits,
    every_layer_data,
    every_layer_model,
    small_digits_model,
    tiny_data,
    tiny_model,
)

from minicnn import Dense, Flatten, Input, Layer, Sequential, load_model, model_from_json, models
from minicnn.registry import LAYERS
from minicnn.saving import ModelFileError


def test_save_and_load_restore_architecture_weights_and_biases(tmp_path):
    x, y, _, _ = digits()
    model = small_digits_model()
    model.compile("adam", loss="sparse_categorical_crossentropy")
    model.fit(x[:200], y[:200], epochs=1, verbose=0)
    assert all(np.any(layer.params["bias"] != 0) for layer in model.layers if layer.params)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = load_model(path)
    assert [type(a) for a in loaded.layers] == [type(b) for b in model.layers]
    assert [a.name for a in loaded.layers] == [b.name for b in model.layers]
    for a, b in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict(x[:50]), model.predict(x[:50]))
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary file left


def test_failed_save_leaves_the_old_file_intact(tmp_path, monkeypatch):
    model = small_digits_model()
    path = tmp_path / "model.npz"
    model.save(path)
    before = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


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


def test_a_loaded_model_goes_on_training_bit_identically(tmp_path):
    x, y = tiny_data(24)
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


def test_every_new_layer_goes_on_training_bit_identically_after_load(tmp_path, implementation):
    x, y = every_layer_data(24)
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


def test_save_weights_and_load_weights(tmp_path):
    x, y = every_layer_data()
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


def test_minicnn_models_holds_keras_models_names(tmp_path):
    assert models.__all__ == ["Sequential", "load_model", "model_from_json", "save_model"]
    x, y = tiny_data()
    model = tiny_model()
    model.compile("adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    models.save_model(model, tmp_path / "m.npz")
    loaded = models.load_model(tmp_path / "m.npz")
    assert isinstance(loaded, models.Sequential) and loaded.optimizer.iterations == 2
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert models.model_from_json(model.to_json()).to_json() == loaded.to_json()
