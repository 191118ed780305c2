"""The relaxed cost (cost/relaxed.py): exact at temperature 0, differentiable above it."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pipeorgan_jax.cost import hw_arrays, model_arrays, score_batch
from pipeorgan_jax.cost import relaxed as R
from pipeorgan_jax.hardware import load_hardware
from pipeorgan_jax.loading import builtin_models, load_model
from pipeorgan_jax.placement import Placement, concat, layer_by_layer, sample, stack

FIELDS = ("latency_cycles", "energy_pj", "edp", "byte_hops", "glb_bytes", "dram_bytes", "max_link_bytes",
          "seg_latency", "seg_energy")


@functools.lru_cache(maxsize=None)
def _arrays(model: str, hardware: str, max_depth: int = 4):
    m, hw = load_model(model), load_hardware(hardware)
    ma, ha = jax.tree_util.tree_map(jnp.asarray, (model_arrays(m), hw_arrays(hw, max_depth)))
    return m, ma, ha


def _placements(m, ma, seed, batch=6, max_depth=4):
    """Random placements, and layer-by-layer and chunked ones (feasible more often)."""
    L = len(m.layers)
    rnd = sample(np.random.default_rng(seed), L, batch, max_depth=max_depth, red_ok=np.asarray(ma.red_ok))
    lbl = layer_by_layer(L, gran=3)
    chunked = Placement(seg_end=(np.arange(L) % 2 == 1) | (np.arange(L) == L - 1), gran=lbl.gran,
                        org=np.full(L, 2, np.int32), share=lbl.share, part=np.full(L, 2, np.int32))
    return concat([rnd, stack([lbl, chunked])])


def _random_soft(key, p, scale=2.0):
    """Random logits and shares (a SoftPlacement far from one-hot), batch like p."""
    B, L = p.seg_end.shape
    ks = jax.random.split(key, 4)
    return R.SoftPlacement(gran=scale * jax.random.normal(ks[0], (B, L, 7)),
                           org=scale * jax.random.normal(ks[1], (B, L, 4)),
                           part=scale * jax.random.normal(ks[2], (B, L, 4)),
                           log_share=jax.random.uniform(ks[3], (B, L), maxval=np.log(64.0)))


def _relaxed_batch(ma, ha, seg_end, soft, t):
    return jax.jit(jax.vmap(lambda se, s: R.relaxed_cost(ma, ha, se, s, t)))(seg_end, soft)


def _assert_same(cost, exact):
    for f in FIELDS:
        np.testing.assert_allclose(np.asarray(getattr(cost, f)), np.asarray(getattr(exact, f)),
                                   rtol=2e-6, atol=1e-3, err_msg=f)
    for f in ("feasible", "reason", "seg_feasible"):
        np.testing.assert_array_equal(np.asarray(getattr(cost, f)), np.asarray(getattr(exact, f)), err_msg=f)


@pytest.mark.parametrize("hardware", ["small", "xrbench_4k"])
@pytest.mark.parametrize("model", ["KD_res8_narrow", "AS_ED_TCN"])
def test_temperature_zero_is_the_exact_batch_cost(model, hardware):
    """At temperature 0 the relaxed cost of a one-hot SoftPlacement is the batch model's cost
    of its placement, and that of any SoftPlacement the cost of the placement it rounds to."""
    m, ma, ha = _arrays(model, hardware)
    p = _placements(m, ma, seed=len(model) + len(hardware))
    exact = score_batch(ma, ha, p)
    assert np.asarray(exact.feasible).any() and not np.asarray(exact.feasible).all()
    one = jax.vmap(R.one_hot)(p)
    rounded = R.round(one, p.seg_end, ma.red_ok)
    for f in ("gran", "org", "share", "part"):
        np.testing.assert_array_equal(np.asarray(getattr(rounded, f)), np.asarray(getattr(p, f)))
    _assert_same(_relaxed_batch(ma, ha, p.seg_end, one, 0.0).cost, exact)

    soft = _random_soft(jax.random.PRNGKey(1), p)
    q = R.round(soft, p.seg_end, ma.red_ok)
    assert not np.asarray(q.part)[:, ~np.asarray(ma.red_ok)].__eq__(3).any()  # never reason 3
    _assert_same(_relaxed_batch(ma, ha, p.seg_end, soft, 0.0).cost, score_batch(ma, ha, q))


def _objective(ma, ha, seg_end, t):
    def f(s):
        c = R.relaxed_cost(ma, ha, seg_end, s, t)
        # both objectives, each relative to its own value (gradients on every choice)
        return (c.latency_cycles / jax.lax.stop_gradient(c.latency_cycles)
                + c.energy_pj / jax.lax.stop_gradient(c.energy_pj))
    return f


def _check_gradients(model, hardware="xrbench_4k"):
    m, ma, ha = _arrays(model, hardware)
    p = _placements(m, ma, seed=7, batch=1)[0]  # a random one
    soft = R.one_hot(p, margin=1.0)
    g = jax.jit(jax.grad(_objective(ma, ha, p.seg_end, 1.0)))(soft)
    for f in ("gran", "org", "part", "log_share"):
        v = np.asarray(getattr(g, f))
        assert np.isfinite(v).all(), (model, f)
        assert np.abs(v).max() > 0, (model, f)


@pytest.mark.parametrize("model", ["AS_ED_TCN", "KD_res8_narrow"])
def test_gradients_finite_and_nonzero(model):
    _check_gradients(model)


@pytest.mark.slow
@pytest.mark.parametrize("model", builtin_models())
def test_gradients_finite_and_nonzero_every_model(model):
    _check_gradients(model)


def test_adam_steps_lower_the_relaxed_latency():
    """A few optax Adam steps on the relaxed latency of GE_FBNet_C (fixed segments of 4
    layers) lower it, and the rounded placement is scored by the batch model."""
    import optax
    m, ma, ha = _arrays("GE_FBNet_C", "xrbench_4k", 4)
    L = len(m.layers)
    seg_end = (np.arange(L) % 4 == 3) | (np.arange(L) == L - 1)
    soft = R.uniform(L, jax.random.PRNGKey(0), scale=0.1)
    loss = lambda s: jnp.log(R.relaxed_cost(ma, ha, seg_end, s, 1.0).latency_cycles)
    opt = optax.adam(0.1)

    @jax.jit
    def step(s, st):
        v, g = jax.value_and_grad(loss)(s)
        u, st = opt.update(g, st, s)
        return optax.apply_updates(s, u), st, v

    st = opt.init(soft)
    losses = []
    for _ in range(8):
        soft, st, v = step(soft, st)
        losses.append(float(v))
    assert np.isfinite(losses).all()
    assert losses[-1] < losses[0] - 0.05, losses  # at least 5% lower
    q = R.round(soft, seg_end, ma.red_ok)
    exact = score_batch(ma, ha, jax.tree_util.tree_map(lambda x: x[None], q))
    assert np.isfinite(np.asarray(exact.latency_cycles)).all()


def test_restarts_vmap_and_temperature_is_traced():
    """Many restarts at once: vmap of grad gives each restart its own gradient; one compiled
    function serves every temperature."""
    m, ma, ha = _arrays("AS_ED_TCN", "xrbench_4k")
    L = len(m.layers)
    seg_end = (np.arange(L) % 3 == 2) | (np.arange(L) == L - 1)
    starts = jax.vmap(lambda k: R.uniform(L, k, 1.0))(jax.random.split(jax.random.PRNGKey(0), 3))
    f = lambda s, t: R.relaxed_cost(ma, ha, seg_end, s, t).latency_cycles
    gv = jax.jit(jax.vmap(jax.grad(f), in_axes=(0, None)))
    one = jax.jit(jax.grad(f))
    for t in (1.0, 0.25):
        g = gv(starts, t)
        for i in range(3):
            gi = one(jax.tree_util.tree_map(lambda x: x[i], starts), t)
            for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(gi)):
                np.testing.assert_allclose(np.asarray(a[i]), np.asarray(b), rtol=1e-4, atol=1e-3 * np.abs(b).max())
    assert gv._cache_size() == 1
