"""XR-bench usage scenarios: several models share the accelerator at FPS targets.

The sharing model (docs/scenarios.md):
- every model runs on the whole array (its best placement, as the main job finds it), and
  the models are time-multiplexed: the array switches between models only at a pipeline
  segment boundary, where a segment has drained and its outputs are in the GLB;
- at every boundary (and whenever the array is idle) the ready frame with the earliest
  deadline runs its next segment (EDF; ties: the scenario's model order, then frame);
- frame i of a model at F FPS is injected at i / F and its deadline is the next injection,
  (i + 1) / F (XR-bench's load generator); a frame of a dependent model (a cascade: GE after
  ES, ASR after KD) is ready only once the same frame of the model it depends on completed;
- a frame not started by its deadline is dropped (as XR-bench drops a request still queued at
  its deadline), and so is the dependent frame of a dropped frame; a started frame always
  completes, late or not;
- a triggered model (ASR triggered by KD with probability p) runs on a deterministic pattern
  with exactly that rate: frame i is triggered when ceil((i + 1) p) > ceil(i p) (frame 0
  always), so that the worst case, a trigger at the start, is in every horizon; frames not
  triggered are not requests (XR-bench does not log them either).

Scores as XR-bench v0.1 computes them (XRBench-MLSys2023, HET_scoring-module.hpp): per
completed frame, real-time score 1 / (1 + exp(k (completion - deadline))) with times in ms
and k = 15, and energy score (E_max - E) / E_max with E in mJ and E_max = 1500 mJ; per model,
the sum of rt x energy over its completed frames divided by all its frames, times the UX
score 1 - (dropped frames / frames); per scenario, 100 x the mean of the model scores.
XR-bench's paper also multiplies an accuracy score; we do not model accuracy (1 for every
model).
"""
from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from typing import Mapping, Optional, Sequence


@dataclasses.dataclass(frozen=True)
class ScenarioModel:
    name: str
    fps: float
    depends_on: Optional[str] = None
    trigger_probability: float = 1.0

    @property
    def period_ms(self) -> float:
        return 1000.0 / self.fps


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    models: tuple[ScenarioModel, ...]

    @staticmethod
    def from_workload(wl) -> "Scenario":
        """From a workload config node (name, models, fps, depends_on, trigger_probability)."""
        g = lambda k: (wl.get(k) if isinstance(wl, Mapping) or hasattr(wl, "get") else getattr(wl, k)) or {}
        fps, dep, prob = g("fps"), g("depends_on"), g("trigger_probability")
        names = list(g("models"))
        missing = [m for m in names if m not in fps]
        if missing:
            raise ValueError(f"scenario '{g('name')}': no fps for {missing}")
        for m, d in dep.items():
            if d not in names or m not in names:
                raise ValueError(f"scenario '{g('name')}': {m} depends on {d}, but both must be "
                                 "models of the scenario")
        return Scenario(str(g("name")), tuple(
            ScenarioModel(m, float(fps[m]), dep.get(m), float(prob.get(m, 1.0))) for m in names))


@dataclasses.dataclass(frozen=True)
class Timing:
    """One model's frame on the array: its segments' durations (ms) and its energy (mJ)."""
    segment_ms: tuple[float, ...]
    energy_mj: float

    @property
    def latency_ms(self) -> float:
        return float(sum(self.segment_ms))


@dataclasses.dataclass
class Frame:
    model: str
    index: int
    release_ms: float
    deadline_ms: float
    start_ms: Optional[float] = None
    completion_ms: Optional[float] = None
    dropped: bool = False
    next_segment: int = 0
    # (start, end, segment index) of every segment it ran
    runs: list = dataclasses.field(default_factory=list)


def triggered(i: int, p: float) -> bool:
    """Frame i of a model triggered with probability p: exactly the rate p, frame 0 first."""
    q = Fraction(p).limit_denominator(1000)
    return math.ceil((i + 1) * q) > math.ceil(i * q)


