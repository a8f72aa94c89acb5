"""The report of a gradient check: each compared tensor, its worst entries, the problems, and a table.

A :class:`GradcheckReport` prints as a table (one row per tensor: shape, relative error,
``max |diff|``, checked entries, kinks) followed by ``OK`` or a diagnosis: the steps to look at
first, each failing tensor's worst entries and hint, and the docs section that derives it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TOLERANCE = 1e-6
WORST = 3
"""How many of the worst entries a failing tensor shows."""


@dataclass
class Entry:
    """One compared entry of a tensor: where it is, and the two gradients there."""

    index: tuple[int, ...]
    analytic: float
    numeric: float
    names: tuple[str, str] = ("analytic", "numeric")
    """What the two values are called: an optimizer check compares an update with the expected one."""

    @property
    def ratio(self) -> float:
        return self.analytic / self.numeric + 0.0 if self.numeric != 0 else float("nan")  # + 0.0: no "-0"

    def __str__(self) -> str:
        first, second = self.names
        return (f"index {self.index}: {first} {self.analytic:.6g}, {second} {self.numeric:.6g}, "
                f"ratio {self.ratio:.4g}")


@dataclass
class TensorCheck:
    """The comparison for one tensor: ``x`` (the input), ``z`` (the logits) or a parameter name.

    ``step`` names the layer (or fused step, or ``"loss"``) whose own backward this checks;
    None for an end-to-end check of a whole model. ``checked`` counts the compared entries,
    kinks left out; ``kinks`` the entries left out.
    """

    name: str
    shape: tuple
    relative_error: float
    max_abs_error: float
    checked: int
    kinks: int = 0
    step: str | None = None
    worst: list[Entry] = field(default_factory=list)
    hint: str = ""

    @property
    def key(self) -> str:
        """``"x"``, ``"conv2d/kernel"`` end to end; ``"max_pooling2d:x"``, ``"loss:z"`` step by step."""
        return f"{self.step}:{self.name}" if self.step else self.name


@dataclass
class Problem:
    """A backward that cannot be compared at all: it raised, or gave a wrong shape or no gradient."""

    step: str
    message: str


@dataclass
class GradcheckReport:
    """The results of one gradient check; ``print`` it or call :meth:`assert_ok`.

    ``checks``: the tensors of a layer, or of a model end to end. ``step_checks``: each step
    of a model against its own forward. ``problems``: what could not be compared.
    """

    title: str
    eps: float
    tolerance: float = TOLERANCE
    checks: list[TensorCheck] = field(default_factory=list)
    step_checks: list[TensorCheck] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    checked: str = ""
    """What ran: the implementation, its kernels and the fused steps."""
    sections: dict[str, str] = field(default_factory=dict)
    """The docs section for each step name."""
    labels: dict[str, str] = field(default_factory=dict)
    """How the report names each step: ``layer "conv2d" (Conv2D)``."""
    subject: str = ""
    """The layer a layer check checks (blamed when one of its tensors fails)."""

    @property
    def ok(self) -> bool:
        return not self.problems and not self.failures

    @property
    def failures(self) -> list[TensorCheck]:
        return [c for c in self.checks + self.step_checks if not c.relative_error < self.tolerance]

    @property
    def errors(self) -> dict[str, float]:
        """Relative error by tensor key (see :attr:`TensorCheck.key`)."""
        return {c.key: c.relative_error for c in self.checks + self.step_checks}

    @property
    def kinks(self) -> int:
        """Entries left out of pass/fail because a ReLU or a max-pool winner switches within ±eps."""
        return sum(c.kinks for c in self.checks + self.step_checks)

    @property
    def blamed(self) -> list[str]:
        """The steps whose own backward is wrong, from the loss back; the failing tensors' owners if
        no step check ran (a layer check, or a bug the step checks cannot see)."""
        named = [p.step for p in self.problems] + [c.step for c in self.failures if c.step]
        if not named and self.failures:
            named = [self.subject] if self.subject else [c.name.split("/")[0] for c in self.failures
                                                         if "/" in c.name]
        return list(dict.fromkeys(named))

    def __str__(self) -> str:
        eps = f", eps={self.eps:g}" if self.eps else ""
        lines = [f"gradcheck {self.title}: float64{eps}, tolerance {self.tolerance:g}"]
        if self.checked:
            lines.append(f"  checked: {self.checked}")
        if self.checks:
            lines += _table(self.checks, self.tolerance, "end to end: the loss against each tensor"
                            if self.step_checks else "")
        if self.step_checks:
            lines += _table(self.step_checks, self.tolerance,
                            "step by step: each backward against its own forward, "
                            "with the upstream gradient the model gives it")
        if self.kinks:
            lines.append(f"  kinks: {self.kinks} entries left out (a ReLU mask or a max-pool winner "
                         "switches within ±eps, so there is no derivative to compare)")
            unchecked = [c.key for c in self.checks + self.step_checks if c.kinks and not c.checked]
            if unchecked:
                lines.append(f"  only kinks, so not compared: {', '.join(unchecked)}; check these layers "
                             "with check_layer on random inputs")
        lines.append("  OK" if self.ok else self._diagnosis())
        return "\n".join(lines)

    def _diagnosis(self) -> str:
        lines = ["  FAILED"]
        if self.blamed:
            lines.append(f"  look first at: {', '.join(self.labels.get(s, s) for s in self.blamed)}")
        lines += [f"  - {p.message}" for p in self.problems]
        shown = [c for c in self.failures if c.step] or self.failures
        for c in shown:
            lines.append(f"  - {c.key}: relative error {c.relative_error:.2e}"
                         + (f"; {c.hint}" if c.hint else ""))
            lines += [f"      {e}" for e in c.worst]
        docs = [self.sections[s] for s in self.blamed if s in self.sections]
        if docs:
            lines.append(f"  derivation: {', '.join(dict.fromkeys(docs))}")
        return "\n".join(lines)

    def assert_ok(self) -> None:
        """Raise an AssertionError with the whole report if anything fails."""
        if not self.ok:
            raise AssertionError(f"gradient check failed:\n{self}")


def _table(checks: list[TensorCheck], tolerance: float, heading: str) -> list[str]:
    lines = [f"  {heading}"] if heading else []
    w = max([30, *(len(c.key) + 1 for c in checks)])
    lines.append(f"  {'tensor':<{w}} {'shape':<18} {'rel. error':>11} {'max |diff|':>11} {'checked':>8} "
                 f"{'kinks':>6}")
    for c in checks:
        flag = "" if c.relative_error < tolerance else "  <-- FAIL"
        lines.append(f"  {c.key:<{w}} {str(c.shape):<18} {c.relative_error:>11.2e} {c.max_abs_error:>11.2e} "
                     f"{c.checked:>8} {c.kinks:>6}{flag}")
    return lines
