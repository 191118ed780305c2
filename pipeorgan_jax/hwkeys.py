"""The hardware parameters that do not change array shapes, by config key: what a co-design
sweep may batch (hwbatch.py) and what validate.py accepts in `codesign.keys`. No jax here, so
that config validation does not import the cost model."""
from __future__ import annotations

# Hardware attribute (the config key: `glb_bytes_per_cycle`, `link_bytes_per_cycle` for
# hardware.noc.link_bytes_per_cycle, `mac_pj` for hardware.energy.mac_pj, ...) -> HwArrays leaf
LEAVES: dict[str, str] = {
    "pe_sram_bytes": "sram",
    "glb_bytes": "glb",
    "glb_bytes_per_cycle": "glb_bw",
    "distribution_bytes_per_cycle": "dist_bw",
    "dram_bytes_per_cycle": "dram_bw",
    "link_bytes_per_cycle": "link_bw",
    "router_latency_cycles": "router",
    "mac_pj": "e_mac",
    "pe_sram_pj_per_byte": "e_sram",
    "noc_pj_per_byte_hop": "e_noc",
    "glb_pj_per_byte": "e_glb",
    "dram_pj_per_byte": "e_dram",
}
# where each key lives in the hardware config (for messages and results)
CONFIG_PATH = {k: (f"noc.{k}" if k in ("link_bytes_per_cycle", "router_latency_cycles") else
                   f"energy.{k}" if k.endswith("_pj") or k.endswith("_pj_per_byte")
                   or k.endswith("_pj_per_byte_hop") else k) for k in LEAVES}
# integer-valued hardware fields: a swept value is rounded
INTEGER_KEYS = ("pe_sram_bytes", "glb_bytes", "router_latency_cycles")
# energies may be 0; every other key must be > 0
NONNEG_KEYS = tuple(k for k in LEAVES if CONFIG_PATH[k].startswith("energy.")) + ("router_latency_cycles",)
