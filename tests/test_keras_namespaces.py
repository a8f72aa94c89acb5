"""``import minicnn as keras``: Keras' namespaces hold minicnn's own objects under Keras' names, ``dir()``
lists only what works, and a Keras name minicnn lacks raises an error saying what it offers instead.

Where TensorFlow is installed, the names are checked against Keras itself: every Keras name minicnn
claims to have, and every one it explains as missing, is a name Keras has.
"""

import doctest
import gzip
import importlib
import inspect
import os
import traceback
from unittest import mock

import numpy as np
import pytest

import minicnn
import minicnn as keras
from minicnn import datasets, layers, losses, metrics, optimizers, regularizers, schedules, seeding
from minicnn.datasets import DatasetError
from minicnn.layers import initializers as layer_initializers
from minicnn.missing import MISSING, MissingFeatureError

KERAS_NAMES = {  # Keras' path -> the names minicnn has there, as Keras names them
    "keras": ["Input", "Layer", "Loss", "Metric", "Optimizer", "Regularizer", "Sequential", "activations",
              "callbacks", "datasets", "initializers", "layers", "losses", "metrics", "models", "optimizers",
              "regularizers", "utils"],
    "keras.activations": ["linear", "relu", "sigmoid", "softmax", "tanh"],
    "keras.callbacks": ["CSVLogger", "Callback", "CallbackList", "EarlyStopping", "History",
                        "LearningRateScheduler", "ModelCheckpoint", "ReduceLROnPlateau", "TerminateOnNaN"],
    "keras.datasets": ["cifar10", "fashion_mnist", "mnist"],
    "keras.initializers": ["glorot_uniform", "he_normal", "he_uniform", "zeros"],
    "keras.layers": ["Activation", "AveragePooling2D", "AvgPool2D", "BatchNormalization", "Conv2D", "Dense",
                     "Dropout", "Flatten", "GlobalAveragePooling2D", "GlobalAvgPool2D", "Input", "Layer",
                     "LeakyReLU", "MaxPool2D", "MaxPooling2D", "ReLU", "Softmax"],
    "keras.losses": ["CategoricalCrossentropy", "Loss", "SparseCategoricalCrossentropy", "get"],
    "keras.metrics": ["CategoricalAccuracy", "Metric", "SparseCategoricalAccuracy",
                      "SparseTopKCategoricalAccuracy", "TopKCategoricalAccuracy", "get", "serialize"],
    "keras.models": ["Sequential", "load_model", "model_from_json"],
    "keras.optimizers": ["Adam", "Optimizer", "RMSprop", "SGD", "get", "schedules"],
    "keras.regularizers": ["L1", "L1L2", "L2", "Regularizer", "get", "l1", "l1_l2", "l2", "serialize"],
    "keras.optimizers.schedules": ["CosineDecay", "ExponentialDecay", "LearningRateSchedule", "deserialize",
                                   "serialize"],
    "keras.utils": ["set_random_seed", "to_categorical"],
}

KERAS_PATH_OF = {"minicnn": "keras", "minicnn.schedules": "keras.optimizers.schedules"}
"""The Keras path of each namespace in MISSING whose name is not minicnn's with ``keras`` for ``minicnn``."""


def keras_path(module: str) -> str:
    return KERAS_PATH_OF.get(module, module.replace("minicnn", "keras", 1))


def resolve(path: str, root=keras):
    """``keras.optimizers.schedules`` -> that object under ``root`` (minicnn, or Keras itself)."""
    obj = root
    for part in path.split(".")[1:]:
        obj = getattr(obj, part)
    return obj


NAMESPACES = sorted(KERAS_NAMES)
MISSING_NAMES = [pytest.param(module, name, id=f"{keras_path(module)}.{name}")
                 for module, names in MISSING.items() for name in names]


@pytest.mark.parametrize("path", NAMESPACES)
def test_keras_names_are_there(path):
    namespace = resolve(path)
    for name in KERAS_NAMES[path]:
        assert hasattr(namespace, name), f"{path}.{name}"
        assert name in dir(namespace), f"{path}.{name}"


def test_each_namespace_holds_minicnn_own_objects():
    """One implementation each: the Keras path gives the object minicnn defines, not a copy."""
    assert keras.utils.to_categorical is losses.to_categorical
    assert keras.utils.set_random_seed is seeding.set_random_seed is keras.set_random_seed
    assert keras.optimizers.schedules is schedules
    assert keras.optimizers.schedules.ExponentialDecay is schedules.ExponentialDecay
    assert keras.initializers.he_normal is layer_initializers.he_normal
    assert keras.models.Sequential is keras.Sequential
    assert keras.models.load_model is keras.load_model
    assert keras.models.model_from_json is keras.model_from_json
    assert keras.Input is layers.Input and keras.layers.Conv2D is minicnn.Conv2D
    assert (keras.Loss, keras.Metric, keras.Optimizer) == (losses.Loss, metrics.Metric, optimizers.Optimizer)
    assert keras.Regularizer is regularizers.Regularizer and keras.regularizers.l2 is regularizers.L2
    assert keras.datasets.mnist.load_data.__module__ == "minicnn.datasets.mnist"
    assert keras.datasets.fashion_mnist.load_data.__module__ == "minicnn.datasets.fashion_mnist"
    assert keras.datasets.cifar10.load_data.__module__ == "minicnn.datasets.cifar10"


