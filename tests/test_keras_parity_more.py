"""Keras as the reference for what came after MNIST: the new layers, optimizers, schedules, metrics
and the monitoring callbacks compute what Keras computes.

Layers (BatchNormalization, AveragePooling2D, GlobalAveragePooling2D, Activation, LeakyReLU,
sigmoid, tanh, Conv2D without bias / with other initialisers / unequal kernel sizes and strides)
are checked inside three small models converted with :func:`minicnn.keras_compat.to_keras`,
float32 as in Keras, in both implementations. Bounds (measured values in each test's docstring):

- forward: outputs and loss within 1e-5, as in ``test_keras_parity.py`` (measured <= 1.2e-7);
- gradients (``tf.GradientTape``, BatchNormalization in training mode): relative error <= 1e-4
  (measured <= 2.1e-7);
- one training step (``train_on_batch``): every weight, moving statistics included, within 1e-5
  (measured <= 6e-8);
- optimizers and schedules: see their tests; metrics agree exactly, ties included; EarlyStopping
  and ReduceLROnPlateau stop and reduce at the same epochs as Keras' callbacks.

Skipped without TensorFlow: ``pip install -e ".[keras]"``.
"""

import os

import numpy as np
import pytest
from test_keras_parity import (
    BATCH,
    OUTPUT_TOLERANCE,
    assert_gradients_close,
    batch,
    gradient_names,
    keras_gradients,
    keras_loss,
    layer_configs,
    minicnn_gradients,
)

from minicnn import (
    SGD,
    Activation,
    Adam,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Flatten,
    GlobalAveragePooling2D,
    Input,
    LeakyReLU,
    ReLU,
    RMSprop,
    Sequential,
    schedules,
)
from minicnn import metrics as minicnn_metrics
from minicnn.callbacks import EarlyStopping, ReduceLROnPlateau
from minicnn.keras_compat import from_keras, to_keras

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow", reason='the Keras parity tests need pip install -e ".[keras]"')
keras = pytest.importorskip("keras", reason='the Keras parity tests need pip install -e ".[keras]"')
k_opt = keras.optimizers


def bn_cnn(seed: int = 0) -> Sequential:
    """Conv (no bias, he_normal) -> BN -> ReLU -> average pool, a (3, 2) conv with strides (2, 1), tanh,
    LeakyReLU, global average pooling, sigmoid Dense, softmax as a layer."""
    return Sequential([
        Input((9, 8, 3)),
        Conv2D(4, 3, padding="same", use_bias=False, kernel_initializer="he_normal", seed=seed),
        BatchNormalization(), ReLU(), AveragePooling2D(2),  # -> (4, 4, 4)
        Conv2D(5, (3, 2), strides=(2, 1), padding="same", activation="tanh", seed=seed + 1),  # -> (2, 4, 5)
        LeakyReLU(), GlobalAveragePooling2D(),
        Dense(6, activation="sigmoid", kernel_initializer="he_uniform", seed=seed + 2),
        Dense(3, seed=seed + 3), Activation("softmax"),
    ])


def bn_dense(seed: int = 0) -> Sequential:
    """BatchNormalization on vectors, with other momentum and epsilon, then sigmoid as a layer.

    (The Dense before BN has an activation: with batch statistics BN removes any constant shift, so a
    bias right before it has a zero gradient, and comparing round-off noise says nothing.)"""
    return Sequential([Input((5,)), Dense(8, activation="tanh", seed=seed),
                       BatchNormalization(momentum=0.9, epsilon=1e-5), Activation("sigmoid"),
                       Dense(4, activation="softmax", seed=seed + 1)])


