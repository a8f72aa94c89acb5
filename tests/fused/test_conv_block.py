"""The fused ConvBlock step (:mod:`minicnn.fused.conv_block`) computes what its layers compute one by one.

Over a table of random configurations (kernel 1x1 to 7x7, strides 1, 2 and (1, 2), both paddings,
with and without bias, 1, 3 or 5 input channels, BatchNormalization trainable or frozen, before or
after the activation, every activation the step takes, every pooling layer, Dropout), the fast
step and the layers' own reference passes agree on the output, ``dx``, every parameter gradient
and the moving statistics, in training and at inference.
"""

import copy

import numpy as np
import pytest

from minicnn import (
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dropout,
    GlobalAveragePooling2D,
    MaxPool2D,
    ReLU,
    Sequential,
)
from minicnn.fused import ConvBlock
from minicnn.implementation import use

TOLERANCES = {np.float64: 1e-10, np.float32: 2e-4}


def random_configuration(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 8))
    config = {
        "n": int(rng.integers(1, 4)),
        "h": int(rng.integers(k + 1, k + 8)), "w": int(rng.integers(k + 1, k + 8)),
        "c": int(rng.choice([1, 3, 5])), "f": int(rng.integers(1, 7)), "k": k,
        "strides": [1, 2, (1, 2)][rng.integers(3)], "padding": ["same", "valid"][rng.integers(2)],
        "use_bias": bool(rng.integers(2)),
        "conv_activation": [None, None, "relu", "tanh", "sigmoid"][rng.integers(5)],
        "norm": [None, "trainable", "trainable", "frozen"][rng.integers(4)],
        "act": [None, "relu", "ReLU", "tanh", "sigmoid"][rng.integers(5)],
        "pool": [None, "max2", "max3s2", "avg2", "avg23s12", "global"][rng.integers(6)],
        "dropout": bool(rng.integers(2)),
    }
    if config["norm"] == "trainable" and config["pool"] == "global":
        # one image's channels, normalised over its positions and then averaged over them, are constant:
        # the gradient with respect to the input is 0, both sides round-off. Two images make it not so.
        config["n"] = max(config["n"], 2)
    return config


MAX_POOL_INTO_NORM = [  # max-pooling's gradient straight into BatchNormalization's backward
    # the CIFAR-10 example's order, Conv2D -> BatchNormalization -> ReLU -> MaxPool; an odd height leaves
    # a row no window covers
    {"n": 2, "h": 9, "w": 8, "c": 3, "f": 5, "k": 3, "strides": 1, "padding": "same", "use_bias": True,
     "conv_activation": None, "norm": "trainable", "act": "relu", "pool": "max2", "dropout": True},
    # the tutorials' order, Conv2D(relu) -> BatchNormalization -> MaxPool
    {"n": 3, "h": 8, "w": 9, "c": 1, "f": 4, "k": 3, "strides": 1, "padding": "valid", "use_bias": True,
     "conv_activation": "relu", "norm": "trainable", "act": None, "pool": "max2", "dropout": False},
    # no activation; moving statistics
    {"n": 2, "h": 7, "w": 7, "c": 5, "f": 3, "k": 2, "strides": 1, "padding": "valid", "use_bias": False,
     "conv_activation": None, "norm": "frozen", "act": None, "pool": "max2", "dropout": True},
]
AVERAGE_POOL_INTO_ACTIVATION = [  # average pooling's gradient straight into the activation's backward
    # LeNet-5's: 5x5 on one channel, tanh, 2x2 windows; an odd height and width leave a row and a column
    # no window covers
    {"n": 2, "h": 11, "w": 9, "c": 1, "f": 6, "k": 5, "strides": 1, "padding": "same", "use_bias": True,
     "conv_activation": "tanh", "norm": None, "act": None, "pool": "avg2", "dropout": False},
    # an activation layer after a linear Conv2D, then dropout
    {"n": 3, "h": 8, "w": 8, "c": 3, "f": 4, "k": 3, "strides": 2, "padding": "same", "use_bias": True,
     "conv_activation": None, "norm": None, "act": "ReLU", "pool": "avg2", "dropout": True},
    # global average pooling after sigmoid
    {"n": 2, "h": 7, "w": 6, "c": 5, "f": 3, "k": 3, "strides": 1, "padding": "valid", "use_bias": True,
     "conv_activation": "sigmoid", "norm": None, "act": None, "pool": "global", "dropout": False},
    # the all-convolutional net's classifier: a linear 1x1 Conv2D without bias, then global average pooling
    {"n": 2, "h": 5, "w": 5, "c": 5, "f": 4, "k": 1, "strides": 1, "padding": "valid", "use_bias": False,
     "conv_activation": None, "norm": None, "act": None, "pool": "global", "dropout": True},
]
CONFIGURATIONS = ([random_configuration(seed) for seed in range(40)] + MAX_POOL_INTO_NORM
                  + AVERAGE_POOL_INTO_ACTIVATION)
