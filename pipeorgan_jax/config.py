"""Hydra structured configs: the schema every YAML in conf/ is checked against at start."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore


class Topology(enum.Enum):
    mesh = "mesh"
    torus = "torus"
    express = "express"  # mesh plus express links skipping `express_k` routers


class Task(enum.Enum):
    explore = "explore"  # baselines vs searched placements (the main job)
    describe = "describe"  # per-model workload statistics
    vars()["import"] = "import"  # write each model as a workload YAML file (a keyword, hence vars)
    collect = "collect"  # gather a multirun folder (sweep_dir=) into one CSV and plots
    score = "score"  # re-score a saved placement file (placement=) on the chosen hardware
    scenario = "scenario"  # XR-bench usage scenarios: models sharing the array at FPS targets
    codesign = "codesign"  # a sweep of shape-free hardware points, scored in one batched call


class Device(enum.Enum):
    all = "all"  # every device of JAX's default backend (the GPUs when there are any)
    cpu = "cpu"
    gpu = "gpu"


class Backend(enum.Enum):
    auto = "auto"  # the fused C++ kernel on a CPU where it loaded, else XLA
    xla = "xla"  # the combine compiled by XLA
    kernel = "kernel"  # the fused C++ kernel (cost/kernel.py; XLA with a warning where missing)


class Strategy(enum.Enum):
    exhaustive = "exhaustive"
    dp = "dp"
    random = "random"
    evolutionary = "evolutionary"
    annealing = "annealing"
    gradient = "gradient"  # gradient descent on the relaxed cost, per segment (gradient.py)
    dp_gradient = "dp+gradient"  # dp, then gradient from dp's result
    reinforce = "reinforce"  # score-function estimator over relaxed logits (strategies/reinforce.py)
    es = "es"  # an evolution strategy from evosax over relaxed placement logits


class Objective(enum.Enum):
    latency = "latency"
    energy = "energy"
    edp = "edp"
    # the headline searches minimize latency; then the flexible space is searched at
    # search.pareto_points energy weights and its latency-vs-energy front reported and plotted
    pareto = "pareto"


@dataclass
class NocConfig:
    topology: Topology = Topology.mesh
    express_k: int = 4
    link_bytes_per_cycle: float = 4.0
    router_latency_cycles: int = 1


@dataclass
class EnergyConfig:
    source: str = "???"
    mac_pj: float = 0.23
    pe_sram_pj_per_byte: float = 1.25
    # PE SRAM bytes each MAC reads (an activation and a weight; the accumulator is a register)
    pe_sram_bytes_per_mac: float = 2.0
    # per byte per PE pitch of wire, on the mesh and on the GLB distribution network alike
    noc_pj_per_byte_hop: float = 0.46
    glb_pj_per_byte: float = 2.5
    dram_pj_per_byte: float = 46.0


@dataclass
class HardwareConfig:
    name: str = "???"
    source: str = ""
    rows: int = 64
    cols: int = 64
    # Allocation unit: layers get whole units of unit_rows x unit_cols PEs (see organization.py).
    unit_rows: int = 8
    unit_cols: int = 8
    macs_per_pe_per_cycle: int = 1
    pe_sram_bytes: int = 8192
    glb_bytes: int = 4 * 1024 * 1024
    glb_bytes_per_cycle: float = 256.0
    # The GLB distribution network (GLB <-> PEs, multicast-capable): unique bytes per cycle,
    # each direction. The PE mesh (noc) carries only inter-layer forwarding and reductions.
    distribution_bytes_per_cycle: float = 256.0
    dram_bytes_per_cycle: float = 128.0
    data_bytes: int = 1
    # partial-sum width of the reduction (input-channel) partition
    psum_bytes: int = 4
    clock_ghz: float = 1.0
    noc: NocConfig = field(default_factory=NocConfig)
    energy: EnergyConfig = field(default_factory=EnergyConfig)


@dataclass
class WorkloadConfig:
    name: str = "???"
    # Built-in model names (pipeorgan_jax/models/*.yaml) or paths to .yaml / .csv / .m files.
    models: List[str] = field(default_factory=list)
    fps: Dict[str, float] = field(default_factory=dict)
    depends_on: Dict[str, str] = field(default_factory=dict)
    trigger_probability: Dict[str, float] = field(default_factory=dict)
    # A list of scenarios (conf/workload/<name>.yaml, each with fps) for task=scenario, e.g.
    # workload xr_bench_scenarios; empty: the workload itself is the scenario.
    scenarios: List[str] = field(default_factory=list)
    # An ONNX op with no mapping: error (one line naming it) or passthrough (a free view).
    onnx_unsupported: str = "error"


@dataclass
class SearchConfig:
    strategy: Strategy = Strategy.dp
    # Deepest pipeline segment any search considers.
    max_depth: int = 6
    # dp: inner choices scored per candidate tiling per
    # round, and rounds (the later ones mutate each segment's best choice so far).
    dp_batch_size: int = 128
    dp_rounds: int = 2
    # stochastic strategies: population / chains / samples per step, and steps
    batch_size: int = 1024
    iterations: int = 40
    # random / evolutionary / annealing / reinforce / es: run on dp's window rows, one
    # instance per row with row_batch_size proposals per step, boundaries by dp's DP
    # (segmentwise.py); false: on whole placements, batch_size per step
    decompose: bool = True
    row_batch_size: int = 32
    # Wall-clock cap in seconds per model and strategy (0 = none).
    time_budget_s: float = 0.0
    # evolutionary / annealing
    mutation_rate: float = 0.1
    elite_fraction: float = 0.1
    temperature0: float = 0.1
    # gradient (and reinforce): restarts per window row (reinforce: per step), step size;
    # gradient: Adam steps, annealed temperature from t_start to t_end, rounded and scored
    # exactly every round_every steps; reinforce: Gumbel temperature
    restarts: int = 8
    learning_rate: float = 0.1
    gradient_steps: int = 60
    gradient_t_start: float = 1.0
    gradient_t_end: float = 0.05
    gradient_round_every: int = 20
    # gradient from scratch: random inner choices scored exactly per window row first; each
    # row's `restarts` best are the descent's starting points (0: random logits)
    gradient_screen: int = 64
    gumbel_tau: float = 1.0
    # es: the evosax algorithm (SNES, Sep_CMA_ES, Open_ES, ...) and its initial std
    es_algorithm: str = "SNES"
    es_sigma: float = 0.5
    # objective=pareto: energy weights 0, 1/(n-1), ..., 1 (n searches of the flexible space)
    pareto_points: int = 5
    # exhaustive: refuse spaces larger than this
    max_space: int = 2_000_000


@dataclass
class ScenarioConfig:
    """task=scenario: XR-bench's scoring (XRBench v0.1 defaults) and the simulated horizon."""
    # real-time score 1 / (1 + exp(k (completion - deadline))), times in ms (XR-bench: k = 15)
    rt_k_per_ms: float = 15.0
    # energy score (E_max - E) / E_max per inference (XR-bench: E_max = 1500 mJ)
    energy_max_mj: float = 1500.0
    # simulated time; 0: the smallest whole number of hyperperiods in which every triggered
    # model's trigger pattern repeats, capped at max_horizon_s
    horizon_s: float = 0.0
    max_horizon_s: float = 10.0


