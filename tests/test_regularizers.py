"""Weight penalties (:mod:`minicnn.regularizers`): Keras' definitions and names, their gradients, and how a
model adds them to its loss and its gradients, in both implementations, through saving and loading."""

import copy

import numpy as np
import pytest

from minicnn import (
    SGD,
    Conv2D,
    Dense,
    Flatten,
    Input,
    MaxPool2D,
    Sequential,
    gradcheck,
    load_model,
    model_from_json,
    regularizers,
    to_categorical,
)
from minicnn.regularizers import L1, L1L2, L2, Regularizer

rng = np.random.default_rng(0)


def test_the_penalties_are_keras_definitions():
    w = np.array([[1.0, -2.0], [0.0, 3.0]])
    assert L2(0.5)(w) == pytest.approx(0.5 * (1 + 4 + 0 + 9))  # no 1/2, no mean: Keras' l2 * sum(W**2)
    assert L1(0.1)(w) == pytest.approx(0.1 * (1 + 2 + 0 + 3))
    assert L1L2(0.1, 0.5)(w) == pytest.approx(0.6 + 7.0)
    assert L1L2()(w) == 0.0  # Keras' L1L2 defaults: no penalty
    assert L2().l2 == 0.01 and L1().l1 == 0.01


def test_the_gradients_are_the_penalties_derivatives():
    w = rng.normal(size=(3, 2, 4))
    for penalty in (L2(0.3), L1(0.2), L1L2(0.2, 0.3)):
        grad = penalty.gradient(w)
        assert grad.shape == w.shape and grad.dtype == w.dtype
        numeric = gradcheck.numerical_gradient(lambda p=penalty: p(w), w, np.arange(w.size), 1e-6)
        assert gradcheck.relative_error(grad.reshape(-1), numeric) < 1e-8, type(penalty).__name__
    np.testing.assert_array_equal(L2(0.25).gradient(w), 0.5 * w)
    assert L1(0.5).gradient(np.zeros(2)).tolist() == [0.0, 0.0]  # TensorFlow's subgradient of |W| at 0


def test_float32_in_float32_out():
    w = rng.normal(size=(4, 4)).astype(np.float32)
    assert L2().gradient(w).dtype == np.float32 and L1L2(0.1, 0.1).gradient(w).dtype == np.float32


def test_names_resolve_as_keras_3_reads_them():
    assert regularizers.get("l2").get_config() == {"l2": 0.01}
    assert type(regularizers.get("L1")) is L1
    assert regularizers.get("l1l2").get_config() == {"l1": 0.0, "l2": 0.0}
    assert regularizers.get(None) is None
    penalty = L2(0.2)
    assert regularizers.get(penalty) is penalty
    keras_config = {"module": "keras.regularizers", "class_name": "L1L2", "config": {"l1": 0.1, "l2": 0.2},
                    "registered_name": None}
    assert regularizers.get(keras_config).get_config() == {"l1": 0.1, "l2": 0.2}
    assert regularizers.l2 is L2 and regularizers.l1_l2 is L1L2  # Keras' lower-case aliases


@pytest.mark.parametrize(("value", "error", "message"), [
    ("l3", ValueError, r"^Dense: kernel_regularizer: unknown regularizer 'l3'; minicnn has L1, l1, L1L2"),
    ({"class_name": "OrthogonalRegularizer", "config": {}}, ValueError,
     r"minicnn has no regularizer 'OrthogonalRegularizer'; it has L1"),
    (0.01, TypeError, r"^Dense: kernel_regularizer must be None, a name \(L1, .*\.Regularizer; got float$"),
    (lambda w: 0.0, TypeError, r"got function \(minicnn needs the penalty's gradient as well"),
])
def test_a_bad_regularizer_is_named(value, error, message):
    with pytest.raises(error, match=message):
        Dense(2, kernel_regularizer=value)