@pytest.mark.parametrize("module", ["minicnn.utils", "minicnn.initializers", "minicnn.regularizers",
                                    "minicnn.datasets.fashion_mnist",
                                    "minicnn.models",
                                    "minicnn.optimizers.schedules", "minicnn.datasets.mnist",
                                    "minicnn.datasets.cifar10"])
def test_namespaces_import_as_modules(module):
    """``from keras.utils import to_categorical`` becomes ``from minicnn.utils import ...``: real modules."""
    assert importlib.import_module(module) is resolve(module, minicnn)


def test_schedules_import_from_the_optimizers_path():
    from minicnn.optimizers.schedules import ExponentialDecay

    assert ExponentialDecay is schedules.ExponentialDecay


NAMESPACE_MODULES = sorted({*MISSING, "minicnn.models", "minicnn.datasets.mnist", "minicnn.datasets.cifar10",
                            "minicnn.datasets.fashion_mnist"})


@pytest.mark.parametrize("module", NAMESPACE_MODULES)
def test_dir_lists_only_what_works(module):
    namespace = resolve(module, minicnn)
    listed = dir(namespace)
    for name in listed:
        getattr(namespace, name)  # raises nothing
    assert not set(MISSING.get(module, ())) & set(listed)
    assert set(getattr(namespace, "__all__", ())) <= set(listed)
    inspect.getmembers(namespace)  # dir() then getattr(), as help() and IDEs do


@pytest.mark.parametrize("module", sorted(MISSING))
def test_the_missing_names_are_really_missing(module):
    """An entry for a name the module has would never be raised: this fails when minicnn gains it."""
    namespace = resolve(module, minicnn)
    assert not set(MISSING[module]) & set(vars(namespace))


@pytest.mark.parametrize(("module", "name"), MISSING_NAMES)
def test_a_missing_keras_name_says_what_is_missing(module, name):
    namespace = resolve(module, minicnn)
    with pytest.raises(MissingFeatureError) as raised:
        getattr(namespace, name)
    message = str(raised.value)
    assert message.startswith("minicnn ") and "has no attribute" not in message
    assert f"{keras_path(module)}.{name}" in message
    assert raised.value.name == name
    assert not hasattr(namespace, name)
    assert getattr(namespace, name, None) is None


@pytest.mark.parametrize(("path", "offered"), [
    ("keras.Model", "minicnn.Sequential([...])"),
    ("keras.ops", "NumPy"),
    ("keras.applications", "mnist_cnn()"),
    ("keras.preprocessing", "prepare_images"),
    ("keras.regularizers.OrthogonalRegularizer", "L2"),
    ("keras.backend", "implementation="),
    ("keras.mixed_precision", "float32"),
    ("keras.utils.plot_model", "model.summary()"),
    ("keras.datasets.cifar100", "cifar10"),
    ("keras.optimizers.AdamW", "Adam"),
    ("keras.optimizers.schedules.PolynomialDecay", "ExponentialDecay"),
    ("keras.initializers.HeNormal", "kernel_initializer='he_normal'"),
    ("keras.initializers.Orthogonal", "he_normal"),
    ("keras.layers.LSTM", "Conv2D"),
    ("keras.layers.Concatenate", "Sequential"),
    ("keras.layers.Rescaling", "prepare_images"),
    ("keras.losses.MeanSquaredError", "SparseCategoricalCrossentropy"),
    ("keras.losses.categorical_crossentropy", "loss='categorical_crossentropy'"),
    ("keras.metrics.AUC", "sklearn.metrics"),
    ("keras.metrics.Accuracy", "CategoricalAccuracy"),
    ("keras.callbacks.LambdaCallback", "subclass minicnn.callbacks.Callback"),
    ("keras.export", "format='onnx'"),
    ("keras.utils.register_keras_serializable", "custom_objects={'MyLayer': MyLayer}"),
])
def test_the_message_names_what_minicnn_offers_instead(path, offered):
    parent, name = path.rsplit(".", 1)
    with pytest.raises(MissingFeatureError, match=f"^minicnn [^:]*{name}") as raised:
        getattr(resolve(parent), name)
    assert offered in str(raised.value)


def test_the_traceback_shows_the_explanation_not_the_bare_attribute_error():
    with pytest.raises(AttributeError) as raised:
        keras.Model  # noqa: B018
    shown = "".join(traceback.format_exception_only(raised.type, raised.value))
    assert shown.startswith("minicnn.missing.MissingFeatureError: "
                            "minicnn has no functional Model (keras.Model)")
    assert "has no attribute" not in shown


def test_other_unknown_names_are_plain_attribute_errors():
    with pytest.raises(AttributeError, match="^module 'minicnn' has no attribute 'Modle'$") as raised:
        keras.Modle  # noqa: B018
    assert type(raised.value) is AttributeError
    with pytest.raises(AttributeError, match="^module 'minicnn.utils' has no attribute 'nothing'$"):
        keras.utils.nothing  # noqa: B018


