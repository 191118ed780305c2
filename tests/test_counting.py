"""Honest counters (DESIGN.md section 7) and compile time apart from search time, in process on
the tiny model of test_search.py (same model, hardware and batch shape: one compilation)."""
import time

import numpy as np
import pytest

from pipeorgan_jax.cost import Scorer
from pipeorgan_jax.counting import Tally, placement_hashes
from pipeorgan_jax.hardware import load_hardware
from pipeorgan_jax.placement import Placement
from pipeorgan_jax.search import Problem, Space, baseline_spaces, dp, random_search
from pipeorgan_jax.workload import build_model
from test_search import TINY, TINY_SPACE


def _chain(n):
    """A chain of n 3x3 convs (segment counts grow with n)."""
    layers = [{"name": f"c{i}", "op": "conv", "inputs": [f"c{i - 1}" if i else "x"], "C": 4,
               "K": 4, "Y": 16, "X": 16, "R": 3, "S": 3} for i in range(n)]
    return build_model({"name": f"chain{n}", "inputs": [{"name": "x", "shape": [4, 16, 16]}],
                        "layers": layers})


@pytest.fixture(scope="module")
def scorer():
    return Scorer(build_model(TINY), load_hardware("small"), max_depth=8)


def test_dp_segment_counts_by_hand(scorer):
    # TINY_SPACE: 2 grans x 2 orgs x 2 parts = 8 depth-1 choices (a lone layer's share does
    # not matter), 2 x 2 x (2 parts x 2 shares)^2 = 64 depth-2 choices; both <= 256, so dp
    # enumerates them, in round 0 only.
    r = dp(Problem(scorer, "latency", TINY_SPACE), batch_size=256, rounds=2)
    # dp.segment_plan packs the 4 + 3 candidate segments of 4 layers into 3 window rows of
    # 4 layers: [0-1 | 2-3], [0 | 1-2 | 3], [0 | 1 | 2 | 3]; each row is scored 256 times
    # (the choices repeated to fill the batch), in round 0 only.
    assert r.segment_evaluations == (2 + 3 + 4) * 256
    # distinct: 4 layers x 8 depth-1 choices, 3 layer pairs x 64 depth-2 choices
    assert r.distinct_segments == 4 * 8 + 3 * 64
    # rows: the 3 x 256 window rows and the DP's pick, the one whole placement scored
    assert r.rows_scored == 3 * 256 + 1 and r.placements_scored == 1


def test_padding_and_repeats_are_not_counted(scorer):
    prob = Problem(scorer, "latency", baseline_spaces(3)["flexible"])
    p = prob.sample(3)
    prob.score(p)
    assert prob.scored == len(np.unique(placement_hashes(p))) == 3  # the batch model ran 128 rows
    prob.score(p)  # the same three again
    assert prob.scored == 3 and prob.tally.rows == 6
    # gran/org are read at a segment's last layer only: changing them elsewhere is no new placement
    q = p.numpy()
    inner = ~np.asarray(q.seg_end)
    gran = np.where(inner, (np.asarray(q.gran) + 1) % 7, q.gran)
    prob.score(Placement(q.seg_end, gran, q.org, q.share, q.part))
    assert prob.scored == 3


def test_a_seed_from_another_space_counts_once(scorer):
    tally = Tally()
    spaces = baseline_spaces(3)
    a = dp(Problem(scorer, "latency", spaces["layer_by_layer"], tally=tally), batch_size=64)
    b = dp(Problem(scorer, "latency", spaces["chunked"], tally=tally), batch_size=64,
           seed_placements=[a.best])
    assert tally.placements == a.placements_scored + b.placements_scored
    only_seed = Problem(scorer, "latency", spaces["flexible"], tally=tally)
    only_seed.score(a.best)
    assert only_seed.scored == 0


@pytest.fixture(scope="module")
def chain8():
    return Scorer(_chain(8), load_hardware("small"), max_depth=8)


def test_segment_evaluations_grow_with_the_network(scorer, chain8):
    space = Space("s", max_depth=3, orgs=(0,), grans=(6,), parts=(0, 1))
    ev = [dp(Problem(sc, "latency", space), batch_size=32).segment_evaluations
          for sc in (scorer, chain8)]  # 4 and 8 layers
    assert ev[1] > 1.5 * ev[0]


def test_compile_time_is_apart_from_search_time(chain8):
    t0 = time.perf_counter()
    before = chain8.compile_seconds
    # a batch shape this scorer has not compiled yet (dp pads to 128 rows)
    first = random_search(Problem(chain8, "latency", baseline_spaces(2)["flexible"]), 160, 2)
    wall = time.perf_counter() - t0
    assert first.compile_seconds > 0
    # the batch model's compilation, and the strategy's own jitted ask/tell (driver.call)
    assert 0 < chain8.compile_seconds - before < first.compile_seconds
    assert first.seconds + first.compile_seconds == pytest.approx(wall, abs=0.3)
    again = random_search(Problem(chain8, "latency", baseline_spaces(2)["flexible"]), 160, 2)
    assert again.compile_seconds == 0  # same shape: nothing compiled
    # the history's clock is search time: it never includes the compilation
    assert first.history[-1][1] <= first.seconds + 1e-9 and first.history[-1][1] < wall - first.compile_seconds + 0.3


def test_reinforce_step_compilation_is_compile_time(scorer):
    from pipeorgan_jax import driver
    from pipeorgan_jax.search import run_strategy
    from test_search import cfg
    driver._EXECUTABLES.clear()
    space = baseline_spaces(3)["flexible"]
    r = run_strategy("reinforce", Problem(scorer, "latency", space), cfg(iterations=2))
    assert r.compile_seconds > 0  # init, ask and tell (the optimizer step), for these shapes
    again = run_strategy("reinforce", Problem(scorer, "latency", space), cfg(iterations=2))
    assert again.compile_seconds == 0 and again.history[-1][2] == r.history[-1][2]
