"""Search strategies: dp is optimal on a tiny space (checked against exhaustive enumeration),
the stochastic strategies stay in their space and report sane results, baseline spaces nest.

One Scorer per (model, hardware), module-scoped, so every batch shape compiles once.
"""
import types

import numpy as np
import pytest

from pipeorgan_jax import strategies
from pipeorgan_jax.strategies import space_size
from pipeorgan_jax.cost import Scorer
from pipeorgan_jax.hardware import load_hardware
from pipeorgan_jax.placement import validate
from pipeorgan_jax.search import Problem, Space, baseline_spaces, dp, run_strategy
from pipeorgan_jax.workload import build_model

TINY = {"name": "tiny", "inputs": [{"name": "x", "shape": [4, 16, 16]}], "layers": [
    {"name": "c0", "op": "conv", "inputs": ["x"], "C": 4, "K": 8, "Y": 16, "X": 16, "R": 3, "S": 3},
    {"name": "c1", "op": "conv", "inputs": ["c0"], "C": 8, "K": 8, "Y": 16, "X": 16, "R": 3, "S": 3},
    {"name": "add", "op": "add", "inputs": ["c1", "c0"]},
    {"name": "c2", "op": "conv", "inputs": ["add"], "C": 8, "K": 4, "Y": 16, "X": 16, "R": 1,
     "S": 1}]}
TINY_SPACE = Space("tiny", max_depth=2, orgs=(0, 2), grans=(0, 6), parts=(0, 1), shares=(1, 3))
B = 64  # one batch shape for every stochastic strategy


def cfg(**kw):
    base = dict(batch_size=B, iterations=8, time_budget_s=0.0, mutation_rate=0.2,
                elite_fraction=0.25, temperature0=0.1, restarts=8, learning_rate=0.1,
                gumbel_tau=1.0, max_space=100_000)
    base.update(kw)
    return types.SimpleNamespace(**base)


@pytest.fixture(scope="module")
def scorer():
    return Scorer(build_model(TINY), load_hardware("small"), max_depth=8)


@pytest.mark.parametrize("objective", ["latency", "energy"])
def test_dp_matches_exhaustive(scorer, objective):
    ex = run_strategy("exhaustive", Problem(scorer, objective, TINY_SPACE, seed=0),
                      cfg(batch_size=4096))
    assert ex.placements_scored == space_size(Problem(scorer, space=TINY_SPACE).domain)
    assert ex.placements_scored == 8 ** 4 + 3 * 8 * 8 * 64 + 64 ** 2
    d = dp(Problem(scorer, objective, TINY_SPACE, seed=0), batch_size=256)
    assert TINY_SPACE.contains(d.best) and TINY_SPACE.contains(ex.best)
    best_ex, best_dp = ex.history[-1][2], d.history[-1][2]
    assert best_dp == pytest.approx(best_ex, rel=1e-6)


def test_exhaustive_refuses_large_space(scorer):
    prob = Problem(scorer, "latency", baseline_spaces(4)["flexible"])
    with pytest.raises(ValueError, match="max_space"):
        run_strategy("exhaustive", prob, cfg())


@pytest.mark.parametrize("name", ["random", "evolutionary", "annealing", "reinforce", "es"])
@pytest.mark.parametrize("space", [TINY_SPACE, baseline_spaces(3)["flexible"]],
                         ids=["tiny", "flexible"])
def test_stochastic_strategy_contract(scorer, name, space):
    L = len(scorer.model.layers)
    seed = dp(Problem(scorer, "latency", baseline_spaces(1)["layer_by_layer"]), batch_size=B)
    results = [run_strategy(name, Problem(scorer, "latency", space, seed=1), cfg(),
                            [seed.best] if space is TINY_SPACE else None) for _ in range(2)]
    r = results[0]
    assert r.strategy == name and r.placements_scored > 0
    assert space.contains(r.best) and validate(r.best, L, scorer.hw.n_units) == []
    h = np.array([v for _, _, v in r.history])
    h = h[np.argmax(np.isfinite(h)):]  # (segments scored before the first whole placement)
    assert len(h) > 0 and np.all(np.diff(h) <= 0) and np.isfinite(h).all()
    # the history counts distinct placements: a batch of repeats adds none
    assert np.diff([n for n, _, _ in r.history]).min() >= 0
    assert r.history[-1][0] == r.placements_scored <= r.rows_scored
    assert r.history[-1][2] == pytest.approx(float(r.cost["latency_cycles"])) or not r.cost["feasible"]
    # deterministic given the Problem's seed
    assert results[1].history[-1][2] == r.history[-1][2]
    assert results[1].placements_scored == r.placements_scored


