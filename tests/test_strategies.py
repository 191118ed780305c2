"""Strategies as pure ask/tell objects (strategies/base.py): pure and jittable, seeded by a
jax key, every objective, the driver's budget; and the Pareto archive (pareto.py).

On the tiny model of test_search.py, one Scorer (one compiled batch shape)."""
import subprocess
import sys

import jax
import numpy as np
import pytest

from pipeorgan_jax import strategies
from pipeorgan_jax.cost import Cost, Scorer, score_batch
from pipeorgan_jax.driver import call, drive, seed_key
from pipeorgan_jax.hardware import load_hardware
from pipeorgan_jax.pareto import Archive, nondominated
from pipeorgan_jax.search import Problem, baseline_spaces, dp, run_strategy
from pipeorgan_jax.strategies import base
from pipeorgan_jax.workload import build_model
from test_search import B, TINY, cfg

STOCHASTIC = ("random", "evolutionary", "annealing", "reinforce", "es")
FLEX = baseline_spaces(3)["flexible"]


@pytest.fixture(scope="module")
def scorer():
    return Scorer(build_model(TINY), load_hardware("small"), max_depth=8)


def test_no_import_cycle():
    """strategies/ and the driver never import search.py (which imports them)."""
    code = ("import sys, pipeorgan_jax.strategies, pipeorgan_jax.driver; "
            "assert 'pipeorgan_jax.search' not in sys.modules, 'cycle'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def _np(x):
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    return np.asarray(x)


@pytest.mark.parametrize("name", STOCHASTIC)
def test_ask_tell_pure(scorer, name):
    """The same state asks the same batch and tells the same next state; the state it was
    given is unchanged (jitted as the driver runs them)."""
    strat, _ = strategies.make(name, cfg())
    prob = Problem(scorer, "latency", FLEX)
    state = call(strat, "init", None, jax.random.key(3), prob.domain, None)
    p1, p2 = call(strat, "ask", None, state), call(strat, "ask", None, state)
    c = Cost(**scorer(p1))
    s1, s2 = call(strat, "tell", None, state, p1, c), call(strat, "tell", None, state, p1, c)
    for a, b in zip(jax.tree.leaves((s1, p1)), jax.tree.leaves((s2, p2))):
        np.testing.assert_array_equal(_np(a), _np(b))
    assert int(s1.step) == 1 and int(state.step) == 0
    assert all(FLEX.contains(p1[i]) for i in range(p1.batch_size))
    p3 = call(strat, "ask", None, s1)  # the next step asks something else
    assert any((np.asarray(a) != np.asarray(b)).any() for a, b in zip(p1.fields(), p3.fields()))


@pytest.mark.parametrize("name", ["random", pytest.param("reinforce", marks=pytest.mark.slow),
                                  pytest.param("evolutionary", marks=pytest.mark.slow)])
def test_one_generation_in_one_jit(scorer, name):
    """ask -> batch model -> tell compiles as one pure function of the state (the model's
    tables ride in the state's domain): a whole search can run on the device."""
    strat, _ = strategies.make(name, cfg())
    state = strat.init(jax.random.key(3), Problem(scorer, "latency", FLEX).domain, None)

    @jax.jit
    def generation(s):
        p = strat.ask(s)
        return strat.tell(s, p, score_batch(s.domain.ma, s.domain.ha, p))

    s1 = generation(state)
    for a, b in zip(jax.tree.leaves(s1), jax.tree.leaves(generation(state))):
        np.testing.assert_array_equal(_np(a), _np(b))
    assert int(generation(s1).step) == 2


@pytest.mark.parametrize("name", ["random", "evolutionary", "annealing"])
def test_seeds_matter(scorer, name):
    """seed= picks the run: the same seed the same run, another seed another one."""
    def run(seed):
        r = run_strategy(name, Problem(scorer, "latency", FLEX, seed=seed), cfg(iterations=3))
        return [h[0] for h in r.history], [h[2] for h in r.history], r.best
    a, b, c = run(0), run(0), run(1)
    assert a[0] == b[0] and a[1] == b[1]
    assert a[1] != c[1] or a[0] != c[0] or not np.array_equal(a[2].share, c[2].share)


def test_seed_key_uses_all_bits():
    k = lambda s: np.asarray(jax.random.key_data(seed_key(s)))
    assert not np.array_equal(k(5), k(5 + 2 ** 32)) and np.array_equal(k(7), k(7))


@pytest.mark.parametrize("objective", ["energy", "edp", "weighted:0.5"])
@pytest.mark.parametrize("name", ("dp",) + STOCHASTIC)
def test_every_objective_every_strategy(scorer, name, objective):
    """The result is the best scored placement on the objective asked for, and no worse
    than the latency-searched placement it was seeded with."""
    lat = run_strategy("dp", Problem(scorer, "latency", FLEX), cfg())
    prob = Problem(scorer, objective, FLEX, seed=2)
    r = run_strategy(name, prob, cfg(iterations=3), [lat.best])
    v = prob.objective_of({k: np.asarray([x]) for k, x in r.cost.items()})[0]
    assert r.objective == objective and v == pytest.approx(r.history[-1][2])
    v_lat = prob.objective_of({k: np.asarray([x]) for k, x in lat.cost.items()})[0]
    assert v <= v_lat * (1 + 1e-6)
    if objective == "energy":  # an energy search beats the latency search on energy
        assert r.cost["energy_pj"] <= lat.cost["energy_pj"] * (1 + 1e-6)


def test_driver_budget_and_progress(scorer):
    """The driver stops at the iteration budget and tells the strategy how far it is."""
    seen = []

    class Watch(strategies.RandomSearch):
        def tell(self, state, p, cost):
            seen.append(float(state.progress))
            return super().tell(state, p, cost)

    Watch.jittable = False
    r = drive(Watch(B), Problem(scorer, "latency", FLEX), 4)
    assert seen == pytest.approx([0.0, 0.25, 0.5, 0.75]) and r.rows_scored == 4 * B


def test_repair_is_identity_inside_the_space(scorer):
    dom = Problem(scorer, "latency", FLEX).domain
    p = base.sample(jax.random.key(0), dom, 64)
    q = base.repair(p, dom)
    for a, b in zip(p.fields(), q.fields()):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    m = base.mutate(jax.random.key(1), p, 0.5, dom, True)
    assert all(FLEX.contains(m[i]) for i in range(64))
    red = np.asarray(m.part) == 3  # the reduction split only where it applies
    assert np.asarray(dom.red_ok)[np.nonzero(red)[1]].all()


def test_nondominated():
    lat = np.array([3.0, 1.0, 2.0, 2.0, 4.0, 1.0])
    en = np.array([1.0, 5.0, 2.0, 3.0, 0.5, 6.0])
    assert sorted(nondominated(lat, en).tolist()) == [0, 1, 2, 4]


def test_pareto_archive_from_searches(scorer):
    """Every placement the searches score goes into the archive; what it keeps is the
    non-dominated set of them all, and holds the latency and the energy optimum found."""
    arch = Archive()
    seen_lat, seen_en = [], []

    def watch(p, c):
        arch.add(p, c)
        ok = np.asarray(c["feasible"])
        seen_lat.extend(np.asarray(c["latency_cycles"])[ok])
        seen_en.extend(np.asarray(c["energy_pj"])[ok])

    bests = []
    for obj in ("latency", "weighted:0.5", "energy"):
        prob = Problem(scorer, obj, FLEX)
        prob.on_batch = watch
        bests.append(dp(prob, batch_size=B, lam=1e-3 if obj.startswith("w") else None))
    pts = arch.points()
    lat, en = np.array([p["latency_cycles"] for p in pts]), np.array([p["energy_pj"] for p in pts])
    assert np.all(np.diff(lat) > 0) and np.all(np.diff(en) < 0)  # a front, by latency
    assert lat[0] == pytest.approx(min(seen_lat)) and en[-1] == pytest.approx(min(seen_en))
    sl, se = np.array(seen_lat), np.array(seen_en)
    for a, b in zip(lat, en):  # nothing scored dominates a point of the front
        assert not np.any((sl <= a) & (se <= b) & ((sl < a) | (se < b)))
    assert len(arch.placements()) == len(pts)