POOLS = {"max2": lambda: MaxPool2D(2), "max3s2": lambda: MaxPool2D(3, 2), "avg2": lambda: AveragePooling2D(2),
         "avg23s12": lambda: AveragePooling2D((2, 3), (1, 2)), "global": GlobalAveragePooling2D}


def describe(config: dict) -> str:
    return "-".join(f"{key}={value}" for key, value in config.items())


def make_layers(config: dict, dtype) -> tuple[list, np.random.Generator]:
    """The layers of ``config``, built, in ``dtype``, random BatchNormalization weights and statistics."""
    rng = np.random.default_rng(len(describe(config)))
    layers = [Conv2D(config["f"], config["k"], strides=config["strides"], padding=config["padding"],
                     use_bias=config["use_bias"], activation=config["conv_activation"], seed=1, name="conv")]
    if config["norm"]:
        layers.append(BatchNormalization(trainable=config["norm"] == "trainable", name="norm"))
    if config["act"] and config["conv_activation"] is None:
        layers.append(ReLU(name="act") if config["act"] == "ReLU" else Activation(config["act"], name="act"))
    model = Sequential(layers)
    model.build((None, config["h"], config["w"], config["c"]))
    if config["pool"]:
        pool = POOLS[config["pool"]]()
        pool.name = "pool"
        oh, ow, _ = model.output_shape
        size = np.broadcast_to(getattr(pool, "pool_size", 1), 2)  # MaxPool2D's is one int
        if size[0] <= oh and size[1] <= ow:
            model.add(pool)
    if config["dropout"]:
        model.add(Dropout(0.4, seed=2, name="dropout"))
    model.astype(dtype)
    for layer in model.layers:
        if "bias" in layer.params:
            layer.params["bias"][:] = rng.standard_normal(layer.params["bias"].shape)
        if isinstance(layer, BatchNormalization):
            f = layer.params["gamma"].shape
            layer.params["gamma"][:] = rng.uniform(-1.5, 1.5, f)
            layer.params["beta"][:] = rng.standard_normal(f)
            layer.state["moving_mean"][:] = rng.standard_normal(f)
            layer.state["moving_variance"][:] = rng.uniform(0.5, 2.0, f)
    return model.layers, rng


def assert_close(fast, reference, tol, what, scale=0.0):
    """Equal to ``tol`` relative to the largest value of ``reference`` (or ``scale``, if larger)."""
    assert fast.dtype == reference.dtype, what
    scale = max(np.abs(reference).max(), scale, 1e-30)
    np.testing.assert_allclose(fast, reference, rtol=tol, atol=tol * scale, err_msg=what)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("config", CONFIGURATIONS, ids=[f"case{i}" for i in range(len(CONFIGURATIONS))])
def test_conv_block_equals_its_layers(config, dtype):
    layers, rng = make_layers(config, dtype)
    twin = copy.deepcopy(layers)  # the same weights and dropout generator states
    block = ConvBlock.starting_at(layers, 0)
    assert block.layers == layers, describe(config)
    tol = TOLERANCES[dtype]
    x = rng.standard_normal((config["n"], config["h"], config["w"], config["c"])).astype(dtype)
    with use("fast"):
        out = block.forward(x, training=True)
        g = rng.standard_normal(out.shape).astype(dtype)
        dx = block.backward(g)
    with use("reference"):
        expected = x
        for layer in twin:
            expected = layer.forward(expected, training=True)
        d = g
        for layer in reversed(twin):
            d = layer.backward(d)
    assert_close(out, expected, tol, "training output")
    assert_close(dx, d, tol, "dx")
    for layer, reference in zip(layers, twin, strict=True):
        assert layer.grads.keys() == reference.grads.keys() == layer.params.keys()
        for key in layer.grads:
            # a bias before BatchNormalization has the gradient 0, up to the rounding of sums of dz: the
            # size of the kernel's gradient, sums of dz times inputs, measures it
            scale = np.abs(twin[0].grads["kernel"]).max() if key == "bias" and config["norm"] else 0.0
            assert_close(layer.grads[key], reference.grads[key], tol, f"{layer.name}/{key}", scale)
        for key in layer.state:
            assert_close(layer.state[key], reference.state[key], tol, f"{layer.name} {key}")
    with use("fast"):
        inferred = block.forward(x)
    with use("reference"):
        expected = x
        for layer in twin:
            expected = layer.forward(expected)
    assert_close(inferred, expected, tol, "inference output")


def test_the_table_covers_every_form():
    """The random table holds every kernel size, stride, padding, norm, activation and pool it draws from."""
    seen = {key: {str(c[key]) for c in CONFIGURATIONS} for key in CONFIGURATIONS[0]}
    assert seen["k"] == {str(k) for k in range(1, 8)}
    assert seen["strides"] == {"1", "2", "(1, 2)"} and seen["padding"] == {"same", "valid"}
    assert seen["norm"] == {"None", "trainable", "frozen"} and seen["c"] == {"1", "3", "5"}
    assert seen["pool"] == {"None", *POOLS} and seen["use_bias"] == {"True", "False"}
    assert seen["conv_activation"] >= {"relu", "tanh", "sigmoid"}
    orders = {(c["norm"] is not None, c["conv_activation"] is not None) for c in CONFIGURATIONS}
    assert (True, True) in orders and (True, False) in orders  # BN after the conv's activation, and before


