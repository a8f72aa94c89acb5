"""Importing minicnn is light, its thread settings are defaults a user can override, and every
third-party module it imports is declared in pyproject.toml."""

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("OPENBLAS_THREAD_TIMEOUT", "OMP_WAIT_POLICY")}
    environment.update(env)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env=environment)
    return done.stdout.strip()


def test_import_loads_no_heavy_optional_module():
    """scikit-learn, matplotlib and tqdm are imported where used, so `import minicnn` stays fast."""
    loaded = run_python("import sys, json, minicnn; print(json.dumps(sorted(m for m in "
                        "('sklearn', 'matplotlib', 'tqdm', 'tensorflow', 'keras') if m in sys.modules)))")
    assert json.loads(loaded) == []


def test_thread_settings_are_defaults_the_user_can_override():
    code = ("import os, minicnn; print(os.environ['OPENBLAS_THREAD_TIMEOUT'], "
            "os.environ['OMP_WAIT_POLICY'])")
    assert run_python(code) == "1 PASSIVE"
    assert run_python(code, OPENBLAS_THREAD_TIMEOUT="50", OMP_WAIT_POLICY="ACTIVE") == "50 ACTIVE"


OPENBLAS_STATE = """
import ctypes, json, os, warnings, threadpoolctl
warnings.simplefilter("error")
def openblas():  # per OpenBLAS with its own threads: [its thread timeout, whether its threads run]
    found = []
    for info in threadpoolctl.threadpool_info():
        if info["internal_api"] == "openblas" and info["threading_layer"] == "pthreads":
            library = ctypes.CDLL(info["filepath"], mode=os.RTLD_NOLOAD)
            library.openblas_thread_timeout.restype = ctypes.c_uint
            found.append([library.openblas_thread_timeout(),
                          ctypes.c_int.in_dll(library, "blas_server_avail").value])
    return found
"""


def test_importing_numpy_first_is_no_problem_openblas_takes_the_timeout_at_import():
    code = OPENBLAS_STATE + ("import numpy; loaded = openblas(); import minicnn; imported = openblas();"
                             "numpy.ones((300, 300)) @ numpy.ones((300, 300));"
                             "print(json.dumps([loaded, imported, openblas()]))")
    loaded, imported, used = json.loads(run_python(code))  # warnings are errors: there is none
    if not loaded:
        pytest.skip("NumPy's BLAS is no OpenBLAS with its own threads")
    assert loaded == [[0, 1]]  # OpenBLAS loaded without the variable, its threads started
    assert imported == [[1, 0]]  # it read the variable again, and its threads stopped ...
    assert used == [[1, 1]]  # ... to start again, with the new timeout, at the next parallel call
    user = run_python(code, OPENBLAS_THREAD_TIMEOUT="50")
    assert json.loads(user) == [[[50, 1]]] * 3  # the user's value, read at load, left alone
    quiet = subprocess.run([sys.executable, "-W", "error", "-c", "import minicnn, numpy"],
                           env={k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"},
                           capture_output=True, text=True)
    assert quiet.returncode == 0, quiet.stderr


def test_set_num_threads_sets_numba_and_blas():
    code = ("import minicnn, numba, threadpoolctl; minicnn.threads.set_num_threads(1);"
            "print(numba.get_num_threads(), {i['num_threads'] for i in threadpoolctl.threadpool_info()"
            " if i['user_api'] == 'blas'})")
    assert run_python(code) == "1 {1}"


REQUIREMENT_OF = {"sklearn": "scikit-learn", "distributed": "dask", "PIL": "pillow"}
"""The requirement that provides an import whose name differs from it (``dask[distributed]``)."""

NEEDED_UNIMPORTED = {"scipy": "minicnn/fused/winograd.py"}
"""Requirements minicnn never imports but needs: Numba compiles np.dot in these kernels into SciPy's BLAS."""


EXTRA_MODULES = {"minicnn.onnx_export", "minicnn.tensorboard_logs"}
"""minicnn's modules that exist for an optional extra: other modules import them only inside a function,
so what they import at module level is imported lazily too."""


def third_party_imports() -> tuple[dict[str, bool], list[str]]:
    """Each third-party top-level module imported under ``minicnn/`` -> whether some module imports it
    at module level (True), not only inside a function (a lazy import of an optional extra); and the
    places that import one of :data:`EXTRA_MODULES` at module level (there should be none)."""
    found: dict[str, bool] = {}
    eager_extras: list[str] = []

    def visit(node: ast.AST, at_top: bool, path: Path) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            if isinstance(node, ast.ImportFrom) and node.module == "minicnn":
                names += [f"minicnn.{a.name}" for a in node.names]
            for name in names if getattr(node, "level", 0) == 0 else []:
                top = name.split(".")[0]
                if top != "minicnn" and top not in sys.stdlib_module_names:
                    found[top] = found.get(top, False) or at_top
                if name in EXTRA_MODULES and at_top:
                    eager_extras.append(f"{path.relative_to(ROOT)} imports {name}")
        for child in ast.iter_child_nodes(node):
            visit(child, at_top and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef), path)

    stubs = ROOT / "minicnn" / "exercises" / "stubs"  # students' files: they import each other's answers
    for path in sorted(p for p in (ROOT / "minicnn").rglob("*.py") if not p.is_relative_to(stubs)):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        visit(ast.parse(path.read_text(encoding="utf-8")), module not in EXTRA_MODULES, path)
    return found, eager_extras


def requirement_names(requirements: list[str]) -> set[str]:
    return {re.match(r"[A-Za-z0-9_.-]+", r)[0].lower().replace("_", "-") for r in requirements}


def test_every_imported_module_is_declared_in_pyproject():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    required = requirement_names(project["dependencies"])
    optional = set().union(*(requirement_names(r) for r in project["optional-dependencies"].values()))
    imports, eager_extras = third_party_imports()
    assert eager_extras == [], "these make an optional extra a requirement of importing minicnn"
    assert {"numpy", "numba", "joblib", "threadpoolctl", "keras", "distributed"} <= set(imports)  # found
    for module, at_top in imports.items():
        requirement = REQUIREMENT_OF.get(module, module)
        if at_top:
            assert requirement in required, f"minicnn imports {module} at module level; declare {requirement}"
        else:
            assert requirement in required | optional, f"minicnn imports {module}; declare {requirement}"
    for requirement, user in NEEDED_UNIMPORTED.items():
        assert "np.dot" in (ROOT / user).read_text(encoding="utf-8")
        assert requirement in required, f"{user} needs {requirement} at run time; declare it"


def test_the_version_is_defined_once_and_installed_as_such():
    """``minicnn.__version__`` is the one definition: the installed metadata (pyproject.toml reads it) and
    CHANGELOG.md's first release heading agree with it."""
    from importlib import metadata

    import minicnn

    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(r"^## \[(\d[^\]]*)\]", changelog, re.MULTILINE)[1] == minicnn.__version__
    assert 'dynamic = ["version"]' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    try:
        installed = metadata.distribution("minicnn")
    except metadata.PackageNotFoundError:
        pytest.skip("minicnn is not installed (pip install -e .), so there is no metadata to compare")
    source = json.loads(installed.read_text("direct_url.json") or "{}")
    checkout = Path(source.get("url", "").removeprefix("file://")).resolve()
    if source.get("dir_info", {}).get("editable") and checkout != ROOT:
        pytest.skip(f"the installed minicnn is another checkout ({source['url']}), not this one")
    assert installed.version == minicnn.__version__