def horizon_ms(sc: Scenario, max_s: float = 10.0) -> float:
    """The smallest time after which every model's releases and trigger pattern repeat
    (a common multiple of period / rate), capped at max_s."""
    h = Fraction(0)
    for m in sc.models:
        period = 1 / Fraction(m.fps).limit_denominator(1000)  # seconds
        reps = Fraction(m.trigger_probability).limit_denominator(1000).denominator \
            if m.trigger_probability > 0 else 1
        h = _lcm(h, period * reps) if h else period * reps
    return float(min(h, Fraction(max_s).limit_denominator(1000))) * 1000.0


def _lcm(a: Fraction, b: Fraction) -> Fraction:
    num = a.numerator * b.denominator, b.numerator * a.denominator
    den = a.denominator * b.denominator
    return Fraction(math.lcm(*num), den)


def frames(sc: Scenario, horizon: float) -> list[Frame]:
    out = []
    for m in sc.models:
        n = int(math.floor(horizon / m.period_ms + 1e-9))
        for i in range(n):
            if triggered(i, m.trigger_probability):
                out.append(Frame(m.name, i, i * m.period_ms, (i + 1) * m.period_ms))
    return out


def simulate(sc: Scenario, timing: Mapping[str, Timing], horizon: float) -> list[Frame]:
    """Play the scenario for `horizon` ms on one array (module docstring); every frame ends
    completed or dropped."""
    order = {m.name: k for k, m in enumerate(sc.models)}
    dep = {m.name: m.depends_on for m in sc.models}
    fr = frames(sc, horizon)
    by_key = {(f.model, f.index): f for f in fr}
    t = 0.0
    eps = 1e-9
    while True:
        pending = [f for f in fr if f.completion_ms is None and not f.dropped]
        if not pending:
            return fr
        changed = True
        while changed:  # drops, and the drops they cascade to
            changed = False
            for f in pending:
                if f.dropped or f.start_ms is not None:
                    continue
                d = dep[f.model]
                up = by_key.get((d, f.index)) if d else None
                if f.deadline_ms < t - eps or (up is not None and up.dropped):
                    f.dropped, changed = True, True
        pending = [f for f in pending if not f.dropped]
        ready = []
        for f in pending:
            d = dep[f.model]
            up = by_key.get((d, f.index)) if d else None
            if f.release_ms <= t + eps and (up is None or up.completion_ms is not None):
                ready.append(f)
        if not ready:
            if not pending:
                return fr
            nxt = [f.release_ms for f in pending if f.release_ms > t + eps]
            if not nxt:  # waiting on a dependency that can no longer complete
                for f in pending:
                    f.dropped = True
                return fr
            t = min(nxt)
            continue
        f = min(ready, key=lambda f: (f.deadline_ms, order[f.model], f.index))
        seg = timing[f.model].segment_ms
        if f.start_ms is None:
            f.start_ms = t
        dt = seg[f.next_segment]
        f.runs.append((t, t + dt, f.next_segment))
        t += dt
        f.next_segment += 1
        if f.next_segment == len(seg):
            f.completion_ms = t


def rt_score(completion_ms: float, deadline_ms: float, k_per_ms: float = 15.0) -> float:
    x = k_per_ms * (completion_ms - deadline_ms)
    return 1.0 / (1.0 + math.exp(x)) if x < 700 else 0.0


def energy_score(energy_mj: float, energy_max_mj: float = 1500.0) -> float:
    return (energy_max_mj - energy_mj) / energy_max_mj