def test_max_pooling_feeds_batch_normalization_only_where_the_fused_backward_applies():
    for config in MAX_POOL_INTO_NORM:
        block = ConvBlock.starting_at(make_layers(config, np.float32)[0], 0)
        assert block.max_pool_into_norm, describe(config)
    for change in ({"pool": "max3s2"}, {"act": "tanh"}, {"norm": None}, {"pool": "avg2"}):
        config = dict(MAX_POOL_INTO_NORM[0], **change)
        assert not ConvBlock.starting_at(make_layers(config, np.float32)[0], 0).max_pool_into_norm, change


def test_average_pooling_feeds_the_activation_only_where_the_fused_backward_applies():
    for config in AVERAGE_POOL_INTO_ACTIVATION:
        block = ConvBlock.starting_at(make_layers(config, np.float32)[0], 0)
        assert block.average_pool_into_activation, describe(config)
    for change in ({"pool": "avg23s12"}, {"norm": "trainable"}, {"pool": "max2"}, {"pool": None}):
        config = dict(AVERAGE_POOL_INTO_ACTIVATION[0], **change)
        block = ConvBlock.starting_at(make_layers(config, np.float32)[0], 0)
        assert not block.average_pool_into_activation, change


def test_the_first_step_skips_the_input_gradient_and_the_layers_can_take_over():
    """``input_gradient=False``: no dx. After a fused forward, the layers' own backward chain gives the
    gradients the fused backward gives."""
    config = dict(CONFIGURATIONS[0], norm="trainable", act="relu", conv_activation=None, pool="max2",
                  dropout=True, padding="same")
    layers, rng = make_layers(config, np.float64)
    twin = copy.deepcopy(layers)
    x = rng.standard_normal((config["n"], config["h"], config["w"], config["c"]))
    with use("fast"):
        first = ConvBlock.starting_at(layers, 0, input_gradient=False)
        out = first.forward(x, training=True)
        g = rng.standard_normal(out.shape)
        assert first.backward(g) is None
        ConvBlock.starting_at(twin, 0).forward(x, training=True)
        d = g
        for layer in reversed(twin):
            d = layer.backward(d)
    assert d.shape == x.shape
    for layer in twin:
        for key, grad in layer.grads.items():
            np.testing.assert_allclose(grad, first.grads[f"{layer.name}/{key}"], rtol=1e-10, atol=1e-12)


def test_inference_folds_batch_normalization_into_the_kernel():
    """At inference the step convolves with ``W * s`` and adds ``(b - mean) * s + beta``: the same output
    as convolution then normalisation, for a convolution with and without bias."""
    for use_bias in (True, False):
        config = dict(CONFIGURATIONS[3], norm="trainable", act=None, conv_activation=None, pool=None,
                      dropout=False, use_bias=use_bias)
        layers, rng = make_layers(config, np.float64)
        block = ConvBlock.starting_at(layers, 0)
        kernel, bias = block.folded_weights()
        conv, norm = layers
        s = norm.params["gamma"] / np.sqrt(norm.state["moving_variance"] + norm.epsilon)
        np.testing.assert_allclose(kernel, conv.params["kernel"] * s, rtol=1e-15)
        b = conv.params["bias"] if use_bias else 0.0
        expected = (b - norm.state["moving_mean"]) * s + norm.params["beta"]
        np.testing.assert_allclose(bias, expected, rtol=1e-14)


def test_an_unbuilt_model_builds_every_layer_of_a_fused_step_on_first_use(implementation):
    model = Sequential([Conv2D(3, 3, use_bias=False, seed=0), BatchNormalization(), ReLU(),
                        AveragePooling2D(2)])
    x = np.random.default_rng(0).random((2, 6, 6, 2)).astype(np.float32)
    out = model(x)
    assert out.shape == (2, 2, 2, 3) and all(layer.built for layer in model.layers)
    assert isinstance(model.steps()[0], ConvBlock)


def test_fused_steps_pass_a_numerical_gradient_check():
    """Independently of the reference: each fused step's gradients (input, kernels, bias, gamma, beta)
    against central differences of its own forward, BatchNormalization before and after an activation."""
    from minicnn.gradcheck import check_model

    model = Sequential([Conv2D(4, 3, padding="same", use_bias=False, seed=0, input_shape=(8, 8, 3)),
                        BatchNormalization(), ReLU(), MaxPool2D(2), Dropout(0.3, seed=1),
                        Conv2D(5, 3, strides=2, padding="same", activation="tanh", seed=2),
                        BatchNormalization(), GlobalAveragePooling2D(), Activation("softmax")])
    assert [type(step).__name__ for step in model.steps()] == ["ConvBlock", "ConvBlock", "Activation"]
    model.astype(np.float64)
    x = np.random.default_rng(0).standard_normal((4, 8, 8, 3))
    report = check_model(model, x, np.array([0, 1, 4, 2]), implementation="fast")
    assert report.ok, report
