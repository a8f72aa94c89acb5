"""The monitoring callbacks (:mod:`minicnn.callbacks`): EarlyStopping and ReduceLROnPlateau stop and
reduce at the same epochs as Keras' callbacks.

Skipped without TensorFlow: ``pip install -e ".[keras]"``.
"""

import os

import numpy as np
import pytest

from minicnn import SGD, Dense, Input, Sequential
from minicnn.callbacks import EarlyStopping, ReduceLROnPlateau

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: no C++ start-up chatter
tf = pytest.importorskip("tensorflow", reason='the Keras parity tests need pip install -e ".[keras]"')
keras = pytest.importorskip("keras", reason='the Keras parity tests need pip install -e ".[keras]"')


def keras_stub_model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(1.0), loss="mse", metrics=["accuracy"])
    return model


def drive_both(ours, theirs, values, minicnn_model):
    """Feed the same val_loss values to both callbacks; the epochs where each set stop_training."""
    keras_model = keras_stub_model()
    theirs.set_model(keras_model)
    ours.set_model(minicnn_model)
    ours.on_train_begin({})
    theirs.on_train_begin({})
    stops, rates = ([], []), ([], [])
    for epoch, value in enumerate(values):
        for callback, model, stop, rate in ((ours, minicnn_model, stops[0], rates[0]),
                                            (theirs, keras_model, stops[1], rates[1])):
            callback.on_epoch_end(epoch, {"val_loss": value})
            if model.stop_training:
                stop.append(epoch)
                model.stop_training = False
            rate.append(float(np.asarray(model.optimizer.learning_rate)))
    return stops, rates


@pytest.mark.parametrize("kwargs", [{"patience": 0}, {"patience": 2}, {"patience": 1, "min_delta": 0.05},
                                    {"patience": 2, "baseline": 0.3}, {"patience": 1, "start_from_epoch": 4}])
def test_early_stopping_stops_where_keras_stops(kwargs):
    values = np.random.default_rng(0).uniform(0.2, 1.0, 30).tolist()
    model = Sequential([Input((2,)), Dense(1, seed=0)])
    model.optimizer = SGD(1.0)
    stops = drive_both(EarlyStopping(**kwargs), keras.callbacks.EarlyStopping(**kwargs), values, model)[0]
    ours, theirs = stops
    assert ours == theirs and ours  # each run stops at least once, at the same epochs


def test_reduce_lr_on_plateau_reduces_where_keras_reduces():
    values = np.random.default_rng(1).uniform(0.2, 1.0, 40).tolist()
    kwargs = {"factor": 0.5, "patience": 2, "cooldown": 2, "min_lr": 0.05, "min_delta": 0.01}
    model = Sequential([Input((2,)), Dense(1, seed=0)])
    model.optimizer = SGD(1.0)
    theirs_callback = keras.callbacks.ReduceLROnPlateau(**kwargs)
    rates = drive_both(ReduceLROnPlateau(**kwargs), theirs_callback, values, model)[1]
    ours, theirs = rates
    assert ours == pytest.approx(theirs, rel=1e-6) and min(ours) == 0.05
