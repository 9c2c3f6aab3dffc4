"""Transformations of traced programs: autodiff (jvp, vjp, grad) and batching (vmap)."""
