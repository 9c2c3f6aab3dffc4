"""The core: abstract values, the IR, primitives, traces, arrays, pytrees, dtypes, config.

Nothing in here knows that a backend or a transformation exists (DESIGN.md).
"""