def test_python_tools_treat_a_missing_name_as_absent():
    """Why MissingFeatureError is an AttributeError: probing, mocking and doctest keep working."""
    assert not hasattr(keras, "ops") and getattr(keras, "Model", "absent") == "absent"
    with mock.patch.object(keras.utils, "to_categorical") as patched:  # mock looks names up with getattr
        keras.utils.to_categorical([0])
    patched.assert_called_once()
    assert isinstance(mock.create_autospec(keras.utils).to_categorical, mock.MagicMock)
    doctest.DocTestFinder().find(minicnn)
    with pytest.raises(ImportError, match="cannot import name 'Model'"):
        from minicnn import Model  # noqa: F401  (Python's import machinery replaces the message)


def test_to_categorical_takes_keras_column_labels():
    """keras.utils.to_categorical drops a last axis of size 1, as CIFAR-10's labels (N, 1) have."""
    column = np.array([[2], [0], [1]], np.uint8)
    np.testing.assert_array_equal(keras.utils.to_categorical(column, 3), [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    with pytest.raises(ValueError, match=r"\(N,\) or \(N, 1\); got \(1, 2\)"):
        keras.utils.to_categorical(np.array([[0, 1]]), 3)


def test_mnist_load_data_returns_keras_shapes_and_dtypes():
    """As Keras documents: uint8 images (N, 28, 28), uint8 labels (N,), 60,000 and 10,000."""
    try:
        (x_ref, y_ref), _ = datasets.load_mnist(download=False)
    except DatasetError as exc:
        pytest.skip(f"real MNIST is not here (set MINICNN_DATA): {exc}")
    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    assert (x_train.shape, x_train.dtype, y_train.shape, y_train.dtype) == ((60000, 28, 28), np.uint8,
                                                                         (60000,), np.uint8)
    assert (x_test.shape, x_test.dtype, y_test.shape, y_test.dtype) == ((10000, 28, 28), np.uint8,
                                                                     (10000,), np.uint8)
    np.testing.assert_array_equal(x_train, x_ref)
    np.testing.assert_array_equal(y_train, y_ref)


@pytest.fixture
def no_download(monkeypatch):
    """Fail any download attempt: these tests read local files only."""
    def refuse(*args, **kwargs):
        raise AssertionError("the test tried to download")
    monkeypatch.setattr("urllib.request.urlopen", refuse)


def test_cifar10_load_data_gives_keras_column_labels(monkeypatch):
    """Keras' cifar10.load_data() labels are uint8 (N, 1); minicnn's load_cifar10 gives (N,)."""
    rng = np.random.default_rng(0)
    x_train, x_test = (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8) for n in (5, 3))
    y_train, y_test = (rng.integers(0, 10, n, dtype=np.uint8) for n in (5, 3))
    monkeypatch.setattr(datasets.cifar10, "load_cifar10", lambda: ((x_train, y_train), (x_test, y_test)))
    (xa, ya), (xb, yb) = keras.datasets.cifar10.load_data()
    assert xa is x_train and xb is x_test
    assert (ya.shape, ya.dtype, yb.shape, yb.dtype) == ((5, 1), np.uint8, (3, 1), np.uint8)
    np.testing.assert_array_equal(ya[:, 0], y_train)
    np.testing.assert_array_equal(yb[:, 0], y_test)


@pytest.mark.parametrize(("path", "folder", "files"), [
    ("keras.datasets.fashion_mnist", "fashion-mnist", datasets.FASHION_MNIST.files),
    ("keras.datasets.cifar10", "cifar10", datasets.CIFAR10.files),
])
def test_load_data_reads_minicnn_data_and_verifies_it(path, folder, files, tmp_path, monkeypatch,
                                                      no_download):
    """Found in $MINICNN_DATA/<folder>/ as minicnn's loaders find them, and checked against the published
    SHA-256: files that are not the dataset are an error naming them, not data."""
    (tmp_path / folder).mkdir()
    for name in files:
        (tmp_path / folder / name).write_bytes(gzip.compress(b"not the dataset"))
    monkeypatch.setenv("MINICNN_DATA", str(tmp_path))
    with pytest.raises(DatasetError, match=f"{os.sep}{folder}{os.sep}.*checksum mismatch"):
        resolve(path).load_data()


@pytest.fixture
def real_keras():
    pytest.importorskip("tensorflow", reason="TensorFlow is not installed (the keras extra)")
    return pytest.importorskip("keras")


@pytest.mark.parametrize("path", NAMESPACES)
def test_the_names_minicnn_has_are_keras_names(path, real_keras):
    namespace = resolve(path, real_keras)
    assert [name for name in KERAS_NAMES[path] if not hasattr(namespace, name)] == []


@pytest.mark.parametrize("module", sorted(MISSING))
def test_the_names_explained_as_missing_are_keras_names(module, real_keras):
    namespace = resolve(keras_path(module), real_keras)
    assert [name for name in MISSING[module] if not hasattr(namespace, name)] == []