def test_seeded_strategy_never_worse_than_seed(scorer):
    lbl = dp(Problem(scorer, "latency", baseline_spaces(3)["layer_by_layer"]), batch_size=B)
    for name in ("random", "evolutionary", "annealing", "reinforce", "es"):
        r = run_strategy(name, Problem(scorer, "latency", baseline_spaces(3)["flexible"]),
                         cfg(iterations=3), [lbl.best])
        assert r.history[-1][2] <= lbl.history[-1][2] * (1 + 1e-6)


@pytest.mark.parametrize("objective", ["latency", "energy", "edp"])
def test_baseline_spaces_nest(scorer, objective):
    spaces = baseline_spaces(3)
    seeds, vals = None, []
    for key in ("layer_by_layer", "chunked", "flexible"):
        r = run_strategy("dp", Problem(scorer, objective, spaces[key]), cfg(), seeds)
        assert spaces[key].contains(r.best)
        vals.append(r.history[-1][2])
        seeds = [r.best]
    assert vals[0] >= vals[1] * (1 - 1e-6) and vals[1] >= vals[2] * (1 - 1e-6)


def test_unknown_strategy(scorer):
    with pytest.raises(ValueError, match="unknown search strategy"):
        run_strategy("nope", Problem(scorer), cfg())


@pytest.mark.parametrize("objective", ["latency", "energy"])
def test_one_layer_network_shows_no_speedup(objective):
    """Nothing to pipeline: layer-by-layer, chunked and flexible get the same intra-layer
    space (DESIGN.md section 7), so the same optimum, 1.00x."""
    m = build_model({"name": "one", "inputs": [{"name": "x", "shape": [8, 16, 16]}], "layers": [
        {"name": "c", "op": "conv", "inputs": ["x"], "C": 8, "K": 16, "Y": 16, "X": 16, "R": 1,
         "S": 1}]})
    sc = Scorer(m, load_hardware("small"), max_depth=8)
    spaces = baseline_spaces(6)
    best = {k: dp(Problem(sc, objective, spaces[k])).history[-1][2]
            for k in ("layer_by_layer", "chunked", "flexible")}
    assert best["layer_by_layer"] == best["chunked"] == best["flexible"]
    # the prior-work-like coarse space is a subset: never better
    assert dp(Problem(sc, objective, spaces["chunked_coarse"])).history[-1][2] >= best["flexible"]


def test_baselines_share_the_intra_layer_space():
    spaces = baseline_spaces(6)
    inner = {k: (sp.grans, sp.parts, sp.shares) for k, sp in spaces.items()}
    assert inner["layer_by_layer"] == inner["chunked"] == inner["flexible"]
    assert spaces["chunked"].orgs == (0,) and spaces["layer_by_layer"].max_depth == 1
    assert spaces["chunked"].max_depth == spaces["flexible"].max_depth


def test_gradient_from_scratch_and_after_dp(scorer):
    """search=gradient descends the relaxed cost per segment and rescoring is exact: its
    result's cost is the batch model's; dp+gradient is never worse than dp (depth <= 3, where
    dp only samples the inner choices of the deeper segments)."""
    sc = scorer
    space = baseline_spaces(3)["flexible"]
    c = cfg(iterations=2, dp_batch_size=16, dp_rounds=1, restarts=2, gradient_steps=4,
            gradient_round_every=2)
    d = run_strategy("dp", Problem(sc, "latency", space), c)
    g = run_strategy("gradient", Problem(sc, "latency", space), c)
    dg = run_strategy("dp+gradient", Problem(sc, "latency", space), c)
    assert g.cost["feasible"] and g.strategy == "gradient" and g.compile_seconds > 0
    assert sc(g.best)["latency_cycles"][0] == pytest.approx(g.cost["latency_cycles"], rel=1e-5)
    assert dg.cost["latency_cycles"] <= d.cost["latency_cycles"] * (1 + 1e-6)
    assert dg.segment_evaluations > d.segment_evaluations


def test_gradient_descent_keeps_what_screening_found(scorer):
    """From scratch, gradient first scores random inner choices per window row and descends
    from each row's best: the descent adds candidates and never loses the screening's (same
    seed, same screening), so on latency (additive) it is never worse than screening alone."""
    space = baseline_spaces(3)["flexible"]
    c = lambda steps: cfg(restarts=2, gradient_steps=steps, gradient_round_every=2, gradient_screen=8)
    s = run_strategy("gradient", Problem(scorer, "latency", space, seed=3), c(0))
    g = run_strategy("gradient", Problem(scorer, "latency", space, seed=3), c(4))
    assert g.cost["latency_cycles"] <= s.cost["latency_cycles"] * (1 + 1e-6)
    assert g.segment_evaluations > s.segment_evaluations > 0


