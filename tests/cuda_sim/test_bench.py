"""bench/cuda/bench_cuda.py runs end to end (on the simulator, at tiny sizes)."""
import importlib.util
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_bench_cuda_runs(tmp_path, capsys):
    path = os.path.join(ROOT, "bench", "cuda", "bench_cuda.py")
    spec = importlib.util.spec_from_file_location("bench_cuda", path)
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_cuda"] = bench     # dataclasses look their module up there
    spec.loader.exec_module(bench)
    out = tmp_path / "bench.json"
    assert bench.main(["--size", "tiny", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    data = json.loads(out.read_text())
    kinds = {r["kind"] for r in data["rows"]}
    assert kinds == {"ceiling", "elementwise", "reduction", "rowwise", "matmul", "opaque", "training"}
    assert all(r["ms"] > 0 for r in data["rows"])
    assert data["info"]["simulator"] is True and "simulator" in text
