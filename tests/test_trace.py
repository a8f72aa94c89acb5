"""trace_step: one training step layer by layer, on a copy, with numbers that match the real step."""

import copy

import numpy as np
import pytest

from minicnn import (
    SGD,
    Adam,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    Input,
    MaxPool2D,
    Sequential,
    SparseCategoricalCrossentropy,
    implementation,
    to_categorical,
    trace,
)
from minicnn.regularizers import L2


def small_model() -> Sequential:
    model = Sequential([
        Input((6, 6, 1)),
        Conv2D(4, 3, padding="same", activation="relu", seed=0),
        MaxPool2D(2),
        Dropout(0.25, seed=1),
        Flatten(),
        Dense(8, activation="relu", seed=2),
        Dense(3, activation="softmax", seed=3),
    ])
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def data(n=4):
    rng = np.random.default_rng(0)
    return rng.random((n, 6, 6, 1)).astype(np.float32), rng.integers(0, 3, n)


def test_steps_follow_the_implementation_and_say_which_ran_fused(implementation):
    model, (x, y) = small_model(), data()
    result = trace.trace_step(model, x, y)
    assert result.implementation == implementation
    names = [s.name for s in result.steps]
    if implementation == "fast":
        assert names == ["conv2d+max_pooling2d+dropout", "flatten", "dense", "dense_1"]
        assert [s.fused for s in result.steps] == [True, False, False, False]
        assert result.steps[0].kind == "Conv2D -> MaxPooling2D -> Dropout"
    else:
        assert names == [layer.name for layer in model.layers]
        assert not any(s.fused for s in result.steps)
    assert result.steps[-2].output.shape == (4, 8) and result.input_gradient.shape == x.shape


def test_step_trace_path_is_the_deprecated_name_of_implementation():
    model, (x, y) = small_model(), data()
    with implementation.use("reference"):
        result = trace.trace_step(model, x, y)
    with pytest.warns(DeprecationWarning, match="StepTrace.path is deprecated: use StepTrace.implementation"):
        assert result.path == "reference"
    assert str(result).startswith("one training step, reference implementation, optimizer ")


def test_numbers_match_the_real_step_and_the_model_is_untouched(implementation):
    model, (x, y) = small_model(), data()
    before = copy.deepcopy(model)
    result = trace.trace_step(model, x, y)
    for original, kept in zip(model.get_weights(), before.get_weights(), strict=True):
        assert np.array_equal(original, kept)
    assert model.optimizer.iterations == 0 and model.optimizer.state == {}

    trained = copy.deepcopy(model)  # same dropout generators: the same masks as the trace's copy
    loss = trained.train_on_batch(x, y)  # compiled without metrics: the loss alone, as in Keras
    assert result.loss == pytest.approx(loss, rel=1e-6)
    for record, (name, param, _) in zip(result.params, trained.parameters_and_gradients(), strict=True):
        old = model.get_layer(name.split("/")[0]).params[name.split("/")[1]]
        assert record.name == name
        if np.linalg.norm(old) > 0:
            expected = np.linalg.norm(param - old) / np.linalg.norm(old)
            assert record.update_ratio == pytest.approx(expected, rel=1e-4)


def test_statistics_and_cache_bytes_in_the_reference_implementation():
    model, (x, y) = small_model(), data()
    with implementation.use("reference"):
        result = trace.trace_step(model, x, y)
    assert result.input.mean == pytest.approx(float(x.mean())) and result.input.zeros == 0.0
    dense = next(s for s in result.steps if s.name == "dense")
    # Dense caches its input (4, 36) and its relu output (4, 8), float32.
    assert dense.cache_bytes == (4 * 36 + 4 * 8) * 4
    relu_zeros = next(s for s in result.steps if s.name == "conv2d").output.zeros
    assert 0 < relu_zeros < 1
    assert result.steps[-1].gradient.mean == pytest.approx(0.0, abs=1e-7)  # rows of p - y sum to 0


def test_a_healthy_untrained_model_gets_no_warnings():
    model, (x, y) = small_model(), data()
    result = trace.trace_step(model, x, y)
    assert result.warnings == [] and "no warnings" in str(result)
    assert abs(result.loss - result.ln_k) < 0.5


def test_dead_relus_are_named():
    model, (x, y) = small_model(), data()
    model.get_layer("conv2d").params["bias"][:] = -100.0  # every unit below zero on every input
    result = trace.trace_step(model, x, y)
    assert any(w.startswith("dead ReLUs in conv2d") and "4 of 4 units" in w for w in result.warnings)


def test_a_loss_far_from_ln_k_is_flagged():
    model, (x, y) = small_model(), data()
    model.get_layer("dense_1").params["kernel"] *= 100.0
    result = trace.trace_step(model, x, y)
    assert any("far from ln K = 1.099" in w for w in result.warnings)


def test_vanishing_gradients_and_tiny_steps_are_flagged():
    layers = [Input((10,))] + [Dense(10, activation="relu", seed=i) for i in range(6)] + [
        Dense(3, activation="softmax", seed=9)]
    model = Sequential(layers)
    for layer in model.layers[:-1]:
        layer.params["kernel"] *= 0.05
        layer.params["bias"][:] = 0.01  # alive, but each layer shrinks the gradient 20-fold
    model.compile(SGD(1e-6), "sparse_categorical_crossentropy")
    x, y = np.random.default_rng(0).random((4, 10)).astype(np.float32), [0, 1, 2, 0]
    result = trace.trace_step(model, x, y)
    assert any(w.startswith("vanishing gradients") for w in result.warnings)
    assert any(w.startswith("tiny step") for w in result.warnings)


