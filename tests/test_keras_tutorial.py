"""keras.io's "Simple MNIST convnet" runs under ``import minicnn as keras``, its import lines changed.

:data:`PUBLISHED` is the tutorial's script as keras.io publishes it (keras-team/keras-io,
``examples/vision/mnist_convnet.py``, the Keras 3 version: ``import keras``; the older stored
version differs only in ``from tensorflow import keras`` and the "Accelerator: GPU" line).
The test changes, on top of the import lines a user changes, only what is marked in
:data:`TEST_ONLY`: two of fifteen epochs, on a slice of the data, so that it runs in seconds;
:func:`test_only_the_imports_and_the_marked_lines_differ` holds the run script to that.
It runs on real MNIST (``$MINICNN_DATA/mnist/`` or the cache; never downloaded here), else skips,
and runs the same script under Keras where TensorFlow is installed.
"""

import numpy as np
import pytest

import minicnn
from minicnn.datasets import DatasetError

PUBLISHED = '''"""
Title: Simple MNIST convnet
Author: [fchollet](https://twitter.com/fchollet)
Date created: 2015/06/19
Last modified: 2020/04/21
Description: A simple convnet that achieves ~99% test accuracy on MNIST.
Accelerator: GPU
"""

"""
## Setup
"""

import numpy as np
import keras
from keras import layers

"""
## Prepare the data
"""

# Model / data parameters
num_classes = 10
input_shape = (28, 28, 1)

# Load the data and split it between train and test sets
(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()

# Scale images to the [0, 1] range
x_train = x_train.astype("float32") / 255
x_test = x_test.astype("float32") / 255
# Make sure images have shape (28, 28, 1)
x_train = np.expand_dims(x_train, -1)
x_test = np.expand_dims(x_test, -1)
print("x_train shape:", x_train.shape)
print(x_train.shape[0], "train samples")
print(x_test.shape[0], "test samples")


# convert class vectors to binary class matrices
y_train = keras.utils.to_categorical(y_train, num_classes)
y_test = keras.utils.to_categorical(y_test, num_classes)

"""
## Build the model
"""

model = keras.Sequential(
    [
        keras.Input(shape=input_shape),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(num_classes, activation="softmax"),
    ]
)

model.summary()

"""
## Train the model
"""

batch_size = 128
epochs = 15

model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_split=0.1)

"""
## Evaluate the trained model
"""

score = model.evaluate(x_test, y_test, verbose=0)
print("Test loss:", score[0])
print("Test accuracy:", score[1])
'''

MINICNN_IMPORTS = {  # the change a Keras user makes: published line -> minicnn's
    "import keras": "import minicnn as keras",
    "from keras import layers": "from minicnn import layers",
}

TRAIN_SAMPLES, TEST_SAMPLES = 6000, 2000
TEST_ONLY = {  # marked test-only changes, published line -> the line run: fewer epochs on a slice
    "epochs = 15": "epochs = 2",
    "(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()":
        "(x_train, y_train), (x_test, y_test) = sliced(keras.datasets.mnist.load_data())",
}


def sliced(data):
    """The first TRAIN_SAMPLES training and TEST_SAMPLES test samples of ``load_data()``'s result."""
    (x_train, y_train), (x_test, y_test) = data
    return (x_train[:TRAIN_SAMPLES], y_train[:TRAIN_SAMPLES]), (x_test[:TEST_SAMPLES], y_test[:TEST_SAMPLES])


def changed(script: str, changes: dict[str, str]) -> str:
    """``script`` with every line that is a key of ``changes`` replaced by its value."""
    lines = script.split("\n")
    for old in changes:
        assert lines.count(old) == 1, f"the published script has no single line {old!r}"
    return "\n".join(changes.get(line, line) for line in lines)


MINICNN_SCRIPT = changed(PUBLISHED, MINICNN_IMPORTS | TEST_ONLY)
KERAS_SCRIPT = changed(PUBLISHED, TEST_ONLY)


def test_only_the_imports_and_the_marked_lines_differ():
    published, run = PUBLISHED.split("\n"), MINICNN_SCRIPT.split("\n")
    assert len(run) == len(published)
    differing = {(old, new) for old, new in zip(published, run, strict=True) if old != new}
    assert differing == set(MINICNN_IMPORTS.items()) | set(TEST_ONLY.items())
    assert KERAS_SCRIPT.count("import keras\nfrom keras import layers\n") == 1


@pytest.fixture
def mnist_here():
    """Skip unless real MNIST is at hand ($MINICNN_DATA/mnist/ or the cache): the test downloads nothing."""
    try:
        minicnn.datasets.load_mnist(download=False)
    except DatasetError as exc:
        pytest.skip(f"real MNIST is not here (set MINICNN_DATA to a folder with mnist/ in it): {exc}")


def run(script: str) -> dict:
    namespace = {"__name__": "__main__", "sliced": sliced}
    exec(compile(script, "mnist_convnet.py", "exec"), namespace)  # noqa: S102 - the published tutorial
    return namespace


def check(namespace: dict, printed: str) -> float:
    """The run's test accuracy, after checking what the script printed and computed."""
    assert f"x_train shape: ({TRAIN_SAMPLES}, 28, 28, 1)" in printed
    assert f"{TEST_SAMPLES} test samples" in printed
    assert "Total params: 34,826" in printed  # the published summary's count
    loss, accuracy = namespace["score"]
    assert f"Test accuracy: {accuracy}" in printed
    predicted = namespace["model"].predict(namespace["x_test"], verbose=0).argmax(axis=1)
    assert accuracy == pytest.approx(np.mean(predicted == namespace["y_test"].argmax(axis=1)), abs=1e-6)
    assert 0 < loss < 1.0
    return accuracy


def test_the_tutorial_runs_under_minicnn(mnist_here, capsys):
    minicnn.set_random_seed(0)
    namespace = run(MINICNN_SCRIPT)
    accuracy = check(namespace, capsys.readouterr().out)
    assert isinstance(namespace["model"], minicnn.Sequential)
    assert accuracy > 0.85  # chance is 0.1; 2 epochs on 5,400 images


def test_the_same_script_runs_under_keras(mnist_here, capsys, monkeypatch):
    """The script is a plain Keras script. Keras reads the same files, through minicnn's loader:
    its own would download them."""
    pytest.importorskip("tensorflow", reason="TensorFlow is not installed (the keras extra)")
    keras = pytest.importorskip("keras")
    monkeypatch.setattr(keras.datasets.mnist, "load_data", minicnn.datasets.mnist.load_data)
    keras.utils.set_random_seed(0)
    namespace = run(KERAS_SCRIPT)
    accuracy = check(namespace, capsys.readouterr().out)
    assert isinstance(namespace["model"], keras.Sequential)
    assert accuracy > 0.85
