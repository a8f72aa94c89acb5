"""How to add a layer, proven (``docs/architecture.md#how-to-add-a-layer``): a layer class, its section of
``docs/backprop.md``, one spec entry, and every check of the spec passes; a wrong backward fails them.

The class is defined here, registered in a registry of its own (so minicnn's ``LAYERS`` stays as it
is: nothing to clean up) and loaded through ``custom_objects``, as a user's own layer is.
"""

import numpy as np
import pytest
from test_docs import backprop_anchors

from minicnn import Input, Sequential, gradcheck, load_model
from minicnn.layers import Layer
from minicnn.registry import LAYERS, Registry
from minicnn.saving import ModelFileError

from .spec import LayerSpec, check_contract, check_forward, check_gradients, check_keras, check_save_and_load

MY_LAYERS = Registry("layer")


@MY_LAYERS.register()
class Scale(Layer):
    """``out = x * scale``: one trainable scale per channel (the last axis); any shape in, same shape out.

    Backward: ``dx = dout * scale``; ``dscale`` sums ``dout * x`` over every axis but the last.
    """

    default_name = "scale"
    docs_section = "the-layer-contract"

    def build(self, input_shape: tuple) -> None:
        super().build(input_shape)
        self.params = {"scale": np.ones(self.input_shape[-1], self.dtype)}

    def forward_pass(self, x, training):
        return x * self.params["scale"], {"x": x}

    def backward_pass(self, dout, cache):
        batch_axes = tuple(range(dout.ndim - 1))
        return dout * self.params["scale"], {"scale": (dout * cache["x"]).sum(axis=batch_axes)}


def scale(x, weights, config, training):
    """Scale's definition: each channel ``c`` of ``x`` times ``scale[c]``."""
    out = np.zeros_like(x)
    for c in range(x.shape[-1]):
        out[..., c] = x[..., c] * weights["scale"][c]
    return out


SCALE = LayerSpec("scale", lambda: Scale(), ((3, 4, 4, 2), (5, 3)), scale,
                  custom_objects={name: MY_LAYERS[name] for name in MY_LAYERS.names()}, keras=False)
"""The one spec entry the new layer needs."""


class ScaleForgettingScale(Scale):
    """A wrong backward: ``dx = dout``, as if the scale were 1."""

    def backward_pass(self, dout, cache):
        _, grads = super().backward_pass(dout, cache)
        return dout.copy(), grads


def test_the_new_layer_passes_forward_gradients_and_contract(implementation):
    check_forward(SCALE, implementation)
    check_gradients(SCALE, implementation)
    check_contract(SCALE, implementation)


def test_the_new_layer_saves_and_loads_through_custom_objects(tmp_path):
    check_save_and_load(SCALE, tmp_path)
    Sequential([Input((3,)), Scale()]).save(tmp_path / "m.npz")
    with pytest.raises(ModelFileError, match=r"unknown class 'Scale'.*custom_objects=\{'Scale': Scale\}"):
        load_model(tmp_path / "m.npz")  # registered nowhere minicnn looks


def test_the_new_layer_has_no_keras_twin():
    with pytest.raises(pytest.skip.Exception, match="scale: no Keras twin"):
        check_keras(SCALE)


def test_a_wrong_backward_fails_the_gradient_check(implementation):
    broken = LayerSpec("scale, wrong backward", ScaleForgettingScale, SCALE.shapes, scale,
                       custom_objects={"ScaleForgettingScale": ScaleForgettingScale}, keras=False)
    check_forward(broken, implementation)  # the forward is right: only the gradient check can tell
    with pytest.raises(AssertionError, match=r'layer "scale" \(ScaleForgettingScale\)') as failure:
        check_gradients(broken, implementation)
    failed = [line.split()[0] for line in str(failure.value).splitlines() if line.endswith("<-- FAIL")]
    assert failed == ["x"]  # its dscale is right


def test_reports_point_at_its_docs_section_and_nothing_joins_minicnns_registry():
    report = gradcheck.check_layer(Scale(), np.ones((2, 3)))
    assert report.sections == {report.subject: "docs/backprop.md#the-layer-contract"}
    assert Scale.docs_section in backprop_anchors()
    assert MY_LAYERS.names() == ["Scale"]
    assert "Scale" not in LAYERS and "ScaleForgettingScale" not in LAYERS
