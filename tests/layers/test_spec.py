"""Every entry of the layer spec (``spec.py``) through every check: forward against its definition,
gradient check, the layer contract (each in both implementations), save and load, and Keras parity."""

import os

import pytest

from minicnn.layers import Input
from minicnn.registry import LAYERS

from .spec import SPECS, check_contract, check_forward, check_gradients, check_keras, check_save_and_load

every_spec = pytest.mark.parametrize("spec", SPECS, ids=[spec.id for spec in SPECS])


@every_spec
def test_forward_matches_the_definition(spec, implementation):
    check_forward(spec, implementation)


@every_spec
def test_gradients_pass_gradcheck(spec, implementation):
    check_gradients(spec, implementation)


@every_spec
def test_backward_keeps_the_layer_contract(spec, implementation):
    check_contract(spec, implementation)


@every_spec
def test_save_and_load_give_the_same_layer(spec, tmp_path):
    check_save_and_load(spec, tmp_path)


@every_spec
def test_matches_keras(spec):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: no C++ start-up chatter
    pytest.importorskip("tensorflow", reason='the Keras parity tests need pip install -e ".[keras]"')
    check_keras(spec)


def test_every_registered_layer_has_a_spec_entry():
    """A new layer class registered without an entry in SPECS fails here (Input computes nothing)."""
    covered = {type(spec.make()) for spec in SPECS}
    assert [cls.__name__ for cls in LAYERS.objects() if cls not in covered and cls is not Input] == []
    assert len({spec.id for spec in SPECS}) == len(SPECS)  # unique test ids
