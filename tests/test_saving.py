"""A model saved and loaded (minicnn.saving, through Sequential.save, load_model, save_weights,
load_weights, to_json and model_from_json): architecture, weights, state, compile settings and
optimizer state come back, training goes on bit-identically, bad files get clear errors."""

import copy
import json
import re
import tracemalloc

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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from npz_files import deflated_zeros, member, members_of, npy_header, write_zip

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


# --------------------------------------------------------------------------- files from elsewhere


def peak_while_refused(load) -> tuple[int, ModelFileError]:
    """The most memory Python and NumPy held at once while ``load()`` ran, and the ModelFileError raised."""
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError) as info:
            load()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, info.value


def file_with_config(path, edit):
    """``tiny_model()``'s file at ``path``, its config edited (or replaced) by ``edit(config)``."""
    tiny_model().save(path)
    arrays = dict(np.load(path))
    config = json.loads(str(arrays["__config__"]))
    config = edit(config) or config
    arrays["__config__"] = np.array(config if isinstance(config, str) else json.dumps(config))
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    """A 2 MB model file whose dense/kernel member inflates to 2 GiB of zeros (its CRC is left wrong:
    the data must never be read, so never checked)."""
    folder = tmp_path_factory.mktemp("bomb")
    tiny_model().save(folder / "good.npz")
    members = members_of(folder / "good.npz")
    head = npy_header((2**29,))
    members["dense/kernel.npy"] = (deflated_zeros(head, 2**31), len(head) + 2**31, 0)
    write_zip(folder / "bomb.npz", members)
    assert (folder / "bomb.npz").stat().st_size < 3 * 2**20
    return folder / "bomb.npz"


def test_a_2_gib_zip_bomb_is_refused_before_anything_is_read(bomb):
    peak, error = peak_while_refused(lambda: load_model(bomb))
    assert peak < 2**20
    assert re.search(r"load_model: .*bomb\.npz declares 2,147,48\d,\d+ bytes of arrays uncompressed, "
                     r"more than max_bytes=1,073,741,824; nothing was read", str(error))
    # allowed that much, the member's header is refused: it is not the shape the model needs
    peak, error = peak_while_refused(lambda: load_model(bomb, max_bytes=2**32))
    assert peak < 2**20
    assert re.search(r"load_model: dense/kernel in .*bomb\.npz declares the shape \(536870912,\); "
                     r"expected \(27, 4\)\. Nothing was read", str(error))


def test_an_npy_header_declaring_1e12_floats_is_a_model_file_error(tmp_path):
    tiny_model().save(tmp_path / "good.npz")
    members = members_of(tmp_path / "good.npz")
    members["dense/kernel.npy"] = member(npy_header((10**12,)))
    write_zip(tmp_path / "h.npz", members)
    peak, error = peak_while_refused(lambda: load_model(tmp_path / "h.npz"))
    assert peak < 2**20
    assert re.search(r"load_model: dense/kernel in .*h\.npz declares the shape \(1000000000000,\); "
                     r"expected \(27, 4\)", str(error))


def absurd(layer: int, key: str, value):
    def edit(config):
        config["model"]["layers"][layer]["config"][key] = value
    return edit


@pytest.mark.parametrize("edit,message", [
    (absurd(-1, "units", 10**7), r'would create 280,000,057 weights \(1,120,000,228 bytes\) by layer "dense" '
                                 r"\(Dense\), more than max_bytes=100,000,000; nothing was built"),
    (absurd(-1, "units", 2**31), r'would create 60,129,542,201 weights .* by layer "dense"'),
    (absurd(0, "filters", 10**9), r'would create 19,000,000,000 weights .* by layer "conv2d"'),
    (absurd(0, "kernel_size", [3000, 3000]), r'would create 54,000,003 weights .* by layer "conv2d"'),
    (lambda c: c["model"].update(input_shape=[100000, 100000, 2]),
     r'one sample at layer "conv2d" \(Conv2D\) would have the shape \(100000, 100000, 2\) '
     r"\(80,000,000,000 bytes\)"),
])
def test_absurd_layer_sizes_are_refused_before_anything_is_built(tmp_path, edit, message):
    path = file_with_config(tmp_path / "absurd.npz", edit)
    peak, error = peak_while_refused(lambda: load_model(path, max_bytes=10**8))
    assert peak < 2**20
    assert re.search(f"load_model: .*absurd\\.npz: its architecture {message}|load_model: .*absurd\\.npz: "
                     f"{message}", str(error)), str(error)
    spec = json.dumps({"class_name": "Sequential",
                       "config": json.loads(str(np.load(path)["__config__"]))["model"]})
    peak, error = peak_while_refused(lambda: model_from_json(spec, max_bytes=10**8))
    assert peak < 2**20 and str(error).startswith("model_from_json: the JSON: ")


def test_max_bytes_lets_a_trusted_larger_model_load(tmp_path):
    path = file_with_config(tmp_path / "m.npz", absurd(-1, "units", 1000))
    with pytest.raises(ModelFileError, match="max_bytes=10,000"):
        load_model(path, max_bytes=10_000)
    # allowed, it is built, and then its file is found not to hold the weights of such a model
    with pytest.raises(ModelFileError, match=r"dense/kernel in .*m\.npz declares the shape \(27, 4\); "
                                             r"expected \(27, 1000\)"):
        load_model(path, max_bytes=10**6)
    with pytest.raises(ValueError, match=r"load_model: max_bytes must be an integer >= 1; got True"):
        load_model(path, max_bytes=True)


