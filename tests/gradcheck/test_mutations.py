"""The mutation suite: deliberate bugs in the readable reference code, each caught by gradcheck
and attributed to the right layer and tensor, with the hint a student needs.

Each mutation is monkeypatched into the code ``docs/backprop.md`` derives (the layers and the
``*_reference`` kernels), and gradcheck runs on the reference implementation, its default.
"""

import numpy as np
import pytest

from minicnn import (
    Adam,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Input,
    MaxPool2D,
    ReLU,
    Sequential,
    Softmax,
    activations,
    gradcheck,
    kernels,
    losses,
    optimizers,
)
from minicnn.kernels import im2col as im2col_kernels
from minicnn.kernels import maxpool as maxpool_kernels
from minicnn.kernels import window_slice
from minicnn.layers import conv2d as conv2d_module
from minicnn.layers import pooling as pooling_module

N = 3


def model() -> Sequential:
    """Every layer kind once: Conv2D(relu, stride 2) -> MaxPool2D -> Dropout -> Flatten -> Dense
    -> ReLU -> Dropout -> Dense -> Softmax (fused with the loss). In the fast implementation the first
    three fuse."""
    return Sequential([
        Input((8, 7, 2)),
        Conv2D(4, 3, strides=2, padding="same", activation="relu", seed=0),
        MaxPool2D(2),
        Dropout(0.25, seed=1),
        Flatten(),
        Dense(6, seed=2),
        ReLU(),
        Dropout(0.5, seed=3),
        Dense(3, seed=4),
        Softmax(),
    ])


def data():
    rng = np.random.default_rng(0)
    return rng.random((N, 8, 7, 2)), np.array([0, 2, 1])


def check(**kwargs) -> gradcheck.GradcheckReport:
    x, y = data()
    return gradcheck.check_model(model(), x, y, **kwargs)


def pair_with(reference, numba):
    return kernels.pair(reference, numba)


# --------------------------------------------------------------------------- the mutations


def dx_times(backward_hook, factor):
    """A layer's backward hook with its ``dx`` multiplied by ``factor``, its gradients untouched."""
    def broken(*args):
        dx, grads = backward_hook(*args)
        return dx * factor, grads

    return broken


def wrong_sign(mp):
    mp.setattr(Dense, "backward_affine_pass", dx_times(Dense.backward_affine_pass, -1))


def missing_mean(mp):
    def loss(z, y, sample_weight=None):
        log_p = losses.log_softmax(z)
        return -float((y * log_p).sum()) / z.shape[0], np.exp(log_p) - y  # dz without / N

    mp.setattr(losses, "softmax_cross_entropy", loss)


def missing_dropout_scale(mp):
    mp.setattr(Dropout, "backward_pass", lambda self, dout, cache: (dout * (cache["mask"] != 0), {}))


def swapped_pool_offsets(mp):
    def backward(dout, argmax, x_shape, pool, stride):
        _, oh, ow, _ = dout.shape
        dx = np.zeros(x_shape, dtype=dout.dtype)
        for di in range(pool):
            for dj in range(pool):
                routed = np.where(argmax == dj * pool + di, dout, 0)  # offsets swapped
                dx[:, window_slice(di, oh, stride), window_slice(dj, ow, stride), :] += routed
        return dx

    mp.setattr(pooling_module, "maxpool_backward",
               pair_with(backward, maxpool_kernels.maxpool_backward_numba))


def col2im_corner_off(mp):
    def col2im(dcols, x_shape, stride, pads):
        dx = im2col_kernels.col2im_reference(dcols, x_shape, stride, pads)
        dx[:, -1, -1, :] = 0  # the bottom-right pixel loses its gradient
        return dx

    mp.setattr(conv2d_module, "col2im", pair_with(col2im, im2col_kernels.col2im_numba))


def flatten_not_reshaped(mp):
    mp.setattr(Flatten, "backward_pass", lambda self, dout, cache: (dout.copy(), {}))