XR_BENCH_GROUPS = {
    # convolutional networks (CNN backbones, temporal conv, graph CNN on CNN features)
    "convolutional": ["KD_res8_narrow", "AS_ED_TCN", "GE_FBNet_C", "ES_RITNet", "DR_RGBd_200",
                      "DE_midas_v21_small", "HT_hand_graph_cnn_half"],
    # transformer attention (matmul score/context layers)
    "attention": ["ASR_EM_24L", "SS_HRViT_b1"],
    # two-stage object / plane detectors (R-CNN heads)
    "detection": ["OD_D2go_FasterRCNN", "PD_Plane_RCNN_Quarter"],
}


STUDY_GRID = {"glb_bytes_per_cycle": [0.125, 0.25, 0.5, 1.0, 2.0],
              "dram_bytes_per_cycle": [0.125, 0.25, 0.5, 1.0, 2.0]}


@dataclass
class CodesignConfig:
    """task=codesign: hardware points, every shape-free hardware key batchable (hwbatch.LEAVES:
    glb_bytes_per_cycle, dram_bytes_per_cycle, distribution_bytes_per_cycle,
    link_bytes_per_cycle, router_latency_cycles, pe_sram_bytes, glb_bytes, mac_pj, ...)."""
    # the swept keys and, for each, its values; the points are the full grid (every
    # combination). Lists, so that an override replaces them:
    # 'codesign.keys=[link_bytes_per_cycle]' 'codesign.values=[[0.5, 1, 2]]'
    keys: List[str] = field(default_factory=lambda: list(STUDY_GRID))
    values: List[Any] = field(default_factory=lambda: [list(v) for v in STUDY_GRID.values()])
    # values are multiples of the hardware config's own value (else absolute)
    relative: bool = True
    # > 0: that many random points instead of the grid, each key drawn log-uniformly between
    # the smallest and largest of its grid values (seeded by `seed`)
    random_points: int = 0
    # (points x placements) rows held in memory at once inside the one compiled call
    max_rows: int = 4096
    # model groups for the summary and plots; a model in no group goes to "other"
    groups: Dict[str, List[str]] = field(default_factory=lambda: {
        k: list(v) for k, v in XR_BENCH_GROUPS.items()})


@dataclass
class Config:
    task: Task = Task.explore
    objective: Objective = Objective.latency
    seed: int = 0
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    workload: Optional[WorkloadConfig] = None
    # Re-score each model's best flexible placement with the exact reference.
    reference_check: bool = True
    plots: bool = True
    progress: bool = True
    # The batch of placements is split over these devices (a 1-D mesh over the batch axis).
    device: Device = Device.all
    # Which implementation scores placement batches (cost.score_batch); the relaxed
    # (gradient) cost always runs on XLA.
    backend: Backend = Backend.auto
    # Persistent XLA compilation cache, so that a repeat run loads the compiled cost model
    # instead of compiling it again (8 to 19 s per model and hardware shape on a CPU). The
    # folder: this option, else $JAX_COMPILATION_CACHE_DIR, else ~/.cache/pipeorgan_jax/xla.
    compilation_cache: bool = True
    compilation_cache_dir: Optional[str] = None
    # task=collect: a multirun folder (hydra.sweep.dir) to gather into one CSV and plots.
    sweep_dir: Optional[str] = None
    # task=score: a placements/<model>.json written by an explore run.
    placement: Optional[str] = None
    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)
    codesign: CodesignConfig = field(default_factory=CodesignConfig)


def register() -> None:
    # Only the top-level schema is stored: its typed `hardware`, `search` and `workload` nodes
    # check every group file merged into them, and no schema shows up as a group option.
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)


def to_dict(node: Any) -> Any:
    from omegaconf import OmegaConf
    return OmegaConf.to_container(node, resolve=True, enum_to_str=True)


def hydra_overrides() -> list[str]:
    """The command-line overrides of this job (a sweep's swept values included)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        return list(HydraConfig.get().overrides.task)
    except Exception:  # outside a Hydra run
        return []
