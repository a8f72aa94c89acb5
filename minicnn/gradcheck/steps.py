"""A step (a layer or a fused step) or the loss as a check sees it: forward in training mode, backward,
the gradients that can be compared, and the generator states that replay its dropout masks."""

from __future__ import annotations

import numpy as np

from minicnn.gradcheck.compare import Checker
from minicnn.gradcheck.report import Problem, TensorCheck
from minicnn.layers import Dropout, Layer
from minicnn.layers.base import Step, hook_result


class CheckedStep:
    """A step, as a check sees it: forward in training mode, the maths of its backward, parameters.

    The backward is the step's hook (``backward_pass``) rather than ``backward``: where the layer
    contract raises at the first wrong gradient, a check names every one and goes on.
    """

    def __init__(self, step: Step, affine_only: bool = False):
        self.step = step
        self.affine_only = affine_only  # forward_affine / backward_affine_pass: the loss takes over from z
        self.layers: list[Layer] = step.layers
        self.fused = len(self.layers) > 1
        self.name = step.name or step.layers[0].default_name  # a layer outside a model has no name yet
        self.kind = type(step)
        self.label = step.label()

    @property
    def params(self) -> dict[str, np.ndarray]:
        return self.step.params

    def param_key(self, key: str) -> str:
        """The end-to-end name of a parameter, as the model names it: ``"conv2d/kernel"``. A layer keys
        its parameters by their own name (``"kernel"``); a fused step keys them so already."""
        return key if "/" in key else f"{self.name}/{key}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.step.forward_affine(x, True) if self.affine_only else self.step.forward(x, training=True)

    def backward(self, g: np.ndarray) -> tuple:
        """``(dx, grads)`` from the step's backward hook, on the cache of the last forward."""
        hook = self.step.backward_affine_pass if self.affine_only else self.step.backward_pass
        return hook_result(self.step, hook, hook(g, self.step.cache), "(dx, grads)")

    def switches(self) -> list[np.ndarray]:
        """The discrete choices of the last training forward: ReLU masks and max-pool winners."""
        found = []
        for part in dict.fromkeys([self.step, *self.layers]):  # the step, then its layers, each once
            cache = part.cache or {}
            if "argmax" in cache:
                found.append(cache["argmax"])
            a = cache.get("a")  # dict.get: an entry a fused step defers is not computed here
            if a is not None and getattr(part, "activation", None) == "relu":
                found.append(a > 0)
        return found

    def analytic(self, x: np.ndarray, g: np.ndarray, problems: list[Problem],
                 forward_done: bool = False) -> dict[str, np.ndarray]:
        """``{"x": dx, key: dW, ...}`` from one backward with upstream gradient ``g``: those that can be
        compared; a problem for each that cannot (a raised error, a wrong shape, a missing gradient)."""
        if not forward_done:
            self.forward(x)
        try:
            dx, grads = self.backward(g)
        except Exception as exc:  # a student's backward may raise anything: name the step instead
            detail = str(exc).removeprefix(f"{self.label}: ")
            problems.append(Problem(self.name, f"{self.label}: backward raised {type(exc).__name__}: "
                                               f"{detail}"))
            return {}
        if not isinstance(grads, dict):
            problems.append(Problem(self.name, f"{self.label}: grads is {type(grads).__name__}; expected "
                                               f"a dict under the keys of params, {sorted(self.params)}"))
            grads = {}
        return _check_shapes(self, x, dx, grads, problems)

    def compare(self, x: np.ndarray, g: np.ndarray, analytic: dict, check: Checker,
                state: list | None = None, label_step: bool = True) -> list[TensorCheck]:
        """Each tensor of this step against finite differences of ``sum(forward(x) * g)``."""
        state = generator_states([self]) if state is None else state
        x = x.copy()

        def f() -> tuple[float, list]:
            restore_generators(state)
            return float((self.forward(x) * g).sum()), self.switches()

        targets = {"x": x, **self.params}
        return [check.tensor(name, self.name if label_step else None, target, analytic[name], f,
                             _dropout_factors(self.layers))
                for name, target in targets.items() if name in analytic]


