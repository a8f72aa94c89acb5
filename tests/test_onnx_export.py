"""ONNX export (``model.export(path, format="onnx")``, :mod:`minicnn.onnx_export`): every layer and option,
with random weights, run in onnxruntime against ``predict`` in both implementations."""

import sys

import numpy as np
import pytest

pytest.importorskip("onnx", reason="ONNX export needs the onnx extra: pip install -e '.[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="the exported models run in onnxruntime (the onnx extra)")

import onnx  # noqa: E402
from fused.zoo import ZOO  # noqa: E402  (tests/fused/zoo.py: benchmarks/bench_zoo.py's models)

import minicnn  # noqa: E402
from minicnn import (  # noqa: E402
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    Input,
    Layer,
    LeakyReLU,
    MaxPooling2D,
    ReLU,
    Sequential,
    Softmax,
)
from minicnn.experiments.cifar10 import build_model as cifar10_model  # noqa: E402
from minicnn.experiments.published_model import mnist_cnn  # noqa: E402

MODELS = {
    "conv-valid-bias-flatten-dense-softmax": lambda: [
        Input((7, 6, 3)), Conv2D(4, 3, activation="relu"), Flatten(), Dense(5, activation="softmax")],
    "conv-same-stride-2-no-bias-tanh": lambda: [
        Input((9, 8, 2)), Conv2D(3, (3, 2), strides=2, padding="same", use_bias=False, activation="tanh"),
        Flatten(), Dense(4)],
    "conv-same-uneven-strides-sigmoid": lambda: [
        Input((8, 7, 1)), Conv2D(5, (2, 3), strides=(1, 3), padding="same", activation="sigmoid"),
        Conv2D(2, 1, activation="linear"), Flatten(), Dense(3, activation="relu")],
    "maxpool-default-and-overlapping-strides": lambda: [
        Input((10, 10, 2)), MaxPooling2D(2), MaxPooling2D(3, strides=1), Flatten(), Dense(3)],
    "averagepool-rectangular": lambda: [
        Input((9, 8, 3)), AveragePooling2D((3, 2)), AveragePooling2D(2, strides=(1, 2)), Flatten(),
        Dense(2, activation="softmax")],
    "global-average-pooling": lambda: [
        Input((6, 5, 4)), Conv2D(3, 3, padding="same"), GlobalAveragePooling2D(),
        Dense(2, activation="tanh")],
    "batchnorm-images-and-vectors": lambda: [
        Input((6, 6, 3)), BatchNormalization(epsilon=0.01), Conv2D(4, 3), BatchNormalization(),
        Flatten(), Dense(6), BatchNormalization(momentum=0.5), Dense(2)],
    "activation-layers": lambda: [
        Input((5, 5, 2)), ReLU(), LeakyReLU(0.2), Activation("sigmoid"), Activation("tanh"),
        Activation("linear"), Flatten(), LeakyReLU(), Dense(4), Softmax()],
    "softmax-over-image-channels": lambda: [
        Input((4, 4, 3)), Conv2D(3, 1, activation="softmax"), Activation("softmax")],
    "dropout-is-the-identity": lambda: [
        Input((6, 6, 1)), Conv2D(2, 3), Dropout(0.5, seed=1), Flatten(), Dropout(0.3), Dense(3)],
    "vectors-only": lambda: [Input((7,)), Dense(5, activation="relu"), Dropout(0.2), Dense(3)],
    "image-output": lambda: [Input((5, 5, 2)), Conv2D(3, 3, padding="same"), MaxPooling2D(2)],
}
"""Layer lists covering every layer and option minicnn has."""

EXAMPLE_MODELS = {"the-published-mnist-model": lambda: mnist_cnn(seed=0),
                  "the-cifar10-example-model": lambda: cifar10_model(seed=0)}


def build(name):
    if name.startswith("zoo-"):
        return ZOO[name.removeprefix("zoo-")](0)
    return EXAMPLE_MODELS[name]() if name in EXAMPLE_MODELS else Sequential(MODELS[name]())


def randomized(model, seed):
    """``model`` with every weight random (not its initial value), the variances positive."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for key, values in [*layer.params.items(), *layer.state.items()]:
            draw = rng.uniform(0.5, 1.5, values.shape) if key == "moving_variance" else rng.normal(
                0, 0.5, values.shape)
            (layer.params if key in layer.params else layer.state)[key] = draw.astype(np.float32)
    return model


def run_onnx(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["output"], {"input": x})[0]


@pytest.mark.parametrize("name", [*MODELS, *EXAMPLE_MODELS, *(f"zoo-{name}" for name in ZOO)])
def test_the_exported_model_computes_what_predict_computes(name, implementation, tmp_path):
    model = randomized(build(name), seed=len(name))
    x = np.random.default_rng(0).normal(size=(5, *model.input_shape)).astype(np.float32)
    path = tmp_path / "model.onnx"
    model.export(path, format="onnx", verbose=False)
    got = run_onnx(path, x)
    expected = model.predict(x)
    assert got.shape == expected.shape == (5, *model.output_shape)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_the_batch_axis_is_free_and_the_graph_is_nhwc_in_and_out(tmp_path):
    model = randomized(build("image-output"), seed=0)
    model.export(tmp_path / "m.onnx", format="onnx", verbose=False)
    graph = onnx.load(tmp_path / "m.onnx").graph
    dims = [[d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
            for value in (graph.input[0], graph.output[0])]
    assert dims == [["N", 5, 5, 2], ["N", 2, 2, 3]]
    for n in (1, 7):
        x = np.random.default_rng(n).random((n, 5, 5, 2), dtype=np.float32)
        np.testing.assert_allclose(run_onnx(tmp_path / "m.onnx", x), model.predict(x), rtol=1e-5, atol=1e-5)


def test_flatten_keeps_minicnn_channels_last_order(tmp_path):
    """A Dense after Flatten reads (H, W, C) order: a kernel that picks one position tells orders apart."""
    model = Sequential([Input((2, 3, 4)), Flatten(), Dense(1)])
    kernel = np.zeros((24, 1), np.float32)
    kernel[np.ravel_multi_index((1, 0, 2), (2, 3, 4))] = 1.0
    model.layers[-1].set_weights([kernel, np.zeros(1, np.float32)])
    x = np.random.default_rng(0).random((3, 2, 3, 4), dtype=np.float32)
    model.export(tmp_path / "m.onnx", format="onnx", verbose=False)
    np.testing.assert_array_equal(run_onnx(tmp_path / "m.onnx", x)[:, 0], x[:, 1, 0, 2])


def test_export_says_what_it_writes(tmp_path, capsys):
    model = randomized(build("vectors-only"), seed=0)
    model.export(tmp_path / "m.onnx", format="onnx")
    assert capsys.readouterr().out == f"Saved artifact at '{tmp_path / 'm.onnx'}'.\n"


@pytest.mark.parametrize("format", [None, "tf_saved_model", "openvino", "ONNX"])
def test_other_formats_are_an_error_naming_onnx(format, tmp_path):
    model = randomized(build("vectors-only"), seed=0)
    with pytest.raises(ValueError, match=f"format='onnx' only; got format={format!r}"):
        model.export(tmp_path / "m", format=format)
    assert not (tmp_path / "m").exists()


def test_a_layer_without_onnx_form_is_an_error_naming_it(tmp_path):
    class Scale(Layer):
        def forward_pass(self, x, training):
            return 2 * x, {}

    model = Sequential([Input((3,)), Dense(2), Scale(name="scale")])
    with pytest.raises(ValueError, match=r'export: layer "scale" \(Scale\) has no ONNX form; .* Dense'):
        model.export(tmp_path / "m.onnx", format="onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_a_float64_model_is_an_error_saying_how_to_convert(tmp_path):
    model = Sequential([Input((3,)), Dense(2)]).astype(np.float64)
    with pytest.raises(ValueError, match=r"float32 models; this one is float64 \(model.astype"):
        model.export(tmp_path / "m.onnx", format="onnx")


def test_without_the_extra_the_error_names_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "minicnn.onnx_export", raising=False)
    monkeypatch.delattr(minicnn, "onnx_export", raising=False)
    model = Sequential([Input((3,)), Dense(2)])
    with pytest.raises(ModuleNotFoundError, match=r"needs the onnx package: pip install 'minicnn\[onnx\]'"):
        model.export(tmp_path / "m.onnx", format="onnx")
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize(("layers", "message"), [
    ([Dense(2)], "the model is not built yet"),
    ([Input((3,)), Dense(2, name="output")], r"rename the layers called \['output'\]"),
])
def test_a_model_that_cannot_be_exported_is_an_error_saying_why(layers, message, tmp_path):
    with pytest.raises(ValueError, match=f"export: .*{message}"):
        Sequential(layers).export(tmp_path / "m.onnx", format="onnx")
    assert not (tmp_path / "m.onnx").exists()