def test_decomposed_and_whole_network_drivers(scorer):
    """search.decompose (default): the strategy runs per window row and the DP assembles the
    placement, scoring segments; decompose=false: whole placements, batch_size per step."""
    space = baseline_spaces(3)["flexible"]
    seg = run_strategy("evolutionary", Problem(scorer, "latency", space), cfg(iterations=3))
    whole = run_strategy("evolutionary", Problem(scorer, "latency", space),
                         cfg(iterations=3, decompose=False))
    assert seg.segment_evaluations > 0 and whole.segment_evaluations == 0
    assert whole.rows_scored == 3 * B
    assert scorer(seg.best)["latency_cycles"][0] == pytest.approx(seg.cost["latency_cycles"], rel=1e-5)


def test_per_row_instances_are_the_strategy_vmapped():
    """segmentwise.PerRow runs one independent instance of a strategy per row: row i's asks
    are what the strategy alone asks from row i's key, before and after a tell."""
    import jax
    from pipeorgan_jax.segmentwise import PerRow
    strat = strategies.Evolutionary(8, 0.2, 0.25)
    dom = strategies.domain_of(Space(max_depth=3), 5, 16, [True] * 5, "latency")
    keys = jax.random.split(jax.random.key(0), 3)
    rows = PerRow(strat)
    st = rows.init(keys, dom)
    p = rows.ask(st)
    lat = np.random.default_rng(0).uniform(1, 2, (3, 8)).astype(np.float32)
    cost = lambda i: {"latency_cycles": lat[i], "energy_pj": np.ones_like(lat[i]),
                      "feasible": np.ones(8, bool), "seg_feasible": np.ones((8, 5), bool)}
    st = rows.tell(st, p, {k: np.stack([cost(i)[k] for i in range(3)]) for k in cost(0)})
    p2 = rows.ask(st)
    for i in range(3):
        s1 = strat.init(keys[i], dom, None)
        one = strat.ask(s1)
        two = strat.ask(strat.tell(s1, one, cost(i)))
        for got, want in ((p, one), (p2, two)):
            for a, b in zip(got.fields(), want.fields()):
                np.testing.assert_array_equal(np.asarray(a)[i], np.asarray(b))


def test_weighted_objective_is_searched_as_its_tangent(scorer):
    """A weighted objective (latency^(1-a) energy^a) is not additive: segment-scoring searches
    run latency + lam * energy at lams around its tangent at the seed and keep the best whole
    placement on the weighted objective itself. At a = 0.99 the energy-best placement beats
    the latency-best one on it by 4% (this model trades 10x latency for 7% energy); every
    search ends within 2.5% of the energy-best, where a search reading it as plain latency (the
    old reading) ends at the latency-best. (The tangent's scalarizations need not hit the
    weighted optimum itself: dp ends at 7,782 cycles, 0.07% above the energy-best's value.)"""
    from pipeorgan_jax.dp import scalarizations
    space = baseline_spaces(3)["flexible"]
    lat = run_strategy("dp", Problem(scorer, "latency", space), cfg())
    en = run_strategy("dp", Problem(scorer, "energy", space), cfg())
    prob = Problem(scorer, "weighted:0.99", space)
    lams = scalarizations(prob, [lat.best])
    r = lat.cost["latency_cycles"] / lat.cost["energy_pj"]
    assert lams == pytest.approx([99 * r * f for f in (0.5, 1.0, 2.0)], rel=1e-5)
    assert scalarizations(Problem(scorer, "energy", space), [lat.best]) is None
    value = lambda c: prob.objective_of({k: np.asarray([x]) for k, x in c.items()})[0]
    assert value(en.cost) * 1.03 < value(lat.cost)
    for name in ("dp", "gradient", "random"):
        res = run_strategy(name, Problem(scorer, "weighted:0.99", space, seed=1),
                           cfg(iterations=8, restarts=2, gradient_steps=4, gradient_round_every=2,
                               gradient_screen=16), [lat.best])
        assert value(res.cost) <= value(en.cost) * 1.025, name


@pytest.mark.parametrize("name", ["gradient", "random"])
def test_segment_searches_stay_in_baseline_spaces(scorer, name):
    """The main job searches the baselines with the chosen strategy: gradient's logits are
    masked to the space (space_mask) and the decomposed strategies draw from its domain, so
    the results are placements of layer-by-layer, chunked and the coarse space."""
    L = len(scorer.model.layers)
    for key, space in baseline_spaces(3).items():
        r = run_strategy(name, Problem(scorer, "latency", space), cfg(  # from random logits
            iterations=2, restarts=2, gradient_steps=2, gradient_round_every=2, gradient_screen=0))
        assert space.contains(r.best) and validate(r.best, L, scorer.hw.n_units) == [], key