class LossStep:
    """The loss as a step: logits ``z`` (N, K) in, the mean loss out, ``dz`` back."""

    name = "loss"

    def __init__(self, loss_fn, y: np.ndarray):
        self.loss_fn, self.y = loss_fn, y
        self.label = f"loss ({type(loss_fn).__name__})"

    def analytic(self, z: np.ndarray, _g, problems: list[Problem]) -> dict[str, np.ndarray] | None:
        try:
            _, dz = self.loss_fn.loss_and_gradient(z, self.y)
        except Exception as exc:  # as for a step: name it instead of crashing
            problems.append(Problem(self.name, f"{self.label}: raised {type(exc).__name__}: {exc}"))
            return None
        if not isinstance(dz, np.ndarray) or dz.shape != z.shape:
            got = dz.shape if isinstance(dz, np.ndarray) else type(dz).__name__
            problems.append(Problem(self.name, f"{self.label}: dz has shape {got}; expected {z.shape}, "
                                               "the shape of the logits z"))
            return None
        return {"z": dz}

    def value(self, z: np.ndarray) -> float:
        return self.loss_fn.loss_and_gradient(z, self.y)[0]

    def compare(self, z: np.ndarray, analytic: dict, check: Checker) -> list[TensorCheck]:
        z = z.copy()
        return [check.tensor("z", self.name, z, analytic["z"], lambda: (self.value(z), []))]


def _check_shapes(step: CheckedStep, x: np.ndarray, dx, grads: dict, problems: list[Problem]
                  ) -> dict[str, np.ndarray]:
    """The analytic gradients that can be compared: ``"x"`` and each parameter's, each only if it
    has the right shape and is finite. Every one that cannot is a problem naming the step."""
    candidates = {"x": (dx, x.shape, "dx", "its input")}
    candidates |= {key: (grads.get(key), param.shape, f"the gradient of {key!r}", "the parameter")
                   for key, param in step.params.items()}
    analytic = {}
    for key, (grad, shape, what, of) in candidates.items():
        if key != "x" and grad is None:
            message = (f"backward left no gradient for {key!r} in grads (it must fill the same keys as "
                       f"params: {sorted(step.params)}; got {sorted(grads)})")
        elif not isinstance(grad, np.ndarray):
            message = f"{what} is {type(grad).__name__}; expected an array of shape {shape}"
        elif grad.shape != shape:
            message = f"{what} has shape {grad.shape}; expected {shape}, the shape of {of}"
        elif not np.isfinite(grad).all():
            message = f"{what} contains NaN or Inf"
        else:
            analytic[key] = grad.copy()
            continue
        problems.append(Problem(step.name, f"{step.label}: {message}"))
    return analytic


def _dropout_factors(layers: list[Layer]) -> list[tuple[float, str]]:
    found = []
    for layer in layers:
        if isinstance(layer, Dropout) and layer.rate > 0:
            keep = 1.0 - layer.rate
            found += [(keep, f"the dropout scale 1/(1 - rate) = {1 / keep:.4g} is missing in {layer.name}"),
                      (1 / keep, f"the dropout scale 1/(1 - rate) is applied twice in {layer.name}")]
    return found


def generator_states(steps) -> list[tuple[np.random.Generator, dict]]:
    """The state of every layer generator (Dropout's ``rng``) in ``steps``, to replay masks with."""
    return [(layer.rng, layer.rng.bit_generator.state) for step in steps for layer in step.layers
            if isinstance(getattr(layer, "rng", None), np.random.Generator)]


def restore_generators(states: list[tuple[np.random.Generator, dict]]) -> None:
    for generator, state in states:
        generator.bit_generator.state = state
