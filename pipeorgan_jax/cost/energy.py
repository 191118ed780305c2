"""Phase 4 of the combine: energy, whole-network and per segment (docs/cost_model.md,
"Energy"). Every term is bytes (or MACs) moved times the hardware's energy per unit."""
from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from pipeorgan_jax.cost.tables import HwArrays, ModelArrays
from pipeorgan_jax.cost.timing import Memory
from pipeorgan_jax.cost.traffic import Traffic, by_dst


class Energy(NamedTuple):
    mac_pj: jnp.ndarray
    pe_sram_pj: jnp.ndarray
    noc_pj: jnp.ndarray
    glb_pj: jnp.ndarray
    dram_pj: jnp.ndarray
    byte_hops: jnp.ndarray  # mesh and distribution network together
    dist_byte_hops: jnp.ndarray

    @property
    def total_pj(self):
        return self.mac_pj + self.pe_sram_pj + self.noc_pj + self.glb_pj + self.dram_pj


def energy(ma: ModelArrays, ha: HwArrays, tr: Traffic, mem: Memory) -> Energy:
    mesh_bh = tr.e_mesh_bh.sum() + tr.ps_bh.sum()
    dist_bh = tr.e_dist_bh.sum() + tr.out_bh.sum() + tr.w_bh.sum()
    byte_hops = mesh_bh + dist_bh
    delivered = tr.e_deliv.sum() + tr.w_deliv.sum() + tr.ps_deliv.sum()
    return Energy(
        mac_pj=ma.ops_total * ha.e_mac,
        pe_sram_pj=(ma.ops_total * ha.sram_per_mac + delivered) * ha.e_sram,
        noc_pj=byte_hops * ha.e_noc, glb_pj=mem.glb_bytes * ha.e_glb,
        dram_pj=mem.dram_bytes * ha.e_dram, byte_hops=byte_hops, dist_byte_hops=dist_bh)


def per_layer_parts(ma: ModelArrays, ha: HwArrays, tr: Traffic, mem: Memory):
    """[L, 9] every energy term, and the byte counts behind them, charged to the layer it
    belongs to: MAC, PE SRAM, NoC, GLB and DRAM pJ, byte-hops (all, distribution network),
    GLB bytes, DRAM bytes. Summed over a segment they are its record (SegmentCost)."""
    mesh_bh = by_dst(ma, tr.e_mesh_bh) + tr.ps_bh
    dist_bh = by_dst(ma, tr.e_dist_bh) + tr.out_bh + tr.w_bh
    glb = tr.glb_in_l + tr.glb_out_l + ma.W + tr.w_bytes + mem.net_in_first
    dram = ma.W + mem.net_out_bytes + mem.net_in_first
    return jnp.stack([
        ma.ops * ha.e_mac,
        ha.e_sram * (ma.ops * ha.sram_per_mac + by_dst(ma, tr.e_deliv) + tr.w_deliv + tr.ps_deliv),
        ha.e_noc * (mesh_bh + dist_bh), ha.e_glb * glb, ha.e_dram * dram,
        mesh_bh + dist_bh, dist_bh, glb, dram], 1)


def per_layer(ma: ModelArrays, ha: HwArrays, tr: Traffic, mem: Memory):
    """Every energy term charged to the layer it belongs to (summed per segment for dp)."""
    return per_layer_parts(ma, ha, tr, mem)[:, :5].sum(1)