def score(sc: Scenario, timing: Mapping[str, Timing], played: Sequence[Frame],
          k_per_ms: float = 15.0, energy_max_mj: float = 1500.0) -> dict:
    """XR-bench's scores of a played scenario: per model and the scenario's (module doc)."""
    models = {}
    for m in sc.models:
        fs = [f for f in played if f.model == m.name]
        done = [f for f in fs if not f.dropped]
        tm = timing[m.name]
        rts = [rt_score(f.completion_ms, f.deadline_ms, k_per_ms) for f in done]
        en = energy_score(tm.energy_mj, energy_max_mj)
        n = len(fs)
        ux = 1.0 - (len(fs) - len(done)) / n if n else 0.0
        model_score = (sum(r * en for r in rts) / n) * ux if n else 0.0
        lateness = [f.completion_ms - f.deadline_ms for f in done]
        models[m.name] = {
            "fps": m.fps, "depends_on": m.depends_on,
            "trigger_probability": m.trigger_probability,
            "latency_ms": tm.latency_ms, "deadline_ms": m.period_ms,
            "segments": len(tm.segment_ms),
            "frames": n, "dropped": n - len(done),
            "worst_response_ms": max((f.completion_ms - f.release_ms for f in done), default=None),
            "worst_slack_ms": -max(lateness) if lateness else None,
            "rt_score": sum(rts) / len(rts) if rts else 0.0,
            "energy_mj": tm.energy_mj, "energy_score": en,
            "ux_score": ux, "score": model_score}
    busy = sum(e - s for f in played for s, e, _ in f.runs)
    end = max([e for f in played for _, e, _ in f.runs] + [0.0])
    return {"score": 100.0 * sum(v["score"] for v in models.values()) / max(1, len(models)),
            "busy_ms": busy, "makespan_ms": end, "models": models}


def play(sc: Scenario, timing: Mapping[str, Timing], horizon: Optional[float] = None,
         k_per_ms: float = 15.0, energy_max_mj: float = 1500.0) -> tuple[dict, list[Frame]]:
    h = horizon_ms(sc) if horizon is None else horizon
    played = simulate(sc, timing, h)
    res = score(sc, timing, played, k_per_ms, energy_max_mj)
    res["horizon_ms"] = h
    return res, played


def timing_from_cost(seg_latency_cycles, latency_cycles: float, energy_pj: float,
                     clock_ghz: float) -> Timing:
    """A placement's segments in ms at the clock: the batch model's per-segment latencies
    (nonzero at each segment's first layer), scaled so that they sum to the whole-network
    latency (which also charges GLB spill once for the whole network)."""
    seg = [float(v) for v in seg_latency_cycles if float(v) > 0]
    tot = sum(seg)
    scale = latency_cycles / tot if tot > 0 else 1.0
    cyc_per_ms = clock_ghz * 1e6
    return Timing(tuple(v * scale / cyc_per_ms for v in seg) or (latency_cycles / cyc_per_ms,),
                  energy_pj * 1e-9)


class ScenarioError(ValueError):
    pass


def load_scenarios(wl) -> list[Scenario]:
    """The workload's scenarios: its `scenarios` list (conf/workload/<name>.yaml each), or the
    workload itself when it has FPS targets."""
    from omegaconf import OmegaConf
    from pipeorgan_jax.config import WorkloadConfig
    from pipeorgan_jax.paths import conf_dir
    names = list(wl.get("scenarios") or [])
    if not names:
        if not wl.get("fps"):
            raise ScenarioError(f"workload '{wl.name}' is not a usage scenario (no fps); use "
                                "one of the seven (e.g. +workload=VR_gaming) or "
                                "+workload=xr_bench_scenarios")
        return [Scenario.from_workload(wl)]
    out = []
    for n in names:
        path = conf_dir() / "workload" / f"{n}.yaml"
        if not path.is_file():
            raise ScenarioError(f"workload.scenarios: no scenario '{n}' in {path.parent}")
        doc = OmegaConf.load(path)
        doc.pop("defaults", None)
        node = OmegaConf.merge(OmegaConf.structured(WorkloadConfig), doc)
        if not node.get("fps"):
            raise ScenarioError(f"workload.scenarios: '{n}' has no fps (not a usage scenario)")
        out.append(Scenario.from_workload(node))
    return out
