"""pipeorgan_jax: inter-operator pipelining explorer. `trace` is importable from the package
without importing JAX at package import."""


def trace(fn_or_module, *example_inputs, **kwargs):
    """A Flax module or JAX function, traced on batch-1 example inputs, as a workload `Model`
    (see pipeorgan_jax.jax_import.trace and docs/model_import.md)."""
    from pipeorgan_jax.jax_import import trace as _trace
    return _trace(fn_or_module, *example_inputs, **kwargs)