@pytest.mark.parametrize("factor", [-0.1, float("nan"), float("inf"), "0.1", True])
def test_a_bad_factor_is_named(factor):
    with pytest.raises(ValueError, match=r"^L2: l2 must be a finite number >= 0; got "):
        L2(factor)
    with pytest.raises(ValueError, match=r"^L1L2: l1 must be a finite number >= 0"):
        L1L2(l1=factor)


def test_a_bias_regularizer_without_a_bias_is_refused():
    with pytest.raises(ValueError, match=r"^Conv2D: bias_regularizer=L2\(l2=0.01\) needs a bias"):
        Conv2D(2, 3, use_bias=False, bias_regularizer="l2")


def test_a_parameter_is_penalised_by_its_key_regularizer():
    layer = Dense(3, kernel_regularizer=L2(0.1), bias_regularizer=L1(0.2))
    layer.build((4,))
    layer.params["bias"] = np.array([1.0, -1.0, 0.5], np.float32)
    assert layer.regularizers() == {"kernel": layer.kernel_regularizer, "bias": layer.bias_regularizer}
    expected = 0.1 * np.sum(layer.params["kernel"].astype(np.float64) ** 2) + 0.2 * 2.5
    assert layer.regularization_loss() == pytest.approx(expected, rel=1e-6)
    assert Dense(3).regularizers() == {}


# ---------------------------------------------------------------------------- in a model


def regularized_cnn(implementation: str, seed: int = 0) -> Sequential:
    """Conv2D -> MaxPool2D (fused in the fast implementation) -> Dense -> Dense, every kind of penalty."""
    model = Sequential([
        Input((6, 6, 1)),
        Conv2D(3, 3, activation="relu", kernel_regularizer=L2(0.05), bias_regularizer="l2", seed=seed),
        MaxPool2D(2),
        Flatten(),
        Dense(4, activation="relu", kernel_regularizer=L1L2(0.01, 0.02), seed=seed + 1),
        Dense(3, activation="softmax", kernel_regularizer="l2", bias_regularizer=L1(0.03), seed=seed + 2),
    ])
    for layer in model.layers:  # biases away from 0, so that their penalties count
        if "bias" in layer.params:
            layer.params["bias"] = rng.normal(0, 0.1, layer.params["bias"].shape).astype(np.float32)
    model.compile(SGD(0.1), loss="sparse_categorical_crossentropy", implementation=implementation)
    return model


def unregularized(model: Sequential) -> Sequential:
    plain = copy.deepcopy(model)
    for layer in plain.layers:
        if hasattr(layer, "kernel_regularizer"):
            layer.kernel_regularizer = layer.bias_regularizer = None
    return plain


def penalty_by_hand(model: Sequential) -> float:
    w = {f"{layer.name}/{key}": p.astype(np.float64)
         for layer in model.layers for key, p in layer.params.items()}
    return (0.05 * np.sum(w["conv2d/kernel"] ** 2) + 0.01 * np.sum(w["conv2d/bias"] ** 2)
            + 0.01 * np.sum(np.abs(w["dense/kernel"])) + 0.02 * np.sum(w["dense/kernel"] ** 2)
            + 0.01 * np.sum(w["dense_1/kernel"] ** 2) + 0.03 * np.sum(np.abs(w["dense_1/bias"])))


@pytest.mark.parametrize("implementation", ["reference", "fast"])
def test_a_training_step_adds_the_penalty_to_the_loss_and_its_gradient_to_the_update(implementation):
    """SGD: ``W <- W - lr * (dW_data + dpenalty/dW)``, the data gradient from the same model unregularised."""
    model = regularized_cnn(implementation)
    plain = unregularized(model)
    x, y = rng.random((5, 6, 6, 1), dtype=np.float32), np.array([0, 1, 2, 1, 0])
    penalty = penalty_by_hand(model)
    assert model.regularization_loss() == pytest.approx(penalty, rel=1e-6)
    before = model.get_weights()
    data_loss, _, _ = plain.compute_loss_and_gradients(x, to_categorical(y, 3), input_gradient=False)
    data_grads = [g for _, _, g in plain.parameters_and_gradients()]
    loss = model.train_on_batch(x, y)
    assert loss == pytest.approx(data_loss + penalty, rel=1e-6)
    penalty_grads = {"conv2d/kernel": lambda w: 0.1 * w, "conv2d/bias": lambda w: 0.02 * w,
                     "dense/kernel": lambda w: 0.01 * np.sign(w) + 0.04 * w,
                     "dense/bias": np.zeros_like,
                     "dense_1/kernel": lambda w: 0.02 * w, "dense_1/bias": lambda w: 0.03 * np.sign(w)}
    for (name, _, _), w, g, after in zip(plain.parameters_and_gradients(), before, data_grads,
                                         model.get_weights(), strict=True):
        np.testing.assert_allclose(after, w - 0.1 * (g + penalty_grads[name](w)), atol=1e-6, err_msg=name)