def missing_bias_gradient(mp):
    def backward_affine_pass(self, dz, cache):
        return dz @ self.params["kernel"].T, {"kernel": cache["x"].T @ dz}

    mp.setattr(Dense, "backward_affine_pass", backward_affine_pass)


def relu_mask_from_wrong_array(mp):
    mp.setitem(activations.ACTIVATIONS, "relu", (activations.relu, lambda da, a: da * (da > 0)))


def stride_ignored(mp):
    def col2im(dcols, x_shape, stride, pads):
        return im2col_kernels.col2im_reference(dcols, x_shape, 1, pads)  # as if stride were 1

    mp.setattr(conv2d_module, "col2im", pair_with(col2im, im2col_kernels.col2im_numba))


def conv_bias_at_one_position(mp):
    original = Conv2D.backward_affine_pass

    def backward_affine_pass(self, dz, cache):
        dx, grads = original(self, dz, cache)
        grads["bias"] = dz[:, 0, 0, :].sum(axis=0)  # sums the batch, forgets the positions
        return dx, grads

    mp.setattr(Conv2D, "backward_affine_pass", backward_affine_pass)


def dense_kernel_transposed(mp):
    original = Dense.backward_affine_pass

    def backward_affine_pass(self, dz, cache):
        dx, grads = original(self, dz, cache)
        grads["kernel"] = dz.T @ cache["x"]  # (U, D) instead of (D, U)
        return dx, grads

    mp.setattr(Dense, "backward_affine_pass", backward_affine_pass)


def named_tensors(report, step) -> set[str]:
    """The tensors of ``step`` the report says are wrong: failing checks, and problems."""
    named = {c.name for c in report.failures if c.step == step}
    for p in report.problems:
        if p.step == step:
            named |= {"x"} if "dx" in p.message else set()
            named |= {key for key in ("kernel", "bias") if repr(key) in p.message}
    return named


# (mutation, the steps blamed, the tensor named, text the report must contain)
MODEL_MUTATIONS = [
    (wrong_sign, ["dense_1", "dense"], "x", "the sign is wrong"),
    (missing_mean, ["loss"], "z", "analytic = 3 x numeric at every checked entry: the 1/N of the mean loss "
                                  "is missing (N = 3, the batch size)"),
    (missing_dropout_scale, ["dropout_1", "dropout"], "x",
     "the dropout scale 1/(1 - rate) = 1.333 is missing in dropout"),
    (swapped_pool_offsets, ["max_pooling2d"], "x", "routed to the wrong place"),
    (col2im_corner_off, ["conv2d"], "x", "gradient never routed there"),
    (flatten_not_reshaped, ["flatten"], "x", "expected (3, 2, 2, 4), the shape of its input"),
    (missing_bias_gradient, ["dense_1", "dense"], "bias", "backward left no gradient for 'bias'"),
    (relu_mask_from_wrong_array, ["re_lu", "conv2d"], "x",
     'look first at: layer "re_lu" (ReLU), layer "conv2d"'),
    (stride_ignored, ["conv2d"], "x", "conv2d:x"),
    (conv_bias_at_one_position, ["conv2d"], "bias", "conv2d:bias"),
    (dense_kernel_transposed, ["dense_1", "dense"], "kernel", "has shape (3, 6); expected (6, 3)"),
]


@pytest.mark.parametrize("mutate,blamed,tensor,text", MODEL_MUTATIONS,
                         ids=[m[0].__name__ for m in MODEL_MUTATIONS])
def test_each_mutation_is_caught_and_attributed(monkeypatch, mutate, blamed, tensor, text):
    mutate(monkeypatch)
    report = check()
    assert not report.ok
    assert report.blamed == blamed
    assert tensor in named_tensors(report, blamed[0])
    assert text in str(report)
    with pytest.raises(AssertionError, match=blamed[0]):
        report.assert_ok()


def test_the_untouched_model_passes_in_both_implementations():
    report = check(implementation="both")
    report.assert_ok()
    assert "fused steps conv2d+max_pooling2d+dropout" in report.checked
    assert "reference implementation" in report.checked


