"""Hardware description: the PE array, buffers, NoC topology and energy table.

`Hardware` is a plain frozen dataclass built from the Hydra `HardwareConfig`; `hops` is the
one definition of per-dimension hop counts that the batch model and the reference share.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

TOPOLOGIES = ("mesh", "torus", "express")


class HardwareError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Hardware:
    name: str
    rows: int
    cols: int
    unit_rows: int
    unit_cols: int
    macs_per_pe_per_cycle: int
    pe_sram_bytes: int
    glb_bytes: int
    glb_bytes_per_cycle: float
    dram_bytes_per_cycle: float
    data_bytes: int
    clock_ghz: float
    topology: str
    express_k: int
    link_bytes_per_cycle: float
    router_latency_cycles: int
    mac_pj: float
    pe_sram_pj_per_byte: float
    noc_pj_per_byte_hop: float
    glb_pj_per_byte: float
    dram_pj_per_byte: float
    energy_source: str = ""
    distribution_bytes_per_cycle: float = 256.0
    psum_bytes: int = 4
    pe_sram_bytes_per_mac: float = 2.0

    @property
    def grid(self) -> tuple[int, int]:
        return self.rows // self.unit_rows, self.cols // self.unit_cols

    @property
    def n_units(self) -> int:
        gh, gw = self.grid
        return gh * gw

    @property
    def unit_pes(self) -> int:
        return self.unit_rows * self.unit_cols

    @property
    def n_pes(self) -> int:
        return self.rows * self.cols

    def with_(self, **kw) -> "Hardware":
        return dataclasses.replace(self, **kw)

    @staticmethod
    def from_config(cfg: Any) -> "Hardware":
        def get(node, key):
            return node[key] if isinstance(node, dict) else getattr(node, key)
        from pipeorgan_jax.validate import check_hardware
        check_hardware(cfg)  # ranges (bandwidths > 0, energies >= 0, ...): one-line ConfigError
        noc, en = get(cfg, "noc"), get(cfg, "energy")
        topo = get(noc, "topology")
        topo = getattr(topo, "value", topo)
        hw = Hardware(
            name=str(get(cfg, "name")), rows=int(get(cfg, "rows")), cols=int(get(cfg, "cols")),
            unit_rows=int(get(cfg, "unit_rows")), unit_cols=int(get(cfg, "unit_cols")),
            macs_per_pe_per_cycle=int(get(cfg, "macs_per_pe_per_cycle")),
            pe_sram_bytes=int(get(cfg, "pe_sram_bytes")), glb_bytes=int(get(cfg, "glb_bytes")),
            glb_bytes_per_cycle=float(get(cfg, "glb_bytes_per_cycle")),
            dram_bytes_per_cycle=float(get(cfg, "dram_bytes_per_cycle")),
            data_bytes=int(get(cfg, "data_bytes")), clock_ghz=float(get(cfg, "clock_ghz")),
            topology=str(topo), express_k=int(get(noc, "express_k")),
            link_bytes_per_cycle=float(get(noc, "link_bytes_per_cycle")),
            router_latency_cycles=int(get(noc, "router_latency_cycles")),
            mac_pj=float(get(en, "mac_pj")), pe_sram_pj_per_byte=float(get(en, "pe_sram_pj_per_byte")),
            noc_pj_per_byte_hop=float(get(en, "noc_pj_per_byte_hop")),
            glb_pj_per_byte=float(get(en, "glb_pj_per_byte")),
            dram_pj_per_byte=float(get(en, "dram_pj_per_byte")),
            energy_source=str(get(en, "source")),
            distribution_bytes_per_cycle=float(get(cfg, "distribution_bytes_per_cycle")),
            psum_bytes=int(get(cfg, "psum_bytes")),
            pe_sram_bytes_per_mac=float(get(en, "pe_sram_bytes_per_mac")))
        hw.check()
        return hw

    def check(self) -> None:
        if self.topology not in TOPOLOGIES:
            raise HardwareError(f"hardware '{self.name}': unknown topology {self.topology!r}")
        for f in ("rows", "cols", "unit_rows", "unit_cols", "macs_per_pe_per_cycle",
                  "pe_sram_bytes", "glb_bytes", "data_bytes", "psum_bytes"):
            if getattr(self, f) <= 0:
                raise HardwareError(f"hardware '{self.name}': {f} must be positive")
        if self.rows % self.unit_rows or self.cols % self.unit_cols:
            raise HardwareError(f"hardware '{self.name}': unit {self.unit_rows}x{self.unit_cols}"
                                f" must tile the {self.rows}x{self.cols} array")
        if self.topology == "express" and not (self.express_k == self.unit_rows == self.unit_cols):
            raise HardwareError(f"hardware '{self.name}': express links need express_k == "
                                f"unit_rows == unit_cols (got {self.express_k}, "
                                f"{self.unit_rows}, {self.unit_cols})")


def hops(d: np.ndarray, n: int, topology: str, k: int) -> np.ndarray:
    """Hop count for an offset d (>= 0) along a dimension of length n."""
    d = np.abs(np.asarray(d))
    if topology == "mesh":
        return d
    if topology == "torus":
        return np.minimum(d, n - d)
    return d // k + d % k


def load_hardware(name: str = "xrbench_4k", overrides: list[str] | None = None) -> Hardware:
    """Compose a hardware config from conf/hardware/ by name (the Python API's entry)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from pipeorgan_jax.config import register
    from pipeorgan_jax.paths import conf_dir

    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        cfg = compose(config_name="config", overrides=[f"hardware={name}"] + list(overrides or []))
    return Hardware.from_config(cfg.hardware)


def load_hardware_file(path: str | Path) -> Hardware:
    import yaml
    from pipeorgan_jax.config import HardwareConfig
    from omegaconf import OmegaConf
    doc = yaml.safe_load(Path(path).read_text())
    doc.pop("defaults", None)
    cfg = OmegaConf.merge(OmegaConf.structured(HardwareConfig), doc)
    return Hardware.from_config(cfg)
