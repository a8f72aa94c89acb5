"""Importing minicnn is light, and its thread settings are defaults a user can override."""

import json
import os
import subprocess
import sys


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


def test_importing_numpy_first_warns_once_and_says_how_to_fix_it():
    code = ("import warnings, numpy; warnings.simplefilter('default');"
            "import minicnn, importlib; minicnn.threads.apply_defaults()")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    err = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stderr
    assert err.count("RuntimeWarning") == 1
    assert "Import minicnn before numpy, or set OPENBLAS_THREAD_TIMEOUT=1" in err
    quiet = subprocess.run([sys.executable, "-W", "error", "-c", "import minicnn, numpy"], env=env,
                           capture_output=True, text=True)
    assert quiet.returncode == 0, quiet.stderr


def test_set_num_threads_sets_numba_and_blas():
    code = ("import minicnn, numba, threadpoolctl; minicnn.threads.set_num_threads(1);"
            "print(numba.get_num_threads(), {i['num_threads'] for i in threadpoolctl.threadpool_info()"
            " if i['user_api'] == 'blas'})")
    assert run_python(code) == "1 {1}"
