"""A typical Keras script (3-channel 32x32 images, 5 classes, callbacks) runs on minicnn unchanged
except for its imports.

The script below is run twice when TensorFlow is installed: once after Keras' imports (to prove it
is a plain Keras script) and once after minicnn's. Only the import lines differ.
"""

import numpy as np
import pytest

SCRIPT = """
num_classes = 5
rng = np.random.default_rng(0)
x_train = rng.random((160, 32, 32, 3)).astype("float32")
y_train = rng.integers(0, num_classes, size=(160, 1))       # (N, 1), as keras.datasets.cifar10 gives
x_test = rng.random((40, 32, 32, 3)).astype("float32")
y_test = rng.integers(0, num_classes, size=(40, 1))

model = Sequential([
    Input(shape=(32, 32, 3)),
    Conv2D(16, (3, 3), padding="same", activation="relu", kernel_initializer="he_normal"),
    BatchNormalization(),
    MaxPooling2D((2, 2)),
    Conv2D(32, (3, 3), padding="same", use_bias=False),
    BatchNormalization(),
    Activation("relu"),
    MaxPooling2D(pool_size=(2, 2)),
    Dropout(0.25),
    GlobalAveragePooling2D(),
    Dense(32, activation="relu"),
    Dropout(0.5),
    Dense(num_classes, activation="softmax"),
])
model.summary(print_fn=lambda line: None)
model.compile(optimizer=Adam(learning_rate=1e-3), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
early_stopping = EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
reduce_lr = ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1)
history = model.fit(x_train, y_train, batch_size=32, epochs=4, validation_split=0.2,
                    callbacks=[early_stopping, reduce_lr], verbose=0)
test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
scores = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
probabilities = model.predict(x_test, verbose=0)
predicted = np.argmax(probabilities, axis=1)
first_conv = model.get_layer(index=0).get_weights()[0]
"""

MINICNN_IMPORTS = """
import numpy as np
from minicnn import Sequential
from minicnn.callbacks import EarlyStopping, ReduceLROnPlateau
from minicnn.layers import (Activation, BatchNormalization, Conv2D, Dense, Dropout, GlobalAveragePooling2D,
                            Input, MaxPooling2D)
from minicnn.optimizers import Adam
"""

KERAS_IMPORTS = """
import numpy as np
from keras import Sequential
from keras.callbacks import EarlyStopping, ReduceLROnPlateau
from keras.layers import (Activation, BatchNormalization, Conv2D, Dense, Dropout, GlobalAveragePooling2D,
                          Input, MaxPooling2D)
from keras.optimizers import Adam
"""


def run(imports: str) -> dict:
    namespace: dict = {}
    exec(imports + SCRIPT, namespace)  # noqa: S102 - the script is this file's own text
    return namespace


def check(ns: dict) -> None:
    history = ns["history"].history
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"} <= set(history)
    assert 2 <= len(history["loss"]) <= 4
    assert ns["probabilities"].shape == (40, 5)
    np.testing.assert_allclose(ns["probabilities"].sum(axis=1), 1.0, rtol=1e-5)
    assert ns["scores"] == pytest.approx({"loss": ns["test_loss"], "accuracy": ns["test_accuracy"]})
    assert ns["test_accuracy"] == pytest.approx(np.mean(ns["predicted"] == ns["y_test"][:, 0]))
    assert ns["first_conv"].shape == (3, 3, 3, 16)
    assert ns["model"].count_params() == 448 + 64 + 4608 + 128 + 1056 + 165  # Keras counts BN's statistics


def test_the_keras_habits_script_runs_on_minicnn():
    check(run(MINICNN_IMPORTS))


def test_the_same_script_is_a_keras_script():
    pytest.importorskip("tensorflow", reason='needs pip install -e ".[keras]"')
    check(run(KERAS_IMPORTS))
