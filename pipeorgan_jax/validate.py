"""Config validation at start: every numeric value against its physical range.

Hydra checks types (an int field rejects `1.5`); this module checks meaning: a bandwidth of 0
or `nan` is a valid float but not a machine, and would otherwise surface as a traceback deep
in the cost model or, worse, as a plausible wrong number (a negative bandwidth gives a lower
latency). Ranges are data: one table per config node, key -> `Range`, so a field added to the
hardware or search config needs one line here (tests/test_validate.py fails for a numeric
field with no rule). `check(cfg)` raises `ConfigError` with one line naming the key, the value
and the allowed range.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable, Mapping, Optional


class ConfigError(ValueError):
    """A config value is outside its range; the message is one line naming key and range."""


@dataclasses.dataclass(frozen=True)
class Range:
    """Allowed values of one numeric key: lo < v (lo_open) or lo <= v, v <= hi, finite."""
    lo: Optional[float] = None
    hi: Optional[float] = None
    lo_open: bool = False
    integer: bool = False

    def ok(self, v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
        if self.integer and not isinstance(v, int):
            return False
        if not math.isfinite(v):
            return False
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        return self.hi is None or v <= self.hi

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        parts = []
        if self.lo is not None:
            parts.append(f"{'>' if self.lo_open else '>='} {_num(self.lo)}")
        if self.hi is not None:
            parts.append(f"<= {_num(self.hi)}")
        return kind + (" " + " and ".join(parts) if parts else "")


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e20 else f"{v:g}"


POS_INT = Range(lo=1, integer=True)  # sizes, counts
NONNEG_INT = Range(lo=0, integer=True)
POS = Range(lo=0, lo_open=True)  # bandwidths, clock, rates
NONNEG = Range(lo=0)  # energies, time budgets
FRACTION = Range(lo=0, hi=1)
# Array sides: the reference materializes per-PE maps and the batch model per-unit tables.
ARRAY_SIDE = Range(lo=1, hi=4096, integer=True)

MAX_UNITS = 4096

HARDWARE: dict[str, Range] = {
    "rows": ARRAY_SIDE,
    "cols": ARRAY_SIDE,
    "unit_rows": ARRAY_SIDE,
    "unit_cols": ARRAY_SIDE,
    "macs_per_pe_per_cycle": POS_INT,
    "pe_sram_bytes": POS_INT,
    "glb_bytes": POS_INT,
    "glb_bytes_per_cycle": POS,
    "distribution_bytes_per_cycle": POS,
    "dram_bytes_per_cycle": POS,
    "data_bytes": Range(lo=1, hi=16, integer=True),
    "psum_bytes": Range(lo=1, hi=16, integer=True),
    "clock_ghz": POS,
    "noc.express_k": POS_INT,
    "noc.link_bytes_per_cycle": POS,
    "noc.router_latency_cycles": NONNEG_INT,
    "energy.mac_pj": NONNEG,
    "energy.pe_sram_pj_per_byte": NONNEG,
    "energy.pe_sram_bytes_per_mac": NONNEG,
    "energy.noc_pj_per_byte_hop": NONNEG,
    "energy.glb_pj_per_byte": NONNEG,
    "energy.dram_pj_per_byte": NONNEG,
}

SEARCH: dict[str, Range] = {
    "max_depth": POS_INT,
    "dp_batch_size": POS_INT,
    "dp_rounds": POS_INT,
    "batch_size": POS_INT,
    "iterations": POS_INT,
    "time_budget_s": NONNEG,  # 0 = no cap
    "mutation_rate": FRACTION,
    "elite_fraction": FRACTION,
    "temperature0": POS,
    "restarts": POS_INT,
    "learning_rate": POS,
    "gumbel_tau": POS,
    "gradient_steps": POS_INT,
    "gradient_t_start": POS,
    "gradient_t_end": POS,
    "gradient_round_every": POS_INT,
    "gradient_screen": NONNEG_INT,  # 0 = start from random logits
    "row_batch_size": Range(lo=2, integer=True),
    "max_space": POS_INT,
    "es_sigma": POS,
    "pareto_points": Range(lo=2, integer=True),
}

SCENARIO: dict[str, Range] = {
    "rt_k_per_ms": POS,
    "energy_max_mj": POS,
    "horizon_s": Range(lo=0, hi=3600),  # 0 = automatic
    "max_horizon_s": Range(lo=0, hi=3600, lo_open=True),
}

CODESIGN: dict[str, Range] = {
    "random_points": Range(lo=0, hi=1_000_000, integer=True),
    "max_rows": POS_INT,
}

# numpy's default_rng takes any non-negative integer; the seed is documented as such.
TOP: dict[str, Range] = {"seed": Range(lo=0, hi=2 ** 63 - 1, integer=True)}


def _get(node: Any, dotted: str) -> Any:
    for k in dotted.split("."):
        node = node[k] if isinstance(node, Mapping) else getattr(node, k)
    return node


def check_ranges(node: Any, rules: Mapping[str, Range], prefix: str) -> None:
    for key, rng in rules.items():
        v = _get(node, key)
        if not rng.ok(v):
            raise ConfigError(f"{prefix}{key}={v!r}: must be {rng.describe()}")


def check_hardware(hw: Any, prefix: str = "hardware.") -> None:
    """Ranges of every numeric hardware field, then the fields' consistency."""
    check_ranges(hw, HARDWARE, prefix)
    g = lambda k: _get(hw, k)
    for side, unit in (("rows", "unit_rows"), ("cols", "unit_cols")):
        if g(side) % g(unit):
            raise ConfigError(f"{prefix}{unit}={g(unit)}: must divide {prefix}{side}="
                              f"{g(side)} (allocation units tile the array)")
    units = (g("rows") // g("unit_rows")) * (g("cols") // g("unit_cols"))
    if units > MAX_UNITS:
        # the batch model's per-unit tables grow as units**2 (4 GiB at 16k units)
        raise ConfigError(f"{prefix}unit_rows={g('unit_rows')}, {prefix}unit_cols="
                          f"{g('unit_cols')}: {units} allocation units; at most {MAX_UNITS} "
                          "(use larger units)")
    topo = getattr(g("noc.topology"), "value", g("noc.topology"))
    k = g("noc.express_k")
    if topo == "express" and not (k == g("unit_rows") == g("unit_cols")):
        raise ConfigError(f"{prefix}noc.express_k={k}: express links skip one allocation "
                          f"unit, so it must equal {prefix}unit_rows={g('unit_rows')} and "
                          f"{prefix}unit_cols={g('unit_cols')}")


def check_workload(wl: Any) -> None:
    models = list(_get(wl, "models") or [])
    if not models:
        raise ConfigError(f"workload.models: workload '{_get(wl, 'name')}' lists no models; "
                          "give one or more, e.g. 'workload.models=[path/to/model.yaml]'")
    for k, v in (_get(wl, "fps") or {}).items():
        if not POS.ok(v):
            raise ConfigError(f"workload.fps.{k}={v!r}: must be {POS.describe()}")
    for k, v in (_get(wl, "trigger_probability") or {}).items():
        if not FRACTION.ok(v):
            raise ConfigError(f"workload.trigger_probability.{k}={v!r}: must be "
                              f"{FRACTION.describe()}")


def check_es(search: Any) -> None:
    """search=es names an evosax algorithm (checked only when it runs: evosax loads slowly)."""
    try:
        strategy = _get(search, "strategy")
    except (KeyError, AttributeError):
        return
    if getattr(strategy, "value", strategy) != "es":
        return
    import evosax.algorithms
    name = _get(search, "es_algorithm")
    if not isinstance(getattr(evosax.algorithms, str(name), None), type):
        raise ConfigError(f"search.es_algorithm={name!r}: not an evosax algorithm (e.g. SNES, "
                          "Sep_CMA_ES, Open_ES, CMA_ES)")


def check(cfg: Any) -> None:
    """Every numeric value of a run's config; raises ConfigError (one line) on the first bad one."""
    check_ranges(cfg, TOP, "")
    check_hardware(_get(cfg, "hardware"))
    check_ranges(_get(cfg, "search"), SEARCH, "search.")
    check_es(_get(cfg, "search"))
    if _get(cfg, "workload") is not None:
        check_workload(_get(cfg, "workload"))
    if _has(cfg, "scenario"):
        check_ranges(_get(cfg, "scenario"), SCENARIO, "scenario.")
    if _has(cfg, "codesign"):
        check_codesign(_get(cfg, "codesign"))


def _has(node: Any, key: str) -> bool:
    try:
        return _get(node, key) is not None
    except (KeyError, AttributeError):
        return False


def check_codesign(cd: Any) -> None:
    """Ranges, then the grid: batchable keys only, one or more finite values per key, > 0
    (energies and the router latency >= 0); relative values are multiples of the default."""
    from pipeorgan_jax.hwkeys import LEAVES, NONNEG_KEYS
    check_ranges(cd, CODESIGN, "codesign.")
    keys, values = list(_get(cd, "keys") or []), list(_get(cd, "values") or [])
    if not keys:
        raise ConfigError("codesign.keys: no hardware key to sweep; give one or more, e.g. "
                          "'codesign.keys=[glb_bytes_per_cycle]' 'codesign.values=[[0.5, 1, 2]]'")
    if len(values) != len(keys):
        raise ConfigError(f"codesign.values: {len(values)} value lists for {len(keys)} keys "
                          f"({', '.join(keys)}); give one list per key")
    if len(set(keys)) != len(keys):
        raise ConfigError(f"codesign.keys: a key is listed twice ({', '.join(keys)})")
    for k, vals in zip(keys, values):
        if k not in LEAVES:
            raise ConfigError(f"codesign.keys: {k} is not a shape-free hardware key; batchable: "
                              f"{', '.join(sorted(LEAVES))} (array shape and topology are "
                              "swept as a Hydra multirun, -m)")
        if not isinstance(vals, (list, tuple)) and not hasattr(vals, "__len__"):
            raise ConfigError(f"codesign.values for {k}: {vals!r} must be a list of numbers")
        vals = list(vals or [])
        rng = NONNEG if k in NONNEG_KEYS else POS
        if not vals:
            raise ConfigError(f"codesign.values for {k}: give one or more values")
        for v in vals:
            if not rng.ok(v):
                raise ConfigError(f"codesign.values for {k}: {v!r} must be {rng.describe()}")


def numeric_fields(dc: type, prefix: str = "") -> Iterable[str]:
    """Dotted names of a config dataclass's int/float fields (for the coverage test)."""
    for f in dataclasses.fields(dc):
        t = f.type if not isinstance(f.type, str) else f.type
        if dataclasses.is_dataclass(f.default_factory if f.default_factory is not
                                    dataclasses.MISSING else None):
            yield from numeric_fields(f.default_factory, f"{prefix}{f.name}.")
        elif t in (int, float, "int", "float"):
            yield f"{prefix}{f.name}"