def strided_avgpool(seed: int = 0) -> Sequential:
    """A (2, 3) kernel with strides (3, 2), sigmoid, then overlapping (2, 1) average pools, strides (1, 2)."""
    return Sequential([
        Input((10, 9, 2)),
        Conv2D(3, (2, 3), strides=(3, 2), activation="sigmoid", seed=seed),  # -> (3, 4, 3)
        AveragePooling2D((2, 1), strides=(1, 2)),  # -> (2, 2, 3)
        LeakyReLU(0.05), Flatten(), Dense(3, activation="softmax", seed=seed + 1),
    ])


ARCHITECTURES = {"bn_cnn": bn_cnn, "bn_dense": bn_dense, "strided_avgpool": strided_avgpool}


def randomized(model: Sequential, seed: int = 0) -> Sequential:
    """Random biases, BN scales/shifts and moving statistics (variances > 0), so mistakes show."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, BatchNormalization):
            c = layer.params["gamma"].shape
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.3, c), rng.normal(0, 0.5, c),
                               rng.uniform(0.5, 2.0, c)])
        elif "bias" in layer.params:
            layer.params["bias"] = rng.normal(0, 0.1, layer.params["bias"].shape).astype(np.float32)
    return model


# ---------------------------------------------------------------------------------- conversion


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_new_layers_convert_to_keras_and_back(arch):
    model = randomized(ARCHITECTURES[arch]())
    keras_model = to_keras(model)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert [type(layer).__name__ for layer in keras_model.layers] == kinds
    assert [tuple(layer.output.shape[1:]) for layer in keras_model.layers] == [
        layer.output_shape for layer in model.layers]
    assert keras_model.count_params() == model.count_params()  # both count BN's moving statistics
    back = from_keras(keras_model)
    assert layer_configs(back) == layer_configs(model)
    for ours, theirs in zip(model.get_weights(), back.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_keras_batchnorm_defaults_and_leaky_relu_slope_are_keras_3s():
    keras_bn, keras_leaky = keras.layers.BatchNormalization(), keras.layers.LeakyReLU()
    ours = BatchNormalization()
    assert (ours.momentum, ours.epsilon) == (keras_bn.momentum, keras_bn.epsilon)
    assert LeakyReLU().negative_slope == pytest.approx(keras_leaky.negative_slope)


# ---------------------------------------------------------------------------------- forward


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_inference_matches_keras(arch, implementation):
    """Inference: BN with the moving statistics. Measured: outputs <= 9e-8, loss <= 1.2e-7."""
    model = randomized(ARCHITECTURES[arch]())
    x, y = batch(model)
    reference = to_keras(model)(x, training=False).numpy()
    assert np.abs(model.predict(x, batch_size=BATCH) - reference).max() <= OUTPUT_TOLERANCE
    model.compile("adam", loss="categorical_crossentropy")
    assert abs(model.evaluate(x, y, batch_size=BATCH) - float(keras_loss(y, reference))) <= OUTPUT_TOLERANCE


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_training_forward_and_gradients_match_keras(arch, implementation):
    """Training mode (BN on batch statistics): gradients of the loss w.r.t. the input and every
    trainable weight, against tf.GradientTape. Measured: relative error <= 2.1e-7."""
    model = randomized(ARCHITECTURES[arch]())
    keras_model = to_keras(model)
    x, y = batch(model)
    reference = keras_gradients(keras_model, x, y, lambda h: keras_model(h, training=True))
    assert_gradients_close(minicnn_gradients(model, x, y), reference, gradient_names(model))


def test_frozen_batchnorm_runs_in_inference_mode_like_keras(implementation):
    model = randomized(bn_dense())
    model.get_layer("batch_normalization").trainable = False
    keras_model = to_keras(model)
    x, y = batch(model)
    reference = keras_gradients(keras_model, x, y, lambda h: keras_model(h, training=True))
    names = ["x", *(f"{layer.name}/{key}" for layer in model.layers if layer.trainable
                    for key in layer.params)]
    assert_gradients_close(minicnn_gradients(model, x, y), reference, names)


# ---------------------------------------------------------------------------------- one step

OPTIMIZERS = {
    "sgd_nesterov": (lambda: SGD(0.05, momentum=0.9, nesterov=True),
                     lambda: keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True)),
    "rmsprop": (lambda: RMSprop(), lambda: keras.optimizers.RMSprop()),
    "adam_exponential_decay": (
        lambda: Adam(schedules.ExponentialDecay(1e-3, 10, 0.5)),
        lambda: keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(1e-3, 10, 0.5))),
}


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_one_training_step_matches_keras(arch, optimizer):
    """``train_on_batch`` once, from the same weights: every weight and moving statistic after the step.

    Bound 1e-5 absolute (weights are O(1)); measured <= 6e-8. The moving statistics move by
    ``(1 - momentum) * (batch statistic - moving)`` in both.
    """
    model = randomized(ARCHITECTURES[arch]())
    keras_model = to_keras(model)
    ours, theirs = OPTIMIZERS[optimizer]
    model.compile(ours(), loss="categorical_crossentropy")
    keras_model.compile(theirs(), loss="categorical_crossentropy", jit_compile=False)
    x, y = batch(model)
    before = model.get_weights()
    model.train_on_batch(x, y)
    keras_model.train_on_batch(x, y)
    diffs = [np.abs(a - b).max() for a, b in zip(model.get_weights(), keras_model.get_weights(), strict=True)]
    moved = [np.abs(a - b).max() for a, b in zip(model.get_weights(), before, strict=True)]
    assert max(diffs) <= 1e-5, diffs
    assert min(moved) > 100 * max(max(diffs), 1e-9)  # every array, BN statistics included, really moved


# ---------------------------------------------------------------------------------- optimizers


def run_steps(ours, theirs, weights, grads_per_step):
    mine = [w.copy() for w in weights]
    variables = [keras.Variable(w) for w in weights]
    for grads in grads_per_step:
        ours.apply_gradients((f"w{i}", p, g) for i, (p, g) in enumerate(zip(mine, grads, strict=True)))
        theirs.apply_gradients(zip(grads, variables, strict=True))
    return max(np.abs(a - b.numpy()).max() for a, b in zip(mine, variables, strict=True))


OPTIMIZER_STEPS = {
    "rmsprop": (lambda: RMSprop(), lambda: keras.optimizers.RMSprop()),
    "rmsprop_centered_momentum": (lambda: RMSprop(0.01, rho=0.8, momentum=0.5, centered=True),
                                  lambda: k_opt.RMSprop(0.01, rho=0.8, momentum=0.5, centered=True)),
    "sgd_nesterov": (lambda: SGD(0.1, momentum=0.9, nesterov=True),
                     lambda: keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True)),
    "sgd_cosine_decay": (lambda: SGD(schedules.CosineDecay(0.1, 8, alpha=0.1)),
                         lambda: k_opt.SGD(k_opt.schedules.CosineDecay(0.1, 8, alpha=0.1))),
    "adam_exponential_staircase": (
        lambda: Adam(schedules.ExponentialDecay(1e-2, 3, 0.5, staircase=True)),
        lambda: k_opt.Adam(k_opt.schedules.ExponentialDecay(1e-2, 3, 0.5, staircase=True))),
}


@pytest.mark.parametrize("name", OPTIMIZER_STEPS)
def test_optimizer_steps_match_keras(name):
    """Ten steps on weights of size ~1, fed identical gradients spanning 1e-9 to 1 in size.

    Both compute in float32; the learning rate (and Adam's bias correction) is computed in
    float64 by minicnn and in float32 by Keras. Keras' ``1 - beta_2**t`` in float32 is off by
    up to 1e-5 relative for t <= 10 (see test_adam_steps_match_keras), so each Adam step of size
    <= lr = 1e-2 may differ by 1e-7: bound 1e-6 absolute after ten steps. Measured: 0 (bit-equal)
    for RMSprop and SGD with Nesterov momentum, 6e-8 with CosineDecay, 4.8e-7 for Adam.
    """
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal(shape).astype(np.float32) for shape in ((3, 3, 2, 4), (4,), (20, 3))]
    grads = [[(rng.standard_normal(w.shape) * 10.0 ** rng.uniform(-9, 0, w.shape)).astype(np.float32)
              for w in weights] for _ in range(10)]
    ours, theirs = OPTIMIZER_STEPS[name]
    assert run_steps(ours(), theirs(), weights, grads) <= 1e-6


@pytest.mark.parametrize("ours,theirs", [
    (schedules.ExponentialDecay(0.1, 7, 0.3), keras.optimizers.schedules.ExponentialDecay(0.1, 7, 0.3)),
    (schedules.ExponentialDecay(0.1, 7, 0.3, staircase=True),
     keras.optimizers.schedules.ExponentialDecay(0.1, 7, 0.3, staircase=True)),
    (schedules.CosineDecay(0.1, 20, alpha=0.2), keras.optimizers.schedules.CosineDecay(0.1, 20, alpha=0.2)),
    (schedules.CosineDecay(0.0, 20, warmup_target=0.5, warmup_steps=5),
     keras.optimizers.schedules.CosineDecay(0.0, 20, warmup_target=0.5, warmup_steps=5)),
])
def test_schedules_match_keras(ours, theirs):
    """Every step from 0 to 40. Keras computes in float32: near the end of a cosine decay
    ``1 + cos(pi * t)`` cancels, so the bound is relative to the schedule's peak rate: a few
    float32 roundings of it, 2.5e-7 (measured: 3e-8 ExponentialDecay, 5.6e-8 CosineDecay,
    9.4e-8 with warm-up)."""
    peak = max(ours(step) for step in range(41))
    for step in range(41):
        assert abs(ours(step) - float(theirs(step))) <= 2.5e-7 * peak, step


# ---------------------------------------------------------------------------------- metrics


@pytest.mark.parametrize("ours,theirs,sparse", [
    (minicnn_metrics.CategoricalAccuracy(), keras.metrics.categorical_accuracy, False),
    (minicnn_metrics.SparseCategoricalAccuracy(), keras.metrics.sparse_categorical_accuracy, True),
    (minicnn_metrics.TopKCategoricalAccuracy(), keras.metrics.top_k_categorical_accuracy, False),
    (minicnn_metrics.TopKCategoricalAccuracy(k=2),
     lambda y, p: keras.metrics.top_k_categorical_accuracy(y, p, k=2), False),
    (minicnn_metrics.SparseTopKCategoricalAccuracy(k=3),
     lambda y, p: keras.metrics.sparse_top_k_categorical_accuracy(y, p, k=3), True),
])
def test_metrics_match_keras_ties_included(ours, theirs, sparse):
    """Scores drawn from 4 values over 8 classes, so most rows have ties: exact agreement."""
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, (500, 8)).astype(np.float32)
    labels = rng.integers(0, 8, 500)
    y = labels if sparse else np.eye(8, dtype=np.float32)[labels]
    np.testing.assert_array_equal(ours(y, scores), np.asarray(theirs(y, scores)))


def test_compiled_metric_names_match_keras_logs():
    model = Sequential([Input((4,)), Dense(3, activation="softmax", seed=0)])
    keras_model = to_keras(model)
    names = ["accuracy", "top_k_categorical_accuracy", "categorical_accuracy"]
    model.compile("sgd", loss="categorical_crossentropy", metrics=names)
    keras_model.compile("sgd", loss="categorical_crossentropy", metrics=names)
    x, y = batch(model)
    ours = model.evaluate(x, y, return_dict=True)
    theirs = keras_model.evaluate(x, y, return_dict=True, verbose=0)
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert ours[key] == pytest.approx(theirs[key], abs=1e-6)


# ---------------------------------------------------------------------------------- callbacks


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
