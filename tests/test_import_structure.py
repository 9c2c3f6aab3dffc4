"""The import graph of the jitgrad package follows the pipeline of DESIGN.md.

DESIGN.md: "Data flows one way. Each stage is a folder or module that imports only from
the stages before it; nothing in the core knows a backend exists." The layers, lowest
first (a module may import, at module level, only modules of its own layer or of a
lower one):

 0 core        jitgrad/core/         abstract values, IR, primitives, traces, pytrees, and the
                                     vocabulary rules are written in (core/rules.py)
 1 ops         jitgrad/ops/          the primitives, each with all its rules
 2 transforms  jitgrad/transforms/   jvp, linearize/vjp/grad, vmap, checkpoint
 3 passes      jitgrad/passes/       IR -> IR rewrites and fusion
 4 backends    jitgrad/backends/     reference, cpu (numba), cuda (numba.cuda)
 5 api         api.py (jit, make_ir, the executable cache), debug.py (debug_nans, which
               api's call path checks), placement.py (devices, device_put)
 6 lax         lax.py, tree.py       thin user-level wrappers of the primitives / pytrees
 7 numpy       jitgrad/numpy/        built on lax
 8 random      random.py             built on lax and numpy
 9 libraries   nn/, optim.py, data.py
10 training    training.py           built on all of the above
11 tools       explain.py, benchmarking/, test_util.py, cli.py, __main__.py
12 package     jitgrad/__init__.py   re-exports the public API

Module-level imports must point down (or sideways) and have no cycles. Imports inside
functions run after the package is loaded, so a few point up on purpose; the core may
not have any, and the ones of ``ops`` are an explicit list below, each with its reason.

Run this file as a script to print the strongly connected components of the graph
(module level, and with function-level imports too): ``python tests/test_import_structure.py``.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "jitgrad"

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("core", ("jitgrad.core",)),
    ("ops", ("jitgrad.ops",)),
    ("transforms", ("jitgrad.transforms",)),
    ("passes", ("jitgrad.passes",)),
    ("backends", ("jitgrad.backends",)),
    ("api", ("jitgrad.api", "jitgrad.debug", "jitgrad.placement")),
    ("lax", ("jitgrad.lax", "jitgrad.tree")),
    ("numpy", ("jitgrad.numpy",)),
    ("random", ("jitgrad.random",)),
    ("libraries", ("jitgrad.nn", "jitgrad.optim", "jitgrad.data")),
    ("training", ("jitgrad.training",)),
    ("tools", ("jitgrad.explain", "jitgrad.benchmarking", "jitgrad.test_util", "jitgrad.cli",
               "jitgrad.__main__")),
    ("package", ("jitgrad",)),
)

# Function-level imports from ops to a higher layer, each needed by a rule when it runs
# (always after the whole package is loaded). New ones should go through core/rules.py.
KNOWN_LAZY_UPWARD_FROM_OPS = {
    # cond/while/scan rules transform their sub-programs with the transformations
    # themselves (batch_ir, eval_batched, jvp_ir, partial_eval_ir, backward_pass).
    ("jitgrad.ops.control", "jitgrad.transforms.batching"),
    ("jitgrad.ops.control", "jitgrad.transforms.jvp"),
    ("jitgrad.ops.control", "jitgrad.transforms.partial_eval"),
    ("jitgrad.ops.control", "jitgrad.transforms.transpose"),
    # the JVP of cumprod/cummax/cummin/cumlogsumexp is forward mode run on a prefix scan.
    ("jitgrad.ops.reductions", "jitgrad.transforms.jvp"),
    # lax.reduce_window (defined in ops/windows.py) recognises lax.add / lax.max / lax.min.
    ("jitgrad.ops.windows", "jitgrad.lax"),
}


# --------------------------------------------------------------------------- the graph

def module_files(package_dir: Path) -> dict[str, Path]:
    """Every module of the package under ``package_dir``, by dotted name."""
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _targets(node: ast.AST, module: str, is_package: bool, modules: dict) -> list[str]:
    """The package modules an import statement loads (``from a import b``: ``a.b`` if it is
    a module, else ``a``)."""
    root = module.split(".")[0]
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[:len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        names = [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source
                 for a in node.names]
    out = []
    for name in names:
        if name != root and not name.startswith(root + "."):
            continue
        while name not in modules:          # `import a.b.c` of a name inside a module
            name = name.rpartition(".")[0]
        out.append(name)
    return out


def import_graph(package_dir: Path) -> dict[str, set[tuple[str, bool, int]]]:
    """``{module: {(imported module, at_module_level, line)}}`` for the package's own modules.

    Imports in a function body are not at module level; those in a class body or under an
    ``if``/``try`` at module level are (they run when the module is imported).
    """
    modules = module_files(package_dir)
    graph: dict[str, set[tuple[str, bool, int]]] = {m: set() for m in modules}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"

        def visit(node: ast.AST, top: bool) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    for target in _targets(child, module, is_package, modules):
                        if target != module:
                            graph[module].add((target, top, child.lineno))
                else:
                    visit(child, top and not isinstance(
                        child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

        visit(ast.parse(path.read_text(), str(path)), True)
    return graph


def cycles(graph: dict, module_level_only: bool) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    succ = {m: sorted({t for t, top, _ in es if top or not module_level_only})
            for m, es in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in succ[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(succ):
        if v not in index:
            strongconnect(v)
    return found


def layer_of(module: str, layers=LAYERS) -> int | None:
    """The index of ``module``'s layer (longest matching prefix), or None."""
    best = None
    for i, (_, prefixes) in enumerate(layers):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and (best is None or len(p) > best[1]):
                best = (i, len(p))
    return None if best is None else best[0]


