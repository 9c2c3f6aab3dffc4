"""``jitgrad.tree``: the short names of ``jax.tree`` (``jitgrad.tree.map`` ...).

Thin re-exports of :mod:`jitgrad.core.pytree`, where the long ``tree_*`` names live.
"""
from jitgrad.core.pytree import (
    register_pytree_node as register,
    tree_all as all,
    tree_flatten as flatten,
    tree_flatten_with_path as flatten_with_path,
    tree_leaves as leaves,
    tree_leaves_with_path as leaves_with_path,
    tree_map as map,
    tree_map_with_path as map_with_path,
    tree_reduce as reduce,
    tree_structure as structure,
    tree_transpose as transpose,
    tree_unflatten as unflatten,
)

__all__ = [
    "all", "flatten", "flatten_with_path", "leaves", "leaves_with_path", "map",
    "map_with_path", "reduce", "register", "structure", "transpose", "unflatten",
]
