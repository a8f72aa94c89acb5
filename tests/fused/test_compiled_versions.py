"""Cold start: a float32 model compiles each minicnn kernel once, not once per integer type or constant.

Runs in a subprocess on an empty Numba cache, so every kernel, helpers included, is compiled
there (from a warm cache only the outer kernels load, and a helper's versions never show).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Trains and runs the seed model (a small-window and a Winograd convolution, with their
# backward passes), then lists every minicnn kernel's compiled signatures.
SCRIPT = """
import json
import numpy as np
import minicnn
from minicnn.experiments.published_model import mnist_cnn
from minicnn.trainers.progress import minicnn_kernels
rng = np.random.default_rng(0)
x = rng.random((64, 28, 28, 1), dtype=np.float32)
y = minicnn.to_categorical(rng.integers(0, 10, 64), 10)
model = mnist_cnn(seed=0)
model.compile(optimizer="adam", loss="categorical_crossentropy")
model.fit(x, y, batch_size=32, epochs=1, verbose=0, seed=0)
model.predict(x, batch_size=32, verbose=0)
print(json.dumps({f"{k.py_func.__module__}.{k.py_func.__name__}": [str(s) for s in k.signatures]
                  for k in minicnn_kernels()}))
"""


@pytest.mark.slow
def test_seed_model_compiles_each_kernel_once(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    env.pop("MINICNN_IMPLEMENTATION", None)  # the fast implementation, whose kernels compile
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                          check=True)
    signatures = json.loads(done.stdout.strip().splitlines()[-1])
    assert "minicnn.fused.winograd._bt" in signatures  # the helpers did compile here
    repeated = {name: sigs for name, sigs in signatures.items() if len(sigs) > 1}
    assert repeated == {}
