"""The cuda backend in the main test process (no GPU, no simulator here).

* The simulator suite (tests/cuda_sim) runs in its own process with
  NUMBA_ENABLE_CUDASIM=1 (numba reads it at import): launched from here, so the single
  README test command runs it, and this test fails if it fails.
* Asking for cuda without a GPU is one clear error that says what to do.
* Code generation needs no GPU (the PTX tests, test_cuda_ptx.py, compile what it makes).
"""
import os
import subprocess
import sys
from xml.etree import ElementTree

import numpy as np
import pytest

import jitgrad
import jitgrad.numpy as jnp
from jitgrad import jit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_simulator_suite(tmp_path):
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", JITGRAD_CACHE_DIR=str(tmp_path / "cache"))
    report = tmp_path / "cuda_sim.xml"
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-W", "ignore::RuntimeWarning",
           f"--junitxml={report}", os.path.join("tests", "cuda_sim")]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, f"NUMBA_ENABLE_CUDASIM=1 {' '.join(cmd[1:])} failed:\n{tail}"
    suite = ElementTree.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    ran = int(suite.get("tests")) - int(suite.get("skipped", 0))
    assert ran >= 200 and suite.get("failures") == "0" and suite.get("errors") == "0", tail


def test_no_gpu_is_a_clear_error():
    from jitgrad.backends.cuda import runtime
    from jitgrad.backends.cuda.runtime import CudaUnavailableError
    f = jit(lambda x: x + 1, backend="cuda")
    if runtime.is_available():   # a machine with a GPU: the backend must simply work
        out = f(np.ones(2, np.float32))
        np.testing.assert_array_equal(np.asarray(out), [2, 2])
        return
    with pytest.raises(CudaUnavailableError) as info:
        jitgrad.devices("cuda")
    message = str(info.value)
    assert "NUMBA_ENABLE_CUDASIM=1" in message and "backend='cpu'" in message
    with pytest.raises(CudaUnavailableError, match="NUMBA_ENABLE_CUDASIM"):
        f(np.ones(2, np.float32))
    with pytest.raises(CudaUnavailableError):
        jitgrad.device_put(np.ones(2), "cuda")


def test_codegen_needs_no_gpu():
    from jitgrad.backends import cuda as jc
    x = np.ones((4, 8), np.float32)
    closed = jitgrad.api.optimize(jitgrad.make_ir(
        lambda x: jnp.exp(x - jnp.max(x, axis=-1, keepdims=True)))(x))
    prog = jc.generate(closed)
    assert "@cuda.jit" in prog.source and prog.entry == "prog0"
    assert [i.kind for i in prog.infos.values()] == ["rowwise"]