def test_a_corner_bug_is_caught_even_with_few_samples(monkeypatch):
    col2im_corner_off(monkeypatch)
    report = check(max_checks=2)
    assert report.blamed == ["conv2d"]
    worst = [c for c in report.failures if c.key == "conv2d:x"][0].worst[0]
    assert worst.index[1:3] == (7, 6)  # the bottom-right pixel, named by its index
    assert worst.analytic == 0 and worst.numeric != 0


def test_adam_without_bias_correction_is_caught(monkeypatch):
    def update(self, name, param, grad):
        state = self.state.setdefault(name, {"m": np.zeros_like(param), "v": np.zeros_like(param)})
        optimizers.adam_update(param, grad, state["m"], state["v"], self.learning_rate, self.beta_1,
                               self.beta_2, self.epsilon)  # alpha = lr: no bias correction

    gradcheck.check_optimizer(Adam()).assert_ok()
    monkeypatch.setattr(Adam, "update", update)
    report = gradcheck.check_optimizer(Adam())
    assert not report.ok and report.blamed == ["Adam"]
    assert "update = 3.162 x expected at every checked entry: the bias correction" in str(report)
    assert "at t = 1 is missing" in str(report)


# --------------------------------------------------------------------------- issue 8: every readable backward


def scaled(function, factor=1.5):
    return lambda *args: function(*args) * factor


def scaled_dz(loss_and_gradient, factor=1.5):
    def broken(z, y):
        loss, dz = loss_and_gradient(z, y)
        return loss, dz * factor

    return broken


READABLE_BACKWARDS = {
    "Dense.backward_affine_pass": (lambda mp: mp.setattr(Dense, "backward_affine_pass", dx_times(
        Dense.backward_affine_pass, 1.5)), "dense"),
    "Conv2D.backward_affine_pass": (lambda mp: mp.setattr(Conv2D, "backward_affine_pass", dx_times(
        Conv2D.backward_affine_pass, 1.5)), "conv2d"),
    "col2im_reference": (lambda mp: mp.setattr(conv2d_module, "col2im", pair_with(
        scaled(im2col_kernels.col2im_reference), im2col_kernels.col2im_numba)), "conv2d"),
    "maxpool_backward_reference": (lambda mp: mp.setattr(pooling_module, "maxpool_backward", pair_with(
        scaled(maxpool_kernels.maxpool_backward_reference), maxpool_kernels.maxpool_backward_numba)),
        "max_pooling2d"),
    "Dropout.backward_pass": (lambda mp: mp.setattr(Dropout, "backward_pass", dx_times(
        Dropout.backward_pass, 1.5)), "dropout"),
    "Flatten.backward_pass": (lambda mp: mp.setattr(Flatten, "backward_pass", dx_times(
        Flatten.backward_pass, 1.5)), "flatten"),
    "relu_backward": (lambda mp: mp.setitem(activations.ACTIVATIONS, "relu", (
        activations.relu, scaled(activations.relu_backward))), "re_lu"),
    "softmax_cross_entropy": (lambda mp: mp.setattr(losses, "softmax_cross_entropy", scaled_dz(
        losses.softmax_cross_entropy)), "loss"),
}


@pytest.mark.parametrize("name", READABLE_BACKWARDS)
def test_breaking_a_readable_backward_fails_on_the_reference_path_naming_the_layer(monkeypatch, name):
    breaks, layer = READABLE_BACKWARDS[name]
    breaks(monkeypatch)
    report = check()
    assert not report.ok
    assert layer in report.blamed
    assert "reference implementation" in report.checked


def test_breaking_softmax_backward_fails_naming_the_layer(monkeypatch):
    x = np.random.default_rng(0).standard_normal((3, 4))
    gradcheck.check_layer(Softmax(), x).assert_ok()
    monkeypatch.setitem(activations.ACTIVATIONS, "softmax",
                        (activations.softmax, scaled(activations.softmax_backward)))
    report = gradcheck.check_layer(Softmax(name="probabilities"), x)
    assert not report.ok and report.blamed == ["probabilities"]
    assert "analytic = 1.5 x numeric" in str(report)
