"""Tests for jitgrad.core.pytree (JAX tree_util semantics)."""
from __future__ import annotations

import ast
import dataclasses
import pathlib
import subprocess
import sys
from collections import OrderedDict, defaultdict, namedtuple

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from jitgrad.core import pytree as pt
from jitgrad.core.pytree import (
    DictKey, FlattenedIndexKey, GetAttrKey, PyTreeDef, SequenceKey, all_leaves, keystr,
    register_dataclass, register_pytree_node, register_pytree_node_class,
    register_pytree_with_keys, tree_all, tree_flatten, tree_flatten_with_path, tree_leaves,
    tree_leaves_with_path, tree_map, tree_map_with_path, tree_reduce, tree_structure,
    tree_transpose, tree_unflatten, treedef_children, treedef_is_leaf,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]

Point = namedtuple("Point", ["x", "y"])


class Box:
    """A custom node: children (a, b), aux data `tag`."""

    def __init__(self, a, b, tag):
        self.a, self.b, self.tag = a, b, tag

    def __eq__(self, other):
        return type(other) is Box and (self.a, self.b, self.tag) == (other.a, other.b, other.tag)

    def __repr__(self):
        return f"Box({self.a!r}, {self.b!r}, {self.tag!r})"


register_pytree_node(Box, lambda b: ((b.a, b.b), b.tag), lambda tag, ch: Box(*ch, tag))


# ------------------------------------------------------------------ strategies

leaf_values = st.one_of(st.integers(), st.text(max_size=3), st.booleans())
keys = st.text(alphabet="abcdefgh", min_size=1, max_size=3)


def _containers(children):
    return st.one_of(
        st.lists(children, max_size=4).map(tuple),
        st.lists(children, max_size=4),
        st.dictionaries(keys, children, max_size=4),
        st.dictionaries(keys, children, max_size=4).map(OrderedDict),
        st.dictionaries(keys, children, max_size=3).map(lambda d: defaultdict(list, d)),
        st.builds(Point, children, children),
        st.builds(Box, children, children, st.sampled_from(["p", "q"])),
    )


trees = st.recursive(st.one_of(leaf_values, st.none()), _containers, max_leaves=20)


