"""jitgrad.explain / to_dot: the sections they show, and that their kernels are the compiled ones."""
import os
import stat
import sys
import warnings

import numpy as np
import pytest

import jitgrad
import jitgrad.numpy as jnp
from jitgrad import jit
from jitgrad.explain import _fused_program


def _cpu_backends() -> list[str]:
    """The host backends (the GPU ones are covered by the CUDA backend's own tests)."""
    return ["reference", "cpu"]


def dense_softmax(x, w, b):
    h = jnp.maximum(x @ w + b, 0.0) * 1.0          # "* 1.0": something for a pass to remove
    z = h - jnp.max(h, axis=-1, keepdims=True)
    return jnp.exp(z) / jnp.sum(jnp.exp(z), axis=-1, keepdims=True)


def _args():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((6, 5)).astype(np.float32),
            rng.standard_normal((5, 4)).astype(np.float32),
            rng.standard_normal(4).astype(np.float32))


def _jit_executable(jf):
    """The executable ``jf`` (a JitFunction that has run once) compiled."""
    entries = [e for k, e in jf._cache.items() if k[4] == jf._options]
    assert len(entries) == 1
    return entries[0]


@pytest.fixture(scope="module", params=_cpu_backends())
def explained(request):
    """One explanation per backend (compiling is the slow part), shared by the tests below."""
    backend = request.param
    return backend, jitgrad.explain(dense_softmax, backend=backend, profile=True,
                                    profile_runs=2)(*_args())


def test_explain_shows_every_section(explained):
    backend, ex = explained
    text = str(ex)
    for section in ("== traced IR", "== optimisation passes", "== kernels:", "== generated source",
                    "== compile time", "== profile"):
        assert section in text, section
    assert text.startswith("jitgrad.explain: dense_softmax(x: f32[6,5], w: f32[5,4], b: f32[4])")
    # The traced IR is there verbatim, and the pass that removed "* 1.0" says so and shows
    # the IR after it.
    assert str(jitgrad.make_ir(dense_softmax)(*_args())) in text
    changed = [r for r in ex.pass_reports if r.changed]
    assert changed and any("x*1" in r.description for r in changed)
    assert "mul" not in [e.primitive.name for e in ex.optimized.ir.eqns]
    # Every kernel lists its ops and bytes, and neighbours left apart have a reason.
    for k in ex.kernels:
        assert f"[{k.index}] {k.name} ({k.kind})" in text
        assert k.bytes_read > 0 and k.bytes_written > 0
    assert len(ex.separations) == len(ex.kernels) - 1
    for s in ex.separations:
        assert f"-- not fused with [{s.after}]: {s.reason}" in text
    # The profile has one timing per kernel.
    assert ex.profile is not None and len(ex.profile) == len(ex.kernels)
    assert all(p["median_s"] > 0 for p in ex.profile)
    for step in ("trace", "optimisation passes", "backend compile"):
        assert step in text


def test_explain_kernels_are_the_compiled_executables_groups(explained):
    backend, ex = explained
    args = _args()
    fused = _fused_program(ex.executable)
    jf = jit(dense_softmax, backend=backend)
    np.testing.assert_allclose(np.asarray(jf(*args)), np.asarray(ex.executable(*args)[0]),
                               rtol=1e-5, atol=1e-6)
    entry = _jit_executable(jf)
    assert str(entry.closed) == str(ex.optimized)        # the same optimised program
    jit_fused = _fused_program(entry.executable)
    if fused is None:
        # The reference backend runs each equation on its own: one kernel per equation.
        assert jit_fused is None
        assert [k.ops for k in ex.kernels] == [[e.primitive.name] for e in entry.closed.ir.eqns]
        return
    # explain shows the very group objects the executable was generated from ...
    assert ex.fused is fused
    assert [k.group for k in ex.kernels] == list(fused.groups)
    assert [k.eqns for k in ex.kernels] == [list(g.eqns) for g in fused.groups]
    # ... and they are the groups jit compiled for the same call.
    assert [(g.name, g.kind, [e.primitive.name for e in g.eqns]) for g in jit_fused.groups] == \
        [(k.name, k.kind, k.ops) for k in ex.kernels]
    assert ex.source and all(k.name in ex.source for k in ex.kernels if k.kind != "fallback")


def test_explain_accepts_a_jitted_function_and_static_args():
    @jit
    def f(x):
        return jnp.tanh(x) + 1.0

    ex = jitgrad.explain(f, backend="reference")(np.ones(3, np.float32))
    assert ex.function == "f" and len(ex.kernels) == 2

    def g(x, n):
        return x * n

    ex = jitgrad.explain(g, static_argnums=1, backend="reference")(np.ones(3, np.float32), 4)
    assert "4.0:f32[]" in str(ex.traced)


def test_to_dot_draws_kernels_as_clusters(tmp_path):
    args = _args()
    ex = jitgrad.explain(dense_softmax)(*args)
    dot = jitgrad.to_dot(dense_softmax)(*args)
    assert dot.startswith('digraph "jitgrad: dense_softmax" {') and dot.rstrip().endswith("}")
    assert dot.count("subgraph cluster_") == len(ex.kernels)
    for i in range(len(ex.optimized.ir.eqns)):
        assert f"  e{i} [label=" in dot or f"    e{i} [label=" in dot
    assert dot.count("[shape=ellipse, label=") == 3           # the three arguments
    path = tmp_path / "g.dot"
    written = jitgrad.to_dot(dense_softmax, path=path)(*args)
    assert path.read_text() == str(written) and "wrote DOT" in written.message


def test_to_dot_without_graphviz_says_so_and_writes_the_dot_text(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)        # import graphviz -> ImportError
    monkeypatch.setenv("PATH", str(tmp_path))                 # and no dot program
    path = tmp_path / "g.svg"
    with pytest.warns(UserWarning, match="cannot render"):
        dot = jitgrad.to_dot(dense_softmax, path=path)(*_args())
    assert "neither the graphviz Python package nor the dot program" in dot.message
    assert (tmp_path / "g.svg.dot").read_text() == str(dot) and not path.exists()


def test_to_dot_renders_with_the_dot_program(tmp_path, monkeypatch):
    # A stand-in `dot` that records its arguments and copies its input to the -o file.
    fake = tmp_path / "dot"
    fake.write_text(f"#!{sys.executable}\nimport sys\nargs = sys.argv[1:]\n"
                    "open(args[args.index('-o') + 1], 'w').write(' '.join(args[:1]) + '\\n' + sys.stdin.read())\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setitem(sys.modules, "graphviz", None)
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ.get("PATH", ""))
    path = tmp_path / "g.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dot = jitgrad.to_dot(dense_softmax, path=path)(*_args())
    assert "(dot)" in dot.message
    assert path.read_text() == "-Tpng\n" + str(dot)
