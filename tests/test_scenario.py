"""XR-bench usage scenarios: the sharing model and XR-bench's scores, worked out by hand."""
import math
from pathlib import Path

import pytest

from pipeorgan_jax.scenario import (Scenario, ScenarioModel, Timing, horizon_ms, play,
                                    rt_score, triggered)


def test_cascade_two_models_by_hand():
    # A at 100 FPS (10 ms) in two 3 ms segments; B depends on A, one 3.9 ms segment.
    # A0 runs [0, 3], [3, 6]; B0 becomes ready at 6 and completes at 9.9, 0.1 ms before its
    # deadline 10: rt = 1 / (1 + exp(15 * -0.1)) = 0.817574...
    sc = Scenario("two", (ScenarioModel("A", 100.0), ScenarioModel("B", 100.0, "A")))
    tm = {"A": Timing((3.0, 3.0), 300.0), "B": Timing((3.9,), 750.0)}
    res, played = play(sc, tm)
    assert res["horizon_ms"] == pytest.approx(10.0)
    a, b = (next(f for f in played if f.model == m) for m in "AB")
    assert a.runs == [(0.0, 3.0, 0), (3.0, 6.0, 1)] and a.completion_ms == 6.0
    assert b.runs[0][0] == pytest.approx(6.0) and b.completion_ms == pytest.approx(9.9)
    rt_b = 1 / (1 + math.exp(-1.5))
    assert res["models"]["B"]["rt_score"] == pytest.approx(rt_b)
    assert res["models"]["A"]["rt_score"] == pytest.approx(1.0)
    # energy scores (1500 - E) / 1500: 0.8 and 0.5; UX 1 (nothing dropped)
    assert res["models"]["A"]["score"] == pytest.approx(0.8)
    assert res["models"]["B"]["score"] == pytest.approx(rt_b * 0.5)
    assert res["score"] == pytest.approx(100 * (0.8 + rt_b * 0.5) / 2)


def test_segment_boundaries_edf_and_a_drop_by_hand():
    # A at 100 FPS, segments 4 + 4 ms; B at 50 FPS, one 13 ms segment. Horizon 20 ms.
    # A0 [0, 8]; B0 [8, 21] (a segment is never preempted, so A1, released at 10, waits);
    # at 21, A1 (deadline 20) has not started: dropped. B0 is 1 ms late.
    sc = Scenario("two", (ScenarioModel("A", 100.0), ScenarioModel("B", 50.0)))
    tm = {"A": Timing((4.0, 4.0), 0.0), "B": Timing((13.0,), 0.0)}
    res, played = play(sc, tm)
    assert res["horizon_ms"] == pytest.approx(20.0)
    f = {(x.model, x.index): x for x in played}
    assert f[("A", 0)].completion_ms == 8.0
    assert f[("B", 0)].runs == [(8.0, 21.0, 0)]
    assert f[("A", 1)].dropped and f[("A", 1)].runs == []
    ma, mb = res["models"]["A"], res["models"]["B"]
    assert ma["frames"] == 2 and ma["dropped"] == 1 and ma["ux_score"] == 0.5
    # A: (rt(8 vs 10) * 1 + 0) / 2 frames * UX 0.5
    assert ma["score"] == pytest.approx(rt_score(8, 10) / 2 * 0.5)
    assert mb["rt_score"] == pytest.approx(1 / (1 + math.exp(15)))
    # with B split into two segments the array switches to A1 at the boundary (EDF: A1's
    # deadline 20 ties B0's; A comes first in the scenario)
    tm2 = {"A": Timing((4.0, 4.0), 0.0), "B": Timing((6.5, 6.5), 0.0)}
    res2, played2 = play(sc, tm2)
    f2 = {(x.model, x.index): x for x in played2}
    assert f2[("B", 0)].runs[0] == (8.0, 14.5, 0)
    assert f2[("A", 1)].runs == [(14.5, 18.5, 0), (18.5, 22.5, 1)]
    assert f2[("B", 0)].completion_ms == pytest.approx(29.0)
    assert res2["models"]["A"]["dropped"] == 0


def test_edf_prefers_the_earlier_deadline():
    # B (deadline 40) is ready first; at its segment boundary A (deadline 10) takes over
    sc = Scenario("s", (ScenarioModel("B", 25.0), ScenarioModel("A", 100.0)))
    tm = {"A": Timing((1.0,), 0.0), "B": Timing((2.0, 2.0), 0.0)}
    _, played = play(sc, tm, horizon=10.0)
    a = next(f for f in played if f.model == "A")
    assert a.runs == [(0.0, 1.0, 0)]  # both released at 0: A's deadline is earlier