def layer_edit(key, value, layer=-1):
    return absurd(layer, key, value)


def delete(*keys):
    def edit(config):
        node = config
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]
    return edit


def replace(*keys, value):
    def edit(config):
        node = config
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return edit


@pytest.mark.parametrize("edit,message", [
    (lambda c: "[" * 100_000, "holds a config nested too deeply"),
    (lambda c: '{"format": ', "holds a config that is not valid JSON"),
    (lambda c: c["model"].update(layers=[{"class_name": "Dense", "config": {"units": float("nan")}}]),
     "not valid JSON: NaN is not JSON"),
    (lambda c: "[]", "is not a minicnn model file of format"),
    (delete("model", "layers"), "the architecture in its config is malformed: the key 'layers' is missing"),
    (delete("model", "layers", 0, "config"), "the key 'config' is missing"),
    (replace("model", "layers", value={"a": 1}), r"expected a list; got \{'a': 1\}"),
    (replace("model", "layers", 0, value=7), r"layer entries must be \{\"class_name\": .*; got 7"),
    (replace("model", "layers", 0, "class_name", value="Conv3D"), "holds a layer of unknown class 'Conv3D'"),
    (replace("model", "layers", 0, "class_name", value=["Dense"]), "layer class names must be strings"),
    (layer_edit("units", -4), "Dense: units must be an integer >= 1; got -4"),
    (layer_edit("units", True), "Dense: units must be an integer >= 1; got True"),
    (layer_edit("units", "4"), "Dense: units must be an integer >= 1; got '4'"),
    (layer_edit("bogus", 1), "unexpected keyword argument 'bogus' .*TypeError"),
    (layer_edit("activation", "swish2"), "swish2"),
    (replace("model", "input_shape", value=[6, True, 2]), r"input_shape must be a list of positive ints"),
    (replace("model", "input_shape", value=[6, -6, 2]), r"input_shape must be a list of positive ints"),
    (replace("model", "input_shape", value=[6, 6]), r"expected inputs of shape \(H, W, C\)"),
    (replace("rng", value=[1]), r"the random generators in its config is malformed: expected a dict"),
    (replace("rng", value={"flatten": {}}), r"'flatten' names no layer with a random generator"),
    (replace("compile", value={"optimizer": "adam"}), "the compile settings in its config is malformed"),
    (replace("compile", value={"optimizer": {"class_name": "Adam", "config": {}, "iterations": True},
                               "loss": None, "metrics": [], "implementation": None}),
     "the optimizer's iterations must be an integer >= 0; got True"),
])
def test_malformed_configs_are_model_file_errors_naming_the_file(tmp_path, edit, message):
    path = file_with_config(tmp_path / "bad.npz", edit)
    with pytest.raises(ModelFileError, match=r"load_model: .*bad\.npz.*" + message):
        load_model(path)


_JUNK = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                  st.text(max_size=5), st.lists(st.integers(-3, 3), max_size=3),
                  st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                  st.just("[" * 5000))


def _paths(node, path=()):
    """Every key path into the JSON ``node``."""
    yield path
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield from _paths(value, (*path, key))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_damaged_config_loads_or_is_a_model_file_error_naming_the_file(tmp_path, data):
    good = tmp_path / "good.npz"
    if not good.exists():
        model = tiny_model()
        model.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(*tiny_data(), epochs=1, verbose=0)
        model.save(good)
    arrays = dict(np.load(good))
    config = json.loads(str(arrays["__config__"]))
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from([p for p in _paths(config) if p]))
        parent = config
        for key in where[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()):
            parent[where[-1]] = data.draw(_JUNK)
        else:
            del parent[where[-1]]
    arrays["__config__"] = np.array(json.dumps(config))
    np.savez(tmp_path / "fuzzed.npz", **arrays)
    try:
        load_model(tmp_path / "fuzzed.npz")
    except ModelFileError as error:
        assert f"{tmp_path / 'fuzzed.npz'}" in str(error)
    try:
        model_from_json(json.dumps({"class_name": "Sequential", "config": config.get("model")}))
    except ModelFileError as error:
        assert str(error).startswith("model_from_json")


def test_load_weights_checks_each_header_against_the_model_before_reading(tmp_path):
    model = tiny_model()
    model.save_weights(tmp_path / "m.weights.npz")
    members = members_of(tmp_path / "m.weights.npz")
    head = npy_header((2**27,))
    members["dense/kernel.npy"] = (deflated_zeros(head, 2**29), len(head) + 2**29, 0)
    write_zip(tmp_path / "bomb.weights.npz", members)
    before = model.get_weights()
    peak, error = peak_while_refused(lambda: model.load_weights(tmp_path / "bomb.weights.npz"))
    assert peak < 2**20
    assert re.search(r"load_weights: dense/kernel in .*bomb\.weights\.npz declares the shape \(134217728,\); "
                     r"expected \(27, 4\)", str(error))
    (tmp_path / "junk.weights.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match=r"load_weights: .*junk\.weights\.npz is not a readable weights"):
        model.load_weights(tmp_path / "junk.weights.npz")
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