def test_evaluate_counts_the_penalty_as_keras_does():
    model = regularized_cnn("reference")
    x, y = rng.random((7, 6, 6, 1), dtype=np.float32), np.array([0, 1, 2, 1, 0, 2, 2])
    data_loss = unregularized(model).evaluate(x, y, batch_size=3)
    assert model.evaluate(x, y, batch_size=3) == pytest.approx(data_loss + penalty_by_hand(model), rel=1e-6)


def test_a_frozen_layer_is_not_penalised():
    """Keras penalises trainable weights only."""
    model = regularized_cnn("reference")
    model.layers[0].trainable = False
    assert "conv2d/kernel" not in model.regularization_gradients()
    assert model.regularization_loss() == pytest.approx(
        penalty_by_hand(model) - model.layers[0].regularization_loss(), rel=1e-6)


def test_the_penalty_is_gradient_checked_end_to_end():
    """check_model's loss is the training loss, penalty included; a penalty with a wrong gradient fails."""
    model = regularized_cnn("reference")
    x, y = rng.random((2, 6, 6, 1)), [0, 2]
    gradcheck.check_model(model, x, y, implementation="both").assert_ok()

    class HalfGradientL2(L2):
        def gradient(self, w):
            return self.l2 * w  # the 2 of d(W**2)/dW forgotten

    model.layers[-1].kernel_regularizer = HalfGradientL2(0.5)
    report = gradcheck.check_model(model, x, y)
    assert not report.ok
    assert [c.key for c in report.failures] == ["dense_1/kernel"]  # each step's own backward is right


def test_regularizers_survive_saving_and_json(tmp_path):
    model = regularized_cnn("reference")
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    rebuilt = model_from_json(model.to_json())
    for other in (loaded, rebuilt):
        for ours, theirs in zip(model.layers, other.layers, strict=True):
            for key in ("kernel_regularizer", "bias_regularizer"):
                mine, copied = getattr(ours, key, None), getattr(theirs, key, None)
                assert type(mine) is type(copied)
                assert mine is None or mine.get_config() == copied.get_config()
    assert loaded.regularization_loss() == model.regularization_loss()


class Quartic(Regularizer):
    """A penalty of one's own: ``c * sum(W**4)``."""

    def __init__(self, c=1.0):
        self.c = c

    def __call__(self, w):
        return self.c * float(np.sum(w ** 4))

    def gradient(self, w):
        return 4 * self.c * w ** 3

    def get_config(self):
        return {"c": self.c}


def test_a_regularizer_of_ones_own_is_checked_saved_and_loaded(tmp_path):
    model = Sequential([Input((3,)), Dense(2, activation="softmax", kernel_regularizer=Quartic(2.0))])
    gradcheck.check_model(model, rng.random((2, 3)), [0, 1]).assert_ok()
    w = model.layers[0].params["kernel"].astype(np.float64)
    assert model.regularization_loss() == pytest.approx(2.0 * np.sum(w ** 4), rel=1e-6)
    model.save(tmp_path / "m.npz")
    with pytest.raises(ValueError, match="no regularizer 'Quartic'"):
        load_model(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz", custom_objects={"Quartic": Quartic})
    penalty = loaded.layers[0].kernel_regularizer
    assert type(penalty) is Quartic and penalty.c == 2.0