def test_a_large_learning_rate_is_flagged():
    model, (x, y) = small_model(), data()
    model.compile(SGD(50.0), "sparse_categorical_crossentropy")
    result = trace.trace_step(model, x, y)
    assert any(w.startswith("large step") for w in result.warnings)


def test_values_prints_every_number_of_a_tiny_step():
    model = Sequential([Input((3,)), Dense(2, activation="softmax", seed=0)])
    x = np.array([[0.5, -1.25, 2.0]], dtype=np.float32)
    result = trace.trace_step(model, x, [1], values=True)
    text = str(result)
    assert "[[ 0.5  -1.25  2.  ]]" in text
    kernel_update = result.values["dense/kernel update"]
    assert kernel_update.shape == (3, 2) and np.all(kernel_update != 0)
    assert np.allclose(result.values["dense/kernel gradient"], x.T @ result.values["dense gradient"])


def test_bad_input_names_trace_step():
    with pytest.raises(ValueError, match="trace_step: expected x of shape"):
        trace.trace_step(small_model(), np.zeros((2, 5, 5, 1), np.float32), [0, 1])
    with pytest.raises(ValueError, match="trace_step: x has 2 samples but y has 3"):
        trace.trace_step(small_model(), np.zeros((2, 6, 6, 1), np.float32), [0, 1, 2])


# ------------------------------------------------------------------ what a printed trace says


def test_all_zero_biases_print_their_gradients_not_nan(implementation):
    """Freshly initialised biases are all zeros: no ratio to ||W||, so the absolute norms instead of NaN."""
    model, (x, y) = small_model(), data()
    result = trace.trace_step(model, x, y)
    text = str(result)
    assert "nan" not in text
    real = copy.deepcopy(model)  # same dropout generators: the same step as the trace's copy
    real.compute_loss_and_gradients(x, to_categorical(y, 3), input_gradient=False)
    for record, (name, param, grad) in zip(result.params, real.parameters_and_gradients(), strict=True):
        assert record.name == name
        if name.endswith("/bias"):
            assert not param.any() and record.grad_ratio is None and record.update_ratio is None
            assert record.grad_norm == pytest.approx(float(np.linalg.norm(grad)), rel=1e-5)
            line = next(line for line in text.splitlines() if line.strip().startswith(name))
            assert "0 (zeros)" in line and f"||dW|| {np.linalg.norm(grad):.3e}" in line


def test_the_last_row_says_it_shows_logits_when_the_loss_takes_the_softmax():
    model, (x, y) = small_model(), data()
    result = trace.trace_step(model, x, y)
    last = result.steps[-1]
    assert last.logits and "logits z, before softmax" in last.label
    probabilities = model(x)
    assert not np.allclose(last.output.mean, probabilities.mean())  # rows of probabilities average 1/3
    assert "loss" in str(result) and "on the logits of dense_1" in str(result)
    assert not any(s.logits for s in result.steps[:-1])
    logits_model = Sequential([Input((6, 6, 1)), Flatten(), Dense(3, seed=0)])  # the model outputs logits
    logits_model.compile("adam", SparseCategoricalCrossentropy(from_logits=True))
    assert not trace.trace_step(logits_model, x, y).steps[-1].logits


def test_values_says_where_too_many_numbers_come_from():
    x, y = data(n=1)
    wide = Sequential([Input((6, 6, 1)), Flatten(), Dense(3000, activation="relu", seed=0),
                       Dense(3, activation="softmax", seed=1)])
    with pytest.raises(ValueError, match="for the parameters .*a smaller input does not help") as raised:
        trace.trace_step(wide, x, y, values=True)
    assert "x[:1]" not in str(raised.value)
    with pytest.raises(ValueError, match=r"of 600 samples: use fewer samples, e\.g\. x\[:1\]"):
        trace.trace_step(small_model(), *data(n=600), values=True)
    large_image = Sequential([Input((150, 150, 1)), Conv2D(2, 3, seed=0), GlobalAveragePooling2D(),
                              Dense(2, seed=1)])
    with pytest.raises(ValueError, match=r"of 1 sample: use a smaller image or model") as raised:
        trace.trace_step(large_image, np.zeros((1, 150, 150, 1), np.float32), [0], values=True)
    assert "x[:1]" not in str(raised.value)


def test_the_ln_k_check_applies_to_an_untrained_model_only():
    (x, y) = data()
    model = Sequential([Input((6, 6, 1)), Flatten(), Dense(3, activation="softmax", seed=0)])  # convex
    model.compile(Adam(0.1), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=100, batch_size=4, verbose=0)
    result = trace.trace_step(model, x, y)
    assert result.loss < 0.5 * result.ln_k  # trained: far below ln K, as it should be
    assert not any("ln K" in w for w in result.warnings)
    untrained = small_model()
    untrained.get_layer("dense_1").params["kernel"] *= 100.0
    warned = trace.trace_step(untrained, x, y).warnings
    assert any("far from ln K" in w and "optimizer has taken no step yet" in w for w in warned)


def test_the_weight_penalty_is_in_the_traced_loss_and_gradients():
    model, (x, y) = small_model(), data()
    model.get_layer("dense").kernel_regularizer = L2(0.5)
    result = trace.trace_step(model, x, y)
    loss = copy.deepcopy(model).train_on_batch(x, y)
    assert result.loss == pytest.approx(loss, rel=1e-6)
    assert result.penalty == pytest.approx(model.regularization_loss(), rel=1e-6) and result.penalty > 0.1
    assert f"weight penalty {result.penalty:.4f}" in str(result)
