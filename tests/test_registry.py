"""One registry per kind: explicit entries, names resolved by compile and by load_model, clear errors."""

import json

import numpy as np
import pytest

from minicnn import Adam, Dense, Input, Sequential, load_model, losses, metrics, optimizers, schedules
from minicnn.layers import Conv2D, initializers
from minicnn.registry import INITIALIZERS, LAYERS, LOSSES, METRICS, OPTIMIZERS, SCHEDULES, Registry


def test_a_registry_holds_what_is_registered_under_its_name_and_aliases():
    registry = Registry("widget")

    @registry.register("w")
    class Widget:
        pass

    assert registry.get("Widget") is Widget and registry.get("w") is Widget and registry["w"] is Widget
    assert registry.names() == ["w", "Widget"] and registry.objects() == [Widget]
    assert "Widget" in registry and "Gadget" not in registry
    with pytest.raises(ValueError, match="a widget named 'w' is registered already"):
        registry.add("w", object())
    with pytest.raises(ValueError, match=r"^unknown widget 'gadget'; known: w, Widget$"):
        registry.get("gadget")
    with pytest.raises(ValueError, match=r"^unknown widget 3; known: w, Widget$"):
        registry.get(3)


def test_a_subclass_registers_nothing():
    class MyAdam(Adam):
        pass

    class MyLoss(losses.CategoricalCrossentropy):
        pass

    assert "MyAdam" not in OPTIMIZERS and "MyLoss" not in LOSSES
    assert OPTIMIZERS.objects() == [optimizers.SGD, optimizers.RMSprop, optimizers.Adam]
    assert LOSSES.objects() == [losses.CategoricalCrossentropy, losses.SparseCategoricalCrossentropy]


@pytest.mark.parametrize(("get", "name", "message"), [
    (optimizers.get, "adamw", "unknown optimizer 'adamw'; known: Adam, adam, RMSprop, rmsprop, SGD, sgd"),
    (losses.get, "mse", "unknown loss 'mse'; known: categorical_crossentropy, CategoricalCrossentropy, "
                        "sparse_categorical_crossentropy, SparseCategoricalCrossentropy"),
    (metrics.get, "f1", "unknown metric 'f1'; known: acc, accuracy, categorical_accuracy"),
    (SCHEDULES.get, "PiecewiseConstantDecay", "unknown learning-rate schedule 'PiecewiseConstantDecay'; "
                                              "known: CosineDecay, ExponentialDecay"),
])
def test_an_unknown_name_is_an_error_listing_the_known_ones(get, name, message):
    with pytest.raises(ValueError) as caught:
        get(name)
    assert str(caught.value).startswith(message)


def test_names_resolve_as_keras_resolves_them():
    assert type(optimizers.get("adam")) is optimizers.Adam
    assert type(optimizers.get("RMSprop")) is optimizers.RMSprop  # the class name
    assert type(optimizers.get("SGD")) is optimizers.SGD and type(optimizers.get("ADAM")) is optimizers.Adam
    assert type(losses.get("CategoricalCrossentropy")) is losses.CategoricalCrossentropy
    acc = metrics.get("acc")
    assert type(acc) is metrics.CategoricalAccuracy and acc.name == "acc"
    assert type(metrics.get("sparse_top_k_categorical_accuracy")) is metrics.SparseTopKCategoricalAccuracy
    with pytest.raises(TypeError, match=r"optimizer must be a name \(Adam, adam, .*\) or a "
                                        r"minicnn.optimizers.Optimizer; got int"):
        optimizers.get(3)
    with pytest.raises(TypeError, match="loss must be a name"):
        losses.get(None)


def test_initializers_are_found_by_keras_names_and_class_names():
    assert INITIALIZERS["he_normal"] is initializers.he_normal
    assert initializers.from_keras_config({"class_name": "HeNormal", "config": {"seed": None}}, "Dense") == (
        "he_normal")
    assert Conv2D(2, 3, kernel_initializer="GlorotUniform").get_config()["kernel_initializer"] == (
        "glorot_uniform")
    with pytest.raises(ValueError, match="no kernel_initializer 'Orthogonal'; it has glorot_uniform, Glorot"):
        initializers.from_keras_config({"class_name": "Orthogonal"}, "Dense")


def test_every_registered_class_is_the_one_its_module_exports():
    import minicnn

    for name in LAYERS.names():
        assert getattr(minicnn, name) is LAYERS.get(name)
    for cls in METRICS.objects():
        assert getattr(metrics, cls.__name__) is cls
    assert SCHEDULES.objects() == [schedules.ExponentialDecay, schedules.CosineDecay]


def test_files_naming_metrics_by_name_as_older_versions_wrote_them_still_load(tmp_path):
    model = Sequential([Input((3,)), Dense(2, activation="softmax", seed=0)])
    model.compile(Adam(schedules.ExponentialDecay(1e-3, 10, 0.9)), loss="sparse_categorical_crossentropy",
                  metrics=["acc"])
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as data:
        arrays = {key: data[key] for key in data.files}
    config = json.loads(str(arrays["__config__"]))
    assert config["compile"]["optimizer"]["class_name"] == "Adam"  # files name classes by class name
    assert config["compile"]["loss"]["class_name"] == "SparseCategoricalCrossentropy"
    assert config["compile"]["metrics"] == [{"class_name": "CategoricalAccuracy", "config": {"name": "acc"}}]
    config["compile"]["metrics"] = ["acc"]
    arrays["__config__"] = np.array(json.dumps(config))
    np.savez(tmp_path / "old.npz", **arrays)
    loaded = load_model(tmp_path / "old.npz")
    assert [type(m) for m in loaded.metrics] == [metrics.CategoricalAccuracy] and loaded.metrics_names == [
        "loss", "acc"]
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