def strict_equal(a, b) -> bool:
    """Equality that also checks container types and dict key order (Point(1, 2) ==
    (1, 2) in Python, but they are different pytrees)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        if list(a) != list(b):
            return False
        if isinstance(a, defaultdict) and a.default_factory is not b.default_factory:
            return False
        return all(strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, Box):
        return a.tag == b.tag and strict_equal(a.a, b.a) and strict_equal(a.b, b.b)
    return a == b


def skeleton(t):
    """The structure of a tree computed independently of pytree.py."""
    if t is None:
        return ("None",)
    if type(t) in (dict, defaultdict):
        ks = sorted(t)
        extra = t.default_factory if type(t) is defaultdict else None
        return (type(t), tuple(ks), extra, tuple(skeleton(t[k]) for k in ks))
    if type(t) is OrderedDict:
        return (OrderedDict, tuple(t), tuple(skeleton(v) for v in t.values()))
    if type(t) in (tuple, list, Point):
        return (type(t), tuple(skeleton(x) for x in t))
    if type(t) is Box:
        return (Box, t.tag, skeleton(t.a), skeleton(t.b))
    return "*"


def count_leaves(t) -> int:
    if t is None:
        return 0
    if type(t) in (dict, defaultdict, OrderedDict):
        return sum(count_leaves(v) for v in t.values())
    if type(t) in (tuple, list, Point):
        return sum(count_leaves(x) for x in t)
    if type(t) is Box:
        return count_leaves(t.a) + count_leaves(t.b)
    return 1


def sorted_dicts(t):
    """What JAX returns from unflatten: plain dicts (and defaultdicts) in sorted-key
    order; OrderedDicts keep insertion order."""
    if type(t) is dict:
        return {k: sorted_dicts(t[k]) for k in sorted(t)}
    if type(t) is defaultdict:
        return defaultdict(t.default_factory, {k: sorted_dicts(t[k]) for k in sorted(t)})
    if type(t) is OrderedDict:
        return OrderedDict((k, sorted_dicts(v)) for k, v in t.items())
    if type(t) in (tuple, list):
        return type(t)(sorted_dicts(x) for x in t)
    if type(t) is Point:
        return Point(*(sorted_dicts(x) for x in t))
    if type(t) is Box:
        return Box(sorted_dicts(t.a), sorted_dicts(t.b), t.tag)
    return t


# ------------------------------------------------------------------ round trips

@settings(max_examples=150, deadline=None)
@given(trees)
def test_round_trip(tree):
    leaves, treedef = tree_flatten(tree)
    assert treedef.num_leaves == len(leaves) == count_leaves(tree)
    rebuilt = tree_unflatten(treedef, leaves)
    assert strict_equal(rebuilt, sorted_dicts(tree))
    assert tree_structure(rebuilt) == treedef
    assert tree_leaves(tree) == leaves


@settings(max_examples=100, deadline=None)
@given(trees)
def test_tree_map_preserves_structure_and_order(tree):
    leaves = tree_leaves(tree)
    numbered = iter(range(len(leaves)))
    mapped = tree_map(lambda x: next(numbered), tree)
    assert tree_structure(mapped) == tree_structure(tree)
    assert tree_leaves(mapped) == list(range(len(leaves)))
    pairs = tree_map(lambda a, b: (a, b), tree, mapped)
    assert tree_leaves(pairs, is_leaf=lambda x: type(x) is tuple and len(x) == 2
                       and type(x[1]) is int) == list(zip(leaves, range(len(leaves))))


@settings(max_examples=150, deadline=None)
@given(trees, trees)
def test_treedef_equality_matches_skeleton(t1, t2):
    d1, d2 = tree_structure(t1), tree_structure(t2)
    assert (d1 == d2) == (skeleton(t1) == skeleton(t2))
    if d1 == d2:
        assert hash(d1) == hash(d2)
    # Same structure with other leaves: equal, equal hashes, usable as a dict key.
    d1b = tree_structure(tree_map(lambda x: object(), t1))
    assert d1b == d1 and hash(d1b) == hash(d1)
    assert {d1: "hit"}[d1b] == "hit"


def test_treedef_not_equal_to_other_types():
    assert tree_structure((1, 2)) != (None, None)
    assert tree_structure(1) != "*"


# ---------------------------------------------------------------- containers

def test_dict_sorted_order_and_unflatten_sorted():
    leaves, td = tree_flatten({"b": 1, "a": 2, "c": 3})
    assert leaves == [2, 1, 3]
    out = tree_unflatten(td, [10, 20, 30])
    assert list(out) == ["a", "b", "c"] and out == {"a": 10, "b": 20, "c": 30}
    # Insertion order does not matter for a plain dict's structure.
    assert tree_structure({"a": 0, "b": 0}) == tree_structure({"b": 0, "a": 0})


def test_ordereddict_keeps_insertion_order():
    od = OrderedDict([("b", 1), ("a", 2)])
    leaves, td = tree_flatten(od)
    assert leaves == [1, 2]
    out = td.unflatten([5, 6])
    assert type(out) is OrderedDict and list(out.items()) == [("b", 5), ("a", 6)]
    assert td != tree_structure(OrderedDict([("a", 1), ("b", 2)]))
    assert td != tree_structure({"b": 1, "a": 2})


def test_defaultdict_keeps_factory():
    dd = defaultdict(list, {"y": 1, "x": 2})
    leaves, td = tree_flatten(dd)
    assert leaves == [2, 1]
    out = td.unflatten([3, 4])
    assert type(out) is defaultdict and out.default_factory is list
    assert dict(out) == {"x": 3, "y": 4}
    assert td != tree_structure(defaultdict(int, {"y": 1, "x": 2}))


def test_none_is_a_node_without_leaves():
    assert tree_leaves(None) == []
    assert tree_leaves({"a": None, "b": 1, "c": [None, 2]}) == [1, 2]
    assert tree_map(lambda x: x + 1, {"a": None, "b": 1}) == {"a": None, "b": 2}
    assert tree_structure(None) != tree_structure(1)
    assert repr(tree_structure([None, 1])) == "PyTreeDef([None, *])"


def test_namedtuple_is_a_node_distinct_from_tuple():
    leaves, td = tree_flatten(Point(1, (2, 3)))
    assert leaves == [1, 2, 3]
    out = td.unflatten([4, 5, 6])
    assert type(out) is Point and out == Point(4, (5, 6))
    assert td != tree_structure((1, (2, 3)))
    assert repr(td) == "PyTreeDef(Point(x=*, y=(*, *)))"


def test_dict_subclass_is_a_leaf():
    class MyDict(dict):
        pass
    d = MyDict(a=1)
    assert tree_leaves([d]) == [d]


def test_leaves_are_any_objects():
    arr = np.arange(3)
    leaves, td = tree_flatten({"w": arr, "s": 1.5, "o": "str"})
    assert leaves[0] == "str" and leaves[1] == 1.5 and leaves[2] is arr
    assert tree_structure(arr) == tree_structure(2)
    assert repr(tree_structure(arr)) == "PyTreeDef(*)"


def test_repr():
    assert repr(tree_structure({"a": 1, "b": (2, 3)})) == "PyTreeDef({'a': *, 'b': (*, *)})"
    assert repr(tree_structure((1,))) == "PyTreeDef((*,))"
    assert repr(tree_structure([])) == "PyTreeDef([])"
    assert repr(tree_structure(Box(1, [2], "t"))) == "PyTreeDef(CustomNode(Box['t'], [*, [*]]))"
    assert repr(tree_structure(OrderedDict(b=1))) == "PyTreeDef(OrderedDict({'b': *}))"


def test_num_leaves_num_nodes_children():
    td = tree_structure({"a": 1, "b": (2, None)})
    assert td.num_leaves == 2
    assert td.num_nodes == 5  # dict, leaf, tuple, leaf, None
    kids = td.children()
    assert kids == treedef_children(td)
    assert kids == [tree_structure(0), tree_structure((0, None))]
    assert kids[1].num_leaves == 1
    assert td.node_data() == (dict, ("a", "b"))
    assert tree_structure(1).node_data() is None


def test_treedef_is_leaf_and_all_leaves():
    assert treedef_is_leaf(tree_structure(1))
    assert treedef_is_leaf(tree_structure(None))  # a single node, as in JAX
    assert not treedef_is_leaf(tree_structure((1,)))
    assert all_leaves([1, np.zeros(2), "s"])
    assert not all_leaves([1, (2,)])
    assert not all_leaves([None])
    assert all_leaves([(1, 2)], is_leaf=lambda x: isinstance(x, tuple))


# ------------------------------------------------------------------- is_leaf

def test_is_leaf_stops_descent():
    tree = [(1, 2), (3, (4, 5))]
    is_pair = lambda x: isinstance(x, tuple)  # noqa: E731
    assert tree_leaves(tree, is_leaf=is_pair) == [(1, 2), (3, (4, 5))]
    assert tree_structure(tree, is_leaf=is_pair) == tree_structure([0, 0])
    assert tree_map(lambda p: p[0], tree, is_leaf=is_pair) == [1, 3]
    leaves, td = tree_flatten(tree, is_leaf=is_pair)
    assert td.num_leaves == 2 and td.unflatten(leaves) == tree


def test_is_leaf_can_make_none_a_leaf():
    tree = {"a": None, "b": 1}
    assert tree_leaves(tree, is_leaf=lambda x: x is None) == [None, 1]
    assert tree_map(lambda x: 0 if x is None else x, tree, is_leaf=lambda x: x is None) \
        == {"a": 0, "b": 1}


def test_is_leaf_applies_to_the_root():
    assert tree_leaves([1, 2], is_leaf=lambda x: isinstance(x, list)) == [[1, 2]]


# -------------------------------------------------------------- registration

@register_pytree_node_class
class Pair:
    def __init__(self, first, second, name="p"):
        self.first, self.second, self.name = first, second, name

    def tree_flatten(self):
        return (self.first, self.second), self.name

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children, name=aux)


def test_register_pytree_node_class():
    p = Pair(1, [2, 3], name="z")
    leaves, td = tree_flatten(p)
    assert leaves == [1, 2, 3]
    out = td.unflatten([4, 5, 6])
    assert type(out) is Pair and (out.first, out.second, out.name) == (4, [5, 6], "z")
    assert td != tree_structure(Pair(1, [2, 3], name="other"))  # aux is structure
    assert td == tree_structure(Pair(7, [8, 9], name="z"))
    doubled = tree_map(lambda x: 2 * x, p)
    assert (doubled.first, doubled.second) == (2, [4, 6])


def test_register_custom_node_function():
    b = Box(1, {"k": 2}, "tag")
    leaves, td = tree_flatten(b)
    assert leaves == [1, 2]
    assert td.unflatten([3, 4]) == Box(3, {"k": 4}, "tag")
    paths = [keystr(p) for p, _ in tree_leaves_with_path(b)]
    assert paths == ["[0]", "[1]['k']"]
    assert tree_leaves_with_path(b)[0][0] == (FlattenedIndexKey(0),)


def test_register_twice_raises():
    class C:
        pass
    register_pytree_node(C, lambda c: ((), None), lambda aux, ch: C())
    with pytest.raises(ValueError, match="already registered"):
        register_pytree_node(C, lambda c: ((), None), lambda aux, ch: C())
    with pytest.raises(ValueError, match="already registered"):
        register_pytree_node(dict, lambda d: ((), None), lambda aux, ch: {})


def test_register_after_seen_as_leaf():
    class Late:
        def __init__(self, v):
            self.v = v
    obj = Late(3)
    assert tree_leaves([obj]) == [obj]  # cached as a leaf type
    register_pytree_node(Late, lambda x: ((x.v,), None), lambda aux, ch: Late(*ch))
    assert tree_leaves([obj]) == [3]


def test_register_pytree_with_keys():
    class KV:
        def __init__(self, **kw):
            self.kw = kw
    register_pytree_with_keys(
        KV,
        lambda x: ([(GetAttrKey(k), x.kw[k]) for k in sorted(x.kw)], tuple(sorted(x.kw))),
        lambda keys, ch: KV(**dict(zip(keys, ch))))
    tree = KV(b=1, a=[2])
    assert tree_leaves(tree) == [2, 1]
    assert [keystr(p) for p, _ in tree_leaves_with_path(tree)] == [".a[0]", ".b"]
    out = tree_map(lambda x: -x, tree)
    assert out.kw == {"a": [-2], "b": -1}


def test_register_dataclass_explicit_fields():
    @dataclasses.dataclass
    class Layer:
        w: object
        b: object
        act: str

    register_dataclass(Layer, data_fields=["w", "b"], meta_fields=["act"])
    layer = Layer(w=1, b=2, act="relu")
    leaves, td = tree_flatten(layer)
    assert leaves == [1, 2]
    out = td.unflatten([3, 4])
    assert out == Layer(3, 4, "relu")
    assert td != tree_structure(Layer(1, 2, "tanh"))
    assert [keystr(p) for p, _ in tree_leaves_with_path(layer)] == [".w", ".b"]


def test_register_dataclass_decorator():
    @register_dataclass
    @dataclasses.dataclass
    class State:
        params: object
        step: int = dataclasses.field(metadata=dict(static=True), default=0)

    s = State(params={"w": 1.0}, step=3)
    leaves, td = tree_flatten(s)
    assert leaves == [1.0]
    assert td.unflatten([2.0]) == State({"w": 2.0}, 3)
    assert td != tree_structure(State({"w": 1.0}, 4))

    @register_dataclass
    @dataclasses.dataclass
    class AllData:
        a: object
        b: object

    assert tree_leaves(AllData(1, (2, 3))) == [1, 2, 3]


def test_register_dataclass_errors():
    @dataclasses.dataclass
    class D:
        a: int
        b: int

    with pytest.raises(TypeError, match="both"):
        register_dataclass(D, data_fields=["a", "b"])
    with pytest.raises(ValueError, match=r"\['b'\]"):
        register_dataclass(D, data_fields=["a"], meta_fields=[])


# ------------------------------------------------------------------ key paths

def test_key_str_forms():
    assert str(SequenceKey(0)) == "[0]"
    assert str(DictKey("w")) == "['w']"
    assert str(GetAttrKey("name")) == ".name"
    assert str(FlattenedIndexKey(2)) == "[2]"
    assert repr(SequenceKey(0)) == "SequenceKey(idx=0)"
    assert repr(DictKey("w")) == "DictKey(key='w')"
    assert SequenceKey(1) == SequenceKey(1) and hash(DictKey("a")) == hash(DictKey("a"))
    assert SequenceKey(1) != FlattenedIndexKey(1)


def test_flatten_with_path_and_keystr():
    tree = {"params": {"w": 1, "b": [2, 3]}, "pt": Point(4, 5), "n": None}
    pairs, td = tree_flatten_with_path(tree)
    assert td == tree_structure(tree)
    assert [x for _, x in pairs] == tree_leaves(tree)
    assert [keystr(p) for p, _ in pairs] == [
        "['params']['b'][0]", "['params']['b'][1]", "['params']['w']", "['pt'].x", "['pt'].y"]
    assert pairs[0][0] == (DictKey("params"), DictKey("b"), SequenceKey(0))
    assert keystr(pairs[0][0], simple=True, separator="/") == "params/b/0"
    assert keystr(()) == ""


def test_flatten_with_path_is_leaf():
    pairs = tree_leaves_with_path({"a": (1, 2)}, is_leaf=lambda x: isinstance(x, tuple))
    assert pairs == [((DictKey("a"),), (1, 2))]


@settings(max_examples=100, deadline=None)
@given(trees)
def test_paths_agree_with_flatten(tree):
    pairs, td = tree_flatten_with_path(tree)
    assert td == tree_structure(tree)
    assert [x for _, x in pairs] == tree_leaves(tree)


def test_tree_map_with_path():
    tree = {"a": [1, 2], "b": 3}
    out = tree_map_with_path(lambda p, x, y: f"{keystr(p)}={x + y}", tree, tree)
    assert out == {"a": ["['a'][0]=2", "['a'][1]=4"], "b": "['b']=6"}


# ------------------------------------------------------------------- tree_map

def test_tree_map_multiple_trees_and_prefix():
    assert tree_map(lambda a, b: a + b, {"x": 1, "y": (2, 3)}, {"y": (20, 30), "x": 10}) \
        == {"x": 11, "y": (22, 33)}
    # The first tree may be a prefix: the others' subtrees are passed whole.
    assert tree_map(lambda a, b: (a, b), [1, 2], [(3, 4), 5]) == [(1, (3, 4)), (2, 5)]


def test_tree_map_with_numpy_arrays():
    params = {"w": np.ones((2, 2)), "b": np.zeros(2)}
    grads = {"w": np.full((2, 2), 2.0), "b": np.ones(2)}
    new = tree_map(lambda p, g: p - 0.5 * g, params, grads)
    np.testing.assert_array_equal(new["w"], np.zeros((2, 2)))
    np.testing.assert_array_equal(new["b"], -0.5 * np.ones(2))


# --------------------------------------------------------------------- errors

def test_tree_map_mismatch_dict_keys_message():
    a = {"params": {"w1": {"w": 1, "b": 2}}}
    b = {"params": {"w1": {"w": 1}}}
    with pytest.raises(ValueError) as e:
        tree_map(lambda x, y: x, a, b)
    msg = str(e.value)
    assert "tree_map: structures differ at ['params']['w1']" in msg
    assert "dict with keys ['b', 'w'] vs dict with keys ['w']" in msg
    assert repr(tree_structure(a)) in msg and repr(tree_structure(b)) in msg


def test_tree_map_mismatch_length_type_and_leaf_messages():
    with pytest.raises(ValueError, match=r"at \[1\]: tuple of length 2 vs tuple of length 3"):
        tree_map(lambda x, y: x, [0, (1, 2)], [0, (1, 2, 3)])
    with pytest.raises(ValueError, match=r"at the root: list of length 2 vs tuple of length 2"):
        tree_map(lambda x, y: x, [1, 2], (1, 2))
    with pytest.raises(ValueError, match=r"at \['a'\]: tuple of length 1 vs a leaf of type int"):
        tree_map(lambda x, y: x, {"a": (1,)}, {"a": 5})
    with pytest.raises(ValueError, match=r"tree 2"):
        tree_map(lambda x, y, z: x, [1], [2], (3,))
    with pytest.raises(ValueError, match=r"at \.y: None vs a leaf of type int"):
        tree_map(lambda x, y: x, Point(1, None), Point(1, 2))
    with pytest.raises(ValueError, match=r"\.tag|Box with aux data 'p'"):
        tree_map(lambda x, y: x, Box(1, 2, "p"), Box(1, 2, "q"))


def test_tree_map_with_path_mismatch_names_function():
    with pytest.raises(ValueError, match=r"tree_map_with_path: structures differ at \[0\]"):
        tree_map_with_path(lambda p, x, y: x, [(1,)], [(1, 2)])


def test_unflatten_wrong_leaf_count():
    td = tree_structure({"a": 1, "b": (2, 3)})
    with pytest.raises(ValueError) as e:
        tree_unflatten(td, [1, 2])
    assert "expects 3 leaves, got 2" in str(e.value)
    assert "PyTreeDef({'a': *, 'b': (*, *)})" in str(e.value)
    with pytest.raises(ValueError, match="expects 3 leaves, got 4"):
        td.unflatten(iter([1, 2, 3, 4]))


def test_unsortable_dict_keys_error():
    with pytest.raises(TypeError, match="sortable"):
        tree_flatten({1: "a", "b": 2})


def test_flatten_up_to():
    td = tree_structure([0, {"a": 0}])
    assert td.flatten_up_to([(1, 2), {"a": [3]}]) == [(1, 2), [3]]
    with pytest.raises(ValueError, match=r"at \[1\]: expected dict with keys \['a'\], got"):
        td.flatten_up_to([1, {"b": 2}])


# ------------------------------------------------------ reduce, all, transpose

def test_tree_all_and_reduce():
    assert tree_all({"a": True, "b": [1, 2]})
    assert not tree_all({"a": True, "b": [0]})
    assert tree_all(None)
    assert tree_reduce(lambda a, b: a + b, {"a": 1, "b": [2, 3]}) == 6
    assert tree_reduce(lambda a, b: a + [b], (1, 2), []) == [1, 2]
    assert tree_reduce(lambda a, b: a + b, [], initializer=7) == 7
    with pytest.raises(TypeError):
        tree_reduce(lambda a, b: a + b, [])


def test_tree_transpose():
    outer = tree_structure([0, 0, 0])
    inner = tree_structure((0, 0))
    assert tree_transpose(outer, inner, [(1, 2), (3, 4), (5, 6)]) == ([1, 3, 5], [2, 4, 6])
    assert tree_transpose(outer, None, [(1, 2), (3, 4), (5, 6)]) == ([1, 3, 5], [2, 4, 6])
    nested = {"a": {"x": 1, "y": 2}, "b": {"x": 3, "y": 4}}
    out = tree_transpose(tree_structure({"a": 0, "b": 0}), tree_structure({"x": 0, "y": 0}),
                         nested)
    assert out == {"x": {"a": 1, "b": 3}, "y": {"a": 2, "b": 4}}
    with pytest.raises(ValueError, match="structures differ"):
        tree_transpose(outer, inner, [(1, 2), (3, 4), (5,)])


def test_compose():
    outer = tree_structure([0, 0])
    inner = tree_structure({"a": 0, "b": None})
    composed = outer.compose(inner)
    assert composed == tree_structure([{"a": 1, "b": None}, {"a": 2, "b": None}])
    assert composed.num_leaves == 2


# ------------------------------------------------------------------ layering

def _jitgrad_imports(path: pathlib.Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "jitgrad"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "jitgrad":
            found.add(node.module)
    return found


def test_pytree_imports_nothing_from_jitgrad():
    assert _jitgrad_imports(ROOT / "jitgrad" / "core" / "pytree.py") == set()
    assert _jitgrad_imports(ROOT / "jitgrad" / "tree.py") == {"jitgrad.core.pytree"}


def test_import_in_fresh_process():
    code = "import jitgrad.core.pytree as p; print(p.tree_leaves({'b': 1, 'a': 2}))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[2, 1]"


def test_short_names_module():
    import jitgrad.tree as jt
    assert jt.map is pt.tree_map and jt.leaves is pt.tree_leaves
    assert jt.flatten is pt.tree_flatten and jt.unflatten is pt.tree_unflatten
    assert jt.structure is pt.tree_structure and jt.register is pt.register_pytree_node
    assert jt.all is pt.tree_all and jt.reduce is pt.tree_reduce
    assert jt.transpose is pt.tree_transpose and jt.map_with_path is pt.tree_map_with_path
    assert jt.flatten_with_path is pt.tree_flatten_with_path
    assert jt.leaves_with_path is pt.tree_leaves_with_path
    assert jt.map(lambda x: x * 2, {"a": 1}) == {"a": 2}