def test_dependent_frame_of_a_dropped_frame_is_dropped():
    sc = Scenario("s", (ScenarioModel("A", 100.0), ScenarioModel("B", 100.0, "A"),
                        ScenarioModel("C", 50.0)))
    # C hogs the array past A1's deadline: A1 dropped, so B1 too
    tm = {"A": Timing((1.0,), 0.0), "B": Timing((1.0,), 0.0), "C": Timing((19.5,), 0.0)}
    res, played = play(sc, tm)
    f = {(x.model, x.index): x for x in played}
    assert f[("A", 1)].dropped and f[("B", 1)].dropped
    assert not f[("A", 0)].dropped and not f[("B", 0)].dropped


def test_trigger_pattern_has_exactly_the_rate_and_horizon_covers_it():
    assert [i for i in range(10) if triggered(i, 0.2)] == [0, 5]
    assert [i for i in range(4) if triggered(i, 0.5)] == [0, 2]
    assert all(triggered(i, 1.0) for i in range(5))
    sc = Scenario("o", (ScenarioModel("KD", 3.0), ScenarioModel("ASR", 3.0, "KD", 0.2),
                        ScenarioModel("OD", 30.0)))
    h = horizon_ms(sc)
    assert h == pytest.approx(5000 / 3)  # 5 KD periods: one ASR trigger per 5 frames
    res, _ = play(sc, {m: Timing((1.0,), 1.0) for m in ("KD", "ASR", "OD")})
    assert res["models"]["ASR"]["frames"] == 1 and res["models"]["KD"]["frames"] == 5
    assert res["models"]["OD"]["frames"] == 50


SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "xrbench" / "usage_scenarios.json"


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/xrbench not present")
def test_scenario_workloads_match_xrbench_facts():
    import json
    import yaml
    from pipeorgan_jax.paths import conf_dir
    facts = json.loads(SHARED.read_text())
    for name in ("VR_gaming", "AR_gaming", "AR_Assistant", "outdoor_activity_A",
                 "outdoor_activity_B", "social_interactionA", "social_interactionB"):
        doc = yaml.safe_load((conf_dir() / "workload" / f"{name}.yaml").read_text())
        sc = Scenario.from_workload(doc)
        # XR-bench's outdoor_activity_B names OD_D2go_FasterRCNN by its other name
        alias = {"D2go_FastRCNN": "OD_D2go_FasterRCNN"}
        want = {alias.get(e["net"], e["net"]): e for e in facts[name]}
        assert [m.name for m in sc.models] == list(want)
        for m in sc.models:
            assert m.fps == want[m.name]["fps"]
            assert m.depends_on == want[m.name]["dep"]
            assert m.trigger_probability == (want[m.name]["prob"] or 1.0)


def _run(args, tmp_path):
    import os
    import subprocess
    import sys
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root))
    return subprocess.run([sys.executable, "-m", "pipeorgan_jax", *args, "progress=false",
                           f"hydra.run.dir={tmp_path}", f"compilation_cache_dir={tmp_path / 'xla'}"],
                          capture_output=True, text=True, cwd=root, env=env, timeout=600)


def test_scenario_task_end_to_end(tmp_path):
    import json
    r = _run(["task=scenario", "+workload=custom", "workload.models=[KD_res8_narrow,AS_ED_TCN]",
              "+workload.fps={KD_res8_narrow: 200, AS_ED_TCN: 100}",
              "+workload.depends_on={AS_ED_TCN: KD_res8_narrow}", "hardware=small",
              "search.dp_batch_size=16", "search.dp_rounds=1", "search.max_depth=3"], tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "scenarios.json").read_text())
    e = doc["scenarios"]["custom"]
    assert e["horizon_ms"] == pytest.approx(10.0)
    for space in ("layer_by_layer", "chunked", "flexible"):
        ms = e[space]["models"]
        assert ms["KD_res8_narrow"]["frames"] == 2 and ms["AS_ED_TCN"]["frames"] == 1
        assert ms["AS_ED_TCN"]["deadline_ms"] == pytest.approx(10.0)
        # latency in ms at the clock (1 GHz): cycles / 1e6
        lat = doc["models"]["AS_ED_TCN"][space]
        assert ms["AS_ED_TCN"]["latency_ms"] == pytest.approx(lat["latency_cycles"] / 1e6, rel=1e-6)
        assert 0 <= e[space]["score"] <= 100
    # the nested spaces: flexible is never slower than chunked, chunked than layer-by-layer
    lat = {s: doc["models"]["AS_ED_TCN"][s]["latency_ms"] for s in ("layer_by_layer", "chunked", "flexible")}
    assert lat["flexible"] <= lat["chunked"] * (1 + 1e-6) <= lat["layer_by_layer"] * (1 + 1e-6)
    assert (tmp_path / "scenarios.csv").read_text().count("\n") == 1 + 3 * 2
    assert (tmp_path / "plots" / "timeline_custom.png").is_file()
    assert "custom (horizon 10.0 ms): score" in r.stdout


def test_scenario_task_on_a_plain_workload_is_one_line(tmp_path):
    r = _run(["task=scenario", "+workload=KD_res8_narrow", "hardware=small"], tmp_path)
    assert r.returncode == 1
    assert "not a usage scenario" in r.stderr and "Traceback" not in r.stderr
