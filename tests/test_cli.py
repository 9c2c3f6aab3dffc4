"""The ``jitgrad`` command end to end, in subprocesses, on tiny sizes."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jitgrad import cli
from jitgrad.benchmarking.suite import KERNELS

ROOT = Path(__file__).resolve().parents[1]

USER_MODULE = '''
import jitgrad
import jitgrad.numpy as jnp

@jitgrad.jit
def dense(x, w):
    return jnp.tanh(x @ w) * 2.0

def not_jitted(x):
    return jnp.sum(x * x)
'''


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Environment of the subprocesses: this checkout importable, a private cache directory."""
    cache = tmp_path_factory.mktemp("cache")
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e["JITGRAD_CACHE_DIR"] = str(cache)
    return e


def run(env, *args, cwd=None):
    return subprocess.run([sys.executable, "-m", "jitgrad", *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


# ----------------------------------------------------------------------------- schema

def validate(value, schema, where="$"):
    """The subset of JSON Schema that ``cli.JSON_SCHEMA`` uses (no third-party validator needed)."""
    types = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
    if "const" in schema:
        assert value == schema["const"], f"{where}: {value!r} != {schema['const']!r}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    if "type" in schema:
        allowed = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        ok = False
        for t in allowed:
            if t == "integer":
                ok |= isinstance(value, int) and not isinstance(value, bool)
            elif t == "number":
                ok |= isinstance(value, (int, float)) and not isinstance(value, bool)
            else:
                ok |= isinstance(value, types[t])
        assert ok, f"{where}: {value!r} is not of type {allowed}"
    if isinstance(value, dict):
        for key in schema.get("required", []):
            assert key in value, f"{where}: missing {key!r}"
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                validate(item, props[key], f"{where}.{key}")
            elif extra is False:
                raise AssertionError(f"{where}: unexpected key {key!r}")
            elif isinstance(extra, dict):
                validate(item, extra, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            validate(item, schema["items"], f"{where}[{i}]")


def test_schema_is_documented_in_the_module_docstring():
    doc = cli.__doc__
    for key in list(cli.JSON_SCHEMA["properties"]) + list(cli.JSON_SCHEMA["properties"]["results"]
                                                          ["items"]["properties"]):
        assert f'"{key}"' in doc, key
    assert "schema_version 1" in doc and cli.SCHEMA_VERSION == 1


def test_validator_rejects_a_broken_document():
    with pytest.raises(AssertionError, match="missing 'results'"):
        validate({k: None for k in cli.JSON_SCHEMA["required"] if k != "results"}, cli.JSON_SCHEMA)


# ----------------------------------------------------------------------------- bench

def test_bench_whole_suite_tiny(env, tmp_path):
    out_json, out_csv, out_png = tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "r.png"
    # The reference backend keeps this fast (no numba compiles); tests/test_explain.py and
    # tests/test_debug.py run the compiling backends.
    p = run(env, "bench", "--tiny", "--backend", "reference", "--repeat", 2, "--warmup", 1,
            "--ceilings", "quick",
            "--json", out_json, "--csv", out_csv, "--plot", out_png)
    assert p.returncode == 0, p.stderr
    data = json.loads(out_json.read_text())
    validate(data, cli.JSON_SCHEMA)
    assert [r["kernel"] for r in data["results"]] == list(KERNELS)
    assert data["backend"] == "reference"
    assert data["settings"] == {"repeat": 2, "warmup": 1, "compare": list(cli.COMPARISONS)}
    assert data["ceilings"]["quick"] is True and data["ceilings"]["triad_gbs"] > 0
    for r in data["results"]:
        assert r["status"] in ("ok", "unavailable"), r
        if r["status"] == "unavailable":
            assert r["reason"] and r["kernel"] in ("softmax_xent_grad", "mlp_step"), r
            continue
        assert r["size"] == KERNELS[r["kernel"]].tiny_size
        assert len(r["times_s"]) == 2 and r["p10_s"] <= r["median_s"] <= r["p90_s"]
        assert r["compile_s"] > 0 and r["bytes"] > 0 and r["flops"] > 0
        assert r["gbs"] == pytest.approx(r["bytes"] / r["median_s"] / 1e9)
        assert r["roofline_pct"] > 0
        numpy = r["comparisons"]["numpy"]
        assert numpy["status"] == "ok" and numpy["speedup"] > 0
        for name in ("jax", "torch"):       # not installed here, or run: never fatal
            c = r["comparisons"][name]
            assert c["status"] == "ok" or c["reason"], c
    for name, why in data["missing_libraries"].items():
        assert f"comparison {name} skipped: {why}" in p.stdout
    # The table lists every kernel; the progress bar went to stderr.
    for name in KERNELS:
        assert name in p.stdout
    header = next(line for line in p.stdout.splitlines() if line.startswith("kernel "))
    assert "median" in header and "% roofline" in header and "vs numpy" in header
    assert "it/s" in p.stderr or "kernel/s" in p.stderr
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["kernel"] for r in rows] == list(KERNELS) and "speedup_numpy" in rows[0]
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_user_function_with_shapes(env, tmp_path):
    (tmp_path / "usermod.py").write_text(USER_MODULE)
    out = tmp_path / "u.json"
    p = run(env, "bench", "usermod:dense", "--shape", "16x8:f32", "--shape", "8x4",
            "--backend", "reference", "--repeat", 2, "--warmup", 1, "--ceilings", "none", "--compare", "numpy",
            "--json", out, "--no-progress", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    data = json.loads(out.read_text())
    validate(data, cli.JSON_SCHEMA)
    (r,) = data["results"]
    assert r["status"] == "ok" and r["kernel"] == "usermod:dense"
    assert r["size"] == "16x8:float32,8x4:float32"
    assert r["bytes"] == 4 * (16 * 8 + 8 * 4 + 16 * 4)
    assert r["flops"] >= 2 * 16 * 8 * 4
    assert r["roofline_pct"] is None and data["ceilings"] is None
    assert r["comparisons"]["numpy"]["status"] == "ok"
    # A path to a file works too.
    p = run(env, "bench", tmp_path / "usermod.py:not_jitted", "--shape", "32",
            "--backend", "reference", "--repeat", 1,
            "--warmup", 0, "--ceilings", "none", "--compare", "none", "--no-progress")
    assert p.returncode == 0, p.stderr
    assert "not_jitted" in p.stdout


def test_bench_reports_a_wrong_kernel_as_failure(env, tmp_path):
    (tmp_path / "badmod.py").write_text("def boom(x):\n    raise RuntimeError('kaput')\n")
    p = run(env, "bench", "badmod:boom", "--shape", "4", "--repeat", 1, "--warmup", 0,
            "--ceilings", "none", "--no-progress", cwd=tmp_path)
    assert p.returncode == 1
    assert "failed: RuntimeError: kaput" in p.stdout


def test_list_and_help(capsys):
    assert cli.main(["bench", "--list"]) == 0
    listing = capsys.readouterr().out
    assert all(k in listing for k in KERNELS)
    assert cli.main(["bench", "--help"]) == 0
    assert "--compare" in capsys.readouterr().out


def _cuda_usable() -> bool:
    try:
        import numba.cuda
        return numba.cuda.is_available()
    except Exception:
        return False


BAD = [
    (["bench", "no_such_kernel"], "unknown kernel 'no_such_kernel'"),
    (["bench", "elementwise", "--sizes", "12x"], "bad element count '12x'"),
    (["bench", "matmul_bias_relu@64x64"], "bad size '64x64'"),
    (["bench", "usermod:dense", "--shape", "16xx8:f32"], "bad shape '16xx8:f32'"),
    (["bench", "usermod:dense", "--shape", "16x8:f99"], "unknown dtype 'f99'"),
    (["bench", "usermod:dense"], "needs --shape"),
    (["bench", "no_such_module:f", "--shape", "4"], "cannot import 'no_such_module'"),
    (["bench", "elementwise", "--backend", "tpu"], "unknown or unavailable backend 'tpu'"),
    (["bench", "elementwise", "--repeat", "0"], "--repeat must be at least 1"),
    (["bench", "elementwise", "--compare", "numpy,matlab"], "unknown comparison 'matlab'"),
    (["bench", "--repeat", "many"], "invalid int value: 'many'"),
    (["explain", "usermod:dense", "--shape", "8x"], "bad shape '8x'"),
    (["explain", "usermod:dense", "--shape", "8x4", "--backend", "tpu"], "backend 'tpu'"),
    (["frobnicate"], "unknown command 'frobnicate'"),
] + ([] if _cuda_usable() else [(["bench", "elementwise", "--backend", "cuda"], "backend 'cuda'")])


@pytest.mark.parametrize("argv,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_arguments_give_one_line_and_status_2(tmp_path, monkeypatch, capsys, argv, message):
    (tmp_path / "usermod.py").write_text(USER_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "usermod", raising=False)
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert message in lines[0] and "error" in lines[0]


# End to end through `python -m jitgrad`: the three kinds of bad argument the issue names.
BAD_E2E = [BAD[0], BAD[3], BAD[7]]


@pytest.mark.parametrize("argv,message", BAD_E2E, ids=[" ".join(a) for a, _ in BAD_E2E])
def test_bad_arguments_end_to_end(env, tmp_path, argv, message):
    (tmp_path / "usermod.py").write_text(USER_MODULE)
    p = run(env, *argv, cwd=tmp_path)
    assert p.returncode == 2 and p.stdout == ""
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and message in lines[0], p.stderr


def test_parse_shape():
    assert cli.parse_shape("128x64:f64")[0] == (128, 64)
    assert cli.parse_shape("scalar:i32")[0] == () and cli.parse_shape(":bool")[1].kind == "b"
    assert cli.parse_shape("7")[1].name == "float32"
    with pytest.raises(cli.UsageError):
        cli.parse_shape("a:b:c")


# ----------------------------------------------------------------------------- explain

def test_explain_command(env, tmp_path):
    (tmp_path / "usermod.py").write_text(USER_MODULE)
    p = run(env, "explain", "usermod:dense", "--shape", "16x8:f32", "--shape", "8x4:f32",
            "--backend", "reference", "--profile", "--dot", tmp_path / "g.dot", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert out.startswith("jitgrad.explain: dense(x: f32[16,8], w: f32[8,4])")
    for section in ("== traced IR", "== optimisation passes", "== kernels:", "== generated source",
                    "== compile time", "== profile"):
        assert section in out
    assert "dot_general" in out and "tanh" in out
    assert (tmp_path / "g.dot").read_text().startswith("digraph")