def upward_imports(graph: dict, module_level_only: bool, layers=LAYERS) -> list[str]:
    """Every import of a module from a higher layer, as readable lines."""
    out = []
    for module in sorted(graph):
        for target, top, line in sorted(graph[module]):
            if module_level_only and not top:
                continue
            if layer_of(target, layers) > layer_of(module, layers):
                out.append(f"{module} (layer {layers[layer_of(module, layers)][0]}, line {line}) "
                           f"imports {target} (layer {layers[layer_of(target, layers)][0]})")
    return out


# --------------------------------------------------------------------------- the tests

GRAPH = import_graph(ROOT / PACKAGE)


def test_the_graph_sees_the_package():
    # Guards the checks below against passing vacuously on an empty or mis-parsed graph.
    assert len(GRAPH) > 50
    module_level = {m: {t for t, top, _ in es if top} for m, es in GRAPH.items()}
    assert "jitgrad.core.rules" in module_level["jitgrad.ops.elementwise"]
    assert "jitgrad.ops.elementwise" in module_level["jitgrad.lax"]


def test_every_module_belongs_to_a_layer():
    missing = [m for m in GRAPH if layer_of(m) is None]
    assert not missing, f"add these modules to LAYERS in {__file__}: {missing}"


def test_no_module_level_import_points_to_a_higher_layer():
    bad = upward_imports(GRAPH, module_level_only=True)
    assert not bad, ("imports against the pipeline (DESIGN.md: each stage imports only from "
                     "the stages before it):\n  " + "\n  ".join(bad))


def test_no_import_cycles_at_module_level():
    found = cycles(GRAPH, module_level_only=True)
    assert not found, f"module-level import cycles: {found}"


def test_the_core_imports_nothing_above_it_even_inside_functions():
    bad = [line for line in upward_imports(GRAPH, module_level_only=False)
           if line.startswith("jitgrad.core")]
    assert not bad, "\n".join(bad)


def test_ops_import_only_the_core_apart_from_the_known_rule_imports():
    lazy = {(m, t) for m in GRAPH if m.startswith("jitgrad.ops")
            for t, _, _ in GRAPH[m] if layer_of(t) > layer_of(m)}
    new = sorted(lazy - KNOWN_LAZY_UPWARD_FROM_OPS)
    assert not new, ("ops modules importing higher layers (write the rule with "
                     f"jitgrad/core/rules.py instead): {new}")


def test_the_checks_find_an_upward_import_and_a_cycle(tmp_path):
    # A small package with one violation of each kind: the checks must report both.
    pkg = tmp_path / "jitgrad"
    for d in ("core", "ops"):
        (pkg / d).mkdir(parents=True)
        (pkg / d / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("from . import ops\n")
    (pkg / "core" / "a.py").write_text("from ..ops import b\n")              # core -> ops
    (pkg / "ops" / "b.py").write_text("from ..core import a\nimport jitgrad.ops.c\n")
    (pkg / "ops" / "c.py").write_text("def f():\n    from . import b\n")   # a lazy cycle
    graph = import_graph(pkg)
    layers = (("core", ("jitgrad.core",)), ("ops", ("jitgrad.ops",)), ("package", ("jitgrad",)))
    assert upward_imports(graph, True, layers) == [
        "jitgrad.core.a (layer core, line 1) imports jitgrad.ops.b (layer ops)"]
    assert cycles(graph, module_level_only=True) == [["jitgrad.core.a", "jitgrad.ops.b"]]
    assert cycles(graph, module_level_only=False) == [
        ["jitgrad.core.a", "jitgrad.ops.b", "jitgrad.ops.c"]]


def test_importing_jitgrad_does_not_load_numba_or_scipy():
    # numba costs seconds to import and scipy about one: they load when a backend compiles
    # or a special function runs, never on `import jitgrad` or its user-level libraries.
    code = ("import sys, jitgrad, jitgrad.numpy, jitgrad.lax, jitgrad.random, jitgrad.nn, "
            "jitgrad.optim, jitgrad.data, jitgrad.training\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'numba', 'llvmlite', 'scipy'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


if __name__ == "__main__":
    for module_level_only in (True, False):
        what = "module-level imports" if module_level_only else "all imports (functions too)"
        found = cycles(GRAPH, module_level_only)
        print(f"== {what}: {len(found)} cycle(s)")
        for component in found:
            print("  " + ", ".join(component))
            members = set(component)
            for m in component:
                for t, top, line in sorted(GRAPH[m]):
                    if t in members and (top or not module_level_only):
                        print(f"    {m}:{line} -> {t}{'' if top else '  (in a function)'}")
        for line in upward_imports(GRAPH, module_level_only):
            print("  upward: " + line)
