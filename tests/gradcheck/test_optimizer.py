"""check_optimizer (:mod:`minicnn.gradcheck.optimizer`): optimizers against their textbook formula."""

import numpy as np
import pytest

from minicnn import SGD, Adam, gradcheck


@pytest.mark.parametrize("optimizer", [Adam(), Adam(0.01, beta_1=0.5, beta_2=0.9), SGD(0.1),
                                       SGD(0.1, momentum=0.9)], ids=repr)
def test_optimizers_follow_their_textbook_formula(optimizer):
    report = gradcheck.check_optimizer(optimizer, steps=4)
    report.assert_ok()
    assert len(report.checks) == 8  # two parameters, four steps
    assert optimizer.iterations == 0 and optimizer.state == {}  # a copy was stepped


def test_a_wrong_momentum_is_caught(monkeypatch):
    def update(self, name, param, grad):
        velocity = np.zeros_like(param)  # a fresh velocity every step: the state is never kept
        velocity = self.momentum * velocity - self.learning_rate * grad
        param += velocity

    monkeypatch.setattr(SGD, "update", update)
    report = gradcheck.check_optimizer(SGD(0.1, momentum=0.9))
    assert not report.ok and report.blamed == ["SGD"]
    errors = {c.name: c.relative_error for c in report.checks}
    assert errors["step 1: w"] < 1e-12 and errors["step 2: w"] > 1e-2  # the first step has no momentum yet
    assert "SGD.update" in str(report)
    assert "derivation: docs/backprop.md#sgd-with-nesterov-momentum" in str(report)
