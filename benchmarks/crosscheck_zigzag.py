"""External cross-check: per-layer layer-by-layer cost against ZigZag (zigzag-dse, LOMA mapper).

For a set of layers of different kinds taken from the built-in models, this script
1. scores each layer with pipeorgan_jax as a one-layer network (input read from DRAM, weights
   from DRAM, output written back: what ZigZag sees when it evaluates one layer), over every
   granularity and every intra-layer partition, and keeps the fastest feasible placement;
2. runs ZigZag on an accelerator description generated from the same hardware config
   (64x64 MACs, per-PE SRAM, a multicasting GLB, DRAM; same bandwidths and per-byte energies),
   letting its spatial-mapping generator and LOMA pick the fastest mapping;
3. prints latency and energy (ours without the NoC term, which ZigZag does not model) side by
   side, with their ratios and, where a ratio is outside [1/1.5, 1.5], the cause.

It uses only the public API of pipeorgan_jax (load_model, load_hardware, Scorer, placement),
so it keeps working while the cost model changes; the table in docs/validation.md says which
checkout it was measured on.

ZigZag is an optional dependency (`pip install ".[crosscheck]"`, or a separate venv, see
docs/validation.md). Run from the repository root:

    python benchmarks/crosscheck_zigzag.py --out results/crosscheck_zigzag
"""
from __future__ import annotations

import argparse
import csv
import logging
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeorgan_jax.cost import Scorer  # noqa: E402
from pipeorgan_jax.hardware import load_hardware  # noqa: E402
from pipeorgan_jax.placement import GRAN_ROWS, PARTITIONS, Placement, layer_by_layer  # noqa: E402
from pipeorgan_jax.loading import load_model  # noqa: E402

# (model, layer, kind): at least one of every kind the issue names.
LAYERS = [
    ("GE_FBNet_C", "conv1", "3x3 s2 conv (stem)"),
    ("DR_RGBd_200", "conv6", "3x3 s2 conv, large res"),
    ("ES_RITNet", "down1.conv22", "3x3 conv, large res"),
    ("DR_RGBd_200", "conv17", "3x3 conv, C=K=512"),
    ("DR_RGBd_200", "conv22", "5x5 conv, large res"),
    ("DR_RGBd_200", "conv18", "1x1 s2 conv"),
    ("GE_FBNet_C", "conv4", "1x1 conv, expand"),
    ("GE_FBNet_C", "conv62", "1x1 conv, large K"),
    ("GE_FBNet_C", "conv18", "5x5 depthwise"),
    ("GE_FBNet_C", "conv5", "3x3 s2 depthwise"),
    ("ASR_EM_24L", "fc1", "fc, 128 tokens"),
    ("OD_D2go_FasterRCNN", "conv20", "fc, one vector"),
]

TOL = 1.5


# ----------------------------------------------------------------------------- our side
def _raw_layer(model: str, lname: str) -> dict:
    doc = yaml.safe_load((ROOT / "pipeorgan_jax" / "models" / f"{model}.yaml").read_text())
    for spec in doc["layers"]:
        if spec["name"] == lname:
            return dict(spec)
    raise KeyError(f"{model} has no layer {lname}")


def one_layer_doc(model: str, lname: str) -> dict:
    """A one-layer workload (docs/workload_format.md): the layer fed by a network input of
    its producer's shape; its output is the network output."""
    m = load_model(model)
    layer = next(l for l in m.layers if l.name == lname)
    spec = _raw_layer(model, lname)
    names = [f"in{i}" for i in range(len(layer.in_shapes))]
    spec["inputs"] = names
    spec.pop("inferred", None)
    return {
        "name": f"{model}.{lname}",
        "description": f"{lname} of {model}, alone",
        "data_bytes": m.data_bytes,
        "inputs": [{"name": n, "shape": list(s)} for n, s in zip(names, layer.in_shapes)],
        "layers": [spec],
    }


def ours_one_layer(doc: dict, hw, tmp: Path) -> dict:
    """Best feasible (lowest latency) one-layer placement over every granularity x partition."""
    path = tmp / f"{doc['name']}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    model = load_model(path)
    scorer = Scorer(model, hw)
    cands = [(g, p) for g in range(len(GRAN_ROWS)) for p in range(len(PARTITIONS))]
    ps = [layer_by_layer(1, gran=g, part=np.array([p])) for g, p in cands]
    batch = Placement(*(np.stack([np.asarray(f) for f in fs]) for fs in zip(*(q.fields() for q in ps))))
    c = scorer(batch)
    lat = np.where(c["feasible"], c["latency_cycles"], np.inf)
    i = int(np.argmin(lat))
    if not np.isfinite(lat[i]):
        return {"feasible": False}
    g, p = cands[i]
    out = {k: float(c[k][i]) for k in ("latency_cycles", "energy_pj", "energy_mac_pj", "energy_pe_sram_pj",
                                       "energy_noc_pj", "energy_glb_pj", "energy_dram_pj")}
    for k in ("max_link_bytes", "glb_bytes", "dram_bytes"):  # present in the Scorer's output today
        if k in c:
            out[k] = float(c[k][i])
    layer = model.layers[0]
    io_elems = sum(int(np.prod(s)) for s in layer.in_shapes) + int(np.prod(layer.out_shape))
    out["min_dram_bytes"] = (io_elems + int(layer.weight_elems)) * model.data_bytes
    out.update(feasible=True, macs=int(layer.macs),
               mapping=f"{'whole' if GRAN_ROWS[g] == 0 else f'{GRAN_ROWS[g]}-row'} tiles, {PARTITIONS[p]}")
    return out


def ours_in_network(model: str, hw) -> dict[str, float]:
    """Per layer: best feasible seg_latency of a whole-network layer-by-layer placement (every
    granularity x partition); the layer's cost where its input and output stay in the GLB."""
    m = load_model(model)
    L = len(m.layers)
    scorer = Scorer(m, hw)
    cands = [layer_by_layer(L, gran=g, part=np.full(L, p)) for g in range(len(GRAN_ROWS))
             for p in range(len(PARTITIONS))]
    batch = Placement(*(np.stack([np.asarray(f) for f in fs]) for fs in zip(*(q.fields() for q in cands))))
    c = scorer(batch)
    lat = np.where(c["seg_feasible"], c["seg_latency"], np.inf).min(axis=0)
    return {l.name: float(lat[i]) for i, l in enumerate(m.layers)}


# ----------------------------------------------------------------------------- ZigZag side
def zz_accelerator(hw, pe_regs: bool) -> dict:
    """ZigZag accelerator description matched to `hw` (sizes and bandwidths in bits; r_cost /
    w_cost in pJ per access of the port's full width bandwidth_max)."""
    bits = 8 * hw.data_bytes
    B = 8  # bits per byte

    def port(name, typ, bw, alloc):
        return {"name": name, "type": typ, "bandwidth_min": bits, "bandwidth_max": int(bw),
                "allocation": alloc}

    rw_all = ["I1, fh", "I1, tl", "I2, fh", "I2, tl", "O, fh", "O, tl", "O, fl", "O, th"]
    pe_bw = 4 * bits
    mems = {}
    if pe_regs:
        # the MAC's operand latches and accumulator (one word each, cost inside mac_pj)
        for name, op in (("reg_W", "I2"), ("reg_I", "I1")):
            mems[name] = {"size": bits, "r_cost": 0.0, "w_cost": 0.0, "area": 0, "latency": 1,
                          "operands": [op],
                          "ports": [port("r_port_1", "read", bits, [f"{op}, tl"]),
                                    port("w_port_1", "write", bits, [f"{op}, fh"])],
                          "served_dimensions": []}
        mems["reg_O"] = {"size": bits, "r_cost": 0.0, "w_cost": 0.0, "area": 0, "latency": 1,
                         "operands": ["O"],
                         "ports": [port("r_port_1", "read", bits, ["O, tl"]),
                                   port("r_port_2", "read", bits, ["O, th"]),
                                   port("w_port_1", "write", bits, ["O, fh"]),
                                   port("w_port_2", "write", bits, ["O, fl"])],
                         "served_dimensions": []}
    # One port per operand and direction: ZigZag serializes the transfers that share a port, and
    # our model feeds every MAC each cycle, so PE-level bandwidth must never be the bound.
    pe_ports = [port(f"r_port_{i + 1}", "read", pe_bw, [a])
                for i, a in enumerate(("I1, tl", "I2, tl", "O, tl", "O, th"))]
    pe_ports += [port(f"w_port_{i + 1}", "write", pe_bw, [a])
                 for i, a in enumerate(("I1, fh", "I2, fh", "O, fh", "O, fl"))]
    mems["pe_sram"] = {
        "size": hw.pe_sram_bytes * B, "r_cost": hw.pe_sram_pj_per_byte * pe_bw / B,
        "w_cost": hw.pe_sram_pj_per_byte * pe_bw / B, "area": 0, "latency": 1,
        "operands": ["I1", "I2", "O"], "ports": pe_ports,
        "served_dimensions": [],  # one per PE
    }
    glb_bw = hw.glb_bytes_per_cycle * B
    mems["glb"] = {
        "size": hw.glb_bytes * B, "r_cost": hw.glb_pj_per_byte * glb_bw / B,
        "w_cost": hw.glb_pj_per_byte * glb_bw / B, "area": 0, "latency": 1,
        "operands": ["I1", "I2", "O"],
        "ports": [port("rw_port_1", "read_write", glb_bw, rw_all)],
        "served_dimensions": ["D1", "D2"],  # multicast to the whole array
    }
    dram_bw = hw.dram_bytes_per_cycle * B
    mems["dram"] = {
        "size": 2 ** 40, "r_cost": hw.dram_pj_per_byte * dram_bw / B,
        "w_cost": hw.dram_pj_per_byte * dram_bw / B, "area": 0, "latency": 1,
        "operands": ["I1", "I2", "O"],
        "ports": [port("rw_port_1", "read_write", dram_bw, rw_all)],
        "served_dimensions": ["D1", "D2"],
    }
    return {
        "name": f"{hw.name}_zigzag",
        "memories": mems,
        "operational_array": {
            "unit_energy": hw.mac_pj, "unit_area": 1,
            "dimensions": ["D1", "D2"], "sizes": [hw.rows, hw.cols * hw.macs_per_pe_per_cycle],
        },
    }


def _same_pad(n: int, k: int, s: int, padding) -> tuple[int, int, int]:
    """(output length, leading pad, trailing pad) per docs/workload_format.md."""
    if padding == "same":
        o = -(-n // s)
    elif padding == "valid":
        o = (n - k) // s + 1
    else:
        o = (n + 2 * int(padding) - k) // s + 1
    total = max(0, (o - 1) * s + k - n)
    lead = int(padding) if isinstance(padding, int) else total // 2
    return o, lead, max(0, total - lead)


def zz_layer(doc: dict) -> dict:
    """The one layer of `doc` as a ZigZag workload layer (the ONNX conv parser's equation)."""
    spec = doc["layers"][0]
    bits = 8 * doc.get("data_bytes", 1)
    op = spec["op"]
    if op == "conv":
        C, K, Y, X, R, S = (int(spec[k]) for k in ("C", "K", "Y", "X", "R", "S"))
        sy = int(spec.get("stride", 1))
        sx = int(spec.get("stride_x") or sy)
        G = int(spec.get("groups", 1))
        pad = spec.get("padding", "same")
        oy, py0, py1 = _same_pad(Y, R, sy, pad)
        ox, px0, px1 = _same_pad(X, S, sx, pad)
        sizes = dict(B=1, K=K // G, G=G, OX=ox, OY=oy, C=C // G, FX=S, FY=R)
        rel = [f"ix={sx}*ox+1*fx", f"iy={sy}*oy+1*fy"]
        pr = dict(pr_loop_dims=["IX", "IY"], pr_loop_sizes=[X, Y], padding=[[px0, px1], [py0, py1]])
    elif op == "fc":
        C, K = int(spec["C"]), int(spec["K"])
        sizes = dict(B=1, K=K, G=1, OX=int(spec.get("X", 1)), OY=int(spec.get("Y", 1)), C=C, FX=1, FY=1)
        rel = ["ix=1*ox+1*fx", "iy=1*oy+1*fy"]
        pr = {}
    else:
        raise ValueError(f"op {op} is not cross-checked")
    return {
        "id": 0, "name": spec["name"], "operator_type": "Conv",
        "equation": "O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*I[b][g][c][iy][ix]",
        "dimension_relations": rel,
        "loop_dims": list(sizes), "loop_sizes": [int(v) for v in sizes.values()],
        # partial sums at the data width, as in our model (no wider accumulators)
        "operand_precision": {"W": bits, "I": bits, "O": bits, "O_final": bits},
        "operand_source": {"I": 0, "W": 0},
        **pr,
    }


def run_zigzag(layer: dict, acc_path: str, map_path: str, lpf: int, n_sm: int, mix: bool) -> dict:
    from zigzag.mapping.temporal_mapping import TemporalMappingType
    from zigzag.stages.evaluation.cost_model_evaluation import CostModelStage
    from zigzag.stages.main import MainStage
    from zigzag.stages.mapping.spatial_mapping_generation import SpatialMappingGeneratorStage
    from zigzag.stages.mapping.temporal_mapping_generator_stage import TemporalMappingGeneratorStage
    from zigzag.stages.parser.accelerator_parser import AcceleratorParserStage
    from zigzag.stages.parser.workload_parser import WorkloadParserStage
    from zigzag.stages.results.reduce_stages import MinimalLatencyStage
    from zigzag.stages.workload_iterator import WorkloadStage

    stages = [WorkloadParserStage, AcceleratorParserStage, WorkloadStage, MinimalLatencyStage,
              SpatialMappingGeneratorStage, MinimalLatencyStage, TemporalMappingGeneratorStage,
              CostModelStage]
    main = MainStage(stages, accelerator=acc_path, workload=[layer], mapping=map_path,
                     loma_lpf_limit=lpf, loma_show_progress_bar=False, nb_mappings_generated=n_sm,
                     enable_mix_spatial_mapping_generation=mix,
                     access_same_data_considered_as_no_access=True,
                     temporal_mapping_type=TemporalMappingType.UNEVEN)
    (cme, _), = main.run()
    per_level: dict[str, float] = {}
    hier = cme.accelerator.memory_hierarchy
    for layer_op, energies in cme.mem_energy_breakdown.items():
        mem_op = cme.memory_operand_links.layer_to_mem_op(layer_op)
        for lvl, e in zip(hier.get_memory_levels(mem_op=mem_op), energies):
            per_level[lvl.name] = per_level.get(lvl.name, 0.0) + float(e)
    return {
        "latency_cycles": float(cme.latency_total2),
        "ideal_cycles": float(cme.ideal_temporal_cycle),
        "onload_cycles": float(cme.data_onloading_cycle),
        "offload_cycles": float(cme.data_offloading_cycle),
        "stall_cycles": float(cme.latency_total2 - cme.ideal_temporal_cycle - cme.data_onloading_cycle
                              - cme.data_offloading_cycle),
        "energy_pj": float(cme.energy_total),
        "energy_mac_pj": float(cme.mac_energy),
        "energy_pe_sram_pj": sum(v for k, v in per_level.items()
                                 if k in ("pe_sram", "reg_W", "reg_I", "reg_O")),
        "energy_glb_pj": per_level.get("glb", 0.0),
        "energy_dram_pj": per_level.get("dram", 0.0),
        "macs": int(cme.layer.total_mac_count),
        "spatial_util": float(cme.mac_spatial_utilization),
        "mapping": str(cme.layer.spatial_mapping),
        "temporal": str(cme.temporal_mapping),
    }


# ----------------------------------------------------------------------------- comparison
def _bound(o: dict, hw) -> tuple[float, str]:
    """Lower bound on a one-layer latency: compute at full array use, or moving the layer's
    weights, input and output through DRAM once."""
    comp = o["macs"] / (hw.n_pes * hw.macs_per_pe_per_cycle)
    dram = o["min_dram_bytes"] / hw.dram_bytes_per_cycle
    return (comp, "compute") if comp >= dram else (dram, "DRAM")


def _cause(o: dict, z: dict, what: str, hw) -> str:
    """A short reason for a ratio outside [1/TOL, TOL], from the two breakdowns."""
    if what == "latency_cycles":
        r = o[what] / z[what]
        bound, kind = _bound(o, hw)
        why = []
        if o[what] < 0.99 * bound:
            why.append(f"ours below the {kind} bound ({bound:.0f})")
        zio = z["onload_cycles"] + z["offload_cycles"]
        if r < 1 and zio > 0.25 * z[what]:
            why.append(f"ZigZag adds {zio:.0f} on/offload cycles not overlapped with compute")
        if r < 1 and z["spatial_util"] < 0.6:
            why.append(f"ZigZag spatial util {z['spatial_util']:.2f} {z['mapping']}")
        if z["stall_cycles"] > 0.2 * z[what]:
            why.append(f"ZigZag stalls {z['stall_cycles']:.0f} cycles on memory bandwidth")
        if r > 1:
            link = o.get("max_link_bytes", 0.0) / hw.link_bytes_per_cycle
            if link > 1.01 * o[what]:
                why.append(f"ours below its own most-loaded-link bound ({link:.0f} cycles)")
            elif link > 0.5 * o[what]:
                why.append(f"ours bound by the most-loaded NoC link ({link:.0f} cycles; {o['mapping']})")
            elif o[what] > TOL * bound:
                why.append(f"ours {o[what] / bound:.1f}x its bound ({o['mapping']})")
            if bound < 200:
                why.append("tiny layer: fixed fill/drain cycles dominate")
        return "; ".join(why) or f"ours {o['mapping']}; ZigZag {z['mapping']}"
    parts = []
    for key, name in (("energy_pe_sram_pj", "PE SRAM"), ("energy_glb_pj", "GLB"), ("energy_dram_pj", "DRAM")):
        a, b = o[key], z[key]
        big = max(a, b) > 0.2 * max(o["energy_wo_noc_pj"], z["energy_pj"])
        if big and not 1 / TOL <= (a + 1e-9) / (b + 1e-9) <= TOL:
            parts.append(f"{name} {a / 1e6:.3g} vs {b / 1e6:.3g} uJ")
    return "; ".join(parts) or "spread over several terms"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hardware", default="xrbench_4k")
    ap.add_argument("--out", default=None, help="path prefix: writes PREFIX.csv and PREFIX.md")
    ap.add_argument("--lpf", type=int, default=4, help="LOMA loop-prime-factor limit (search size)")
    ap.add_argument("--spatial", type=int, default=3, help="spatial mappings ZigZag generates per layer")
    ap.add_argument("--mix", action="store_true", help="let ZigZag mix layer dims on one array dim")
    ap.add_argument("--no-pe-regs", dest="pe_regs", action="store_false",
                    help="no zero-cost operand registers in the ZigZag PE (every operand from PE SRAM)")
    ap.add_argument("--layers", default=None, help="comma list model:layer (default: the built-in set)")
    args = ap.parse_args(argv)
    try:
        import zigzag  # noqa: F401
    except ImportError:
        print("zigzag-dse is not installed: pip install '.[crosscheck]' (see docs/validation.md)")
        return 2
    logging.basicConfig(level=logging.ERROR)
    for name in ("zigzag", "root"):
        logging.getLogger(name).setLevel(logging.ERROR)

    hw = load_hardware(args.hardware)
    layers = LAYERS if args.layers is None else [
        (s.split(":")[0], s.split(":")[1], "") for s in args.layers.split(",")]
    t0 = time.time()
    rows = []
    in_net: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        acc = tmp / "accelerator.yaml"
        acc.write_text(yaml.safe_dump(zz_accelerator(hw, args.pe_regs), sort_keys=False))
        mp = tmp / "mapping.yaml"
        mp.write_text(yaml.safe_dump([{"name": "default",
                                       "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"}}],
                                     sort_keys=False))
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(f"{args.out}_zigzag_accelerator.yaml").write_text(acc.read_text())
        for model, lname, kind in layers:
            doc = one_layer_doc(model, lname)
            t = time.time()
            o = ours_one_layer(doc, hw, tmp)
            t_ours = time.time() - t
            if model not in in_net:
                in_net[model] = ours_in_network(model, hw)
            t = time.time()
            z = run_zigzag(zz_layer(doc), str(acc), str(mp), args.lpf, args.spatial, args.mix)
            t_zz = time.time() - t
            if not o["feasible"]:
                rows.append(dict(model=model, layer=lname, kind=kind, ours_feasible=False))
                continue
            assert o["macs"] == z["macs"], (lname, o["macs"], z["macs"])
            o["energy_wo_noc_pj"] = o["energy_pj"] - o["energy_noc_pj"]
            rl = o["latency_cycles"] / z["latency_cycles"]
            re = o["energy_wo_noc_pj"] / z["energy_pj"]
            cause = []
            if not 1 / TOL <= rl <= TOL:
                cause.append("lat: " + _cause(o, z, "latency_cycles", hw))
            elif o["latency_cycles"] < 0.99 * _bound(o, hw)[0]:  # a bug whatever ZigZag says
                cause.append(f"lat: ours below the {_bound(o, hw)[1]} bound ({_bound(o, hw)[0]:.0f})")
            if not 1 / TOL <= re <= TOL:
                cause.append("energy: " + _cause(o, z, "energy_pj", hw))
            rows.append(dict(
                model=model, layer=lname, kind=kind, macs=o["macs"],
                bound=_bound(o, hw)[0], bound_kind=_bound(o, hw)[1],
                ours_lat=o["latency_cycles"], zz_lat=z["latency_cycles"], lat_ratio=rl,
                ours_lat_in_net=in_net[model].get(lname, float("nan")),
                ours_energy_wo_noc_uj=o["energy_wo_noc_pj"] / 1e6, zz_energy_uj=z["energy_pj"] / 1e6,
                energy_ratio=re, ours_noc_uj=o["energy_noc_pj"] / 1e6,
                ours_mac_uj=o["energy_mac_pj"] / 1e6, zz_mac_uj=z["energy_mac_pj"] / 1e6,
                ours_pe_sram_uj=o["energy_pe_sram_pj"] / 1e6, zz_pe_sram_uj=z["energy_pe_sram_pj"] / 1e6,
                ours_glb_uj=o["energy_glb_pj"] / 1e6, zz_glb_uj=z["energy_glb_pj"] / 1e6,
                ours_dram_uj=o["energy_dram_pj"] / 1e6, zz_dram_uj=z["energy_dram_pj"] / 1e6,
                ours_mapping=o["mapping"], zz_spatial=z["mapping"], zz_util=z["spatial_util"],
                zz_ideal=z["ideal_cycles"], zz_stall=z["stall_cycles"],
                zz_onload=z["onload_cycles"], zz_offload=z["offload_cycles"],
                cause=" | ".join(cause), t_ours_s=t_ours, t_zz_s=t_zz))
            print(f"  {model}.{lname}: ours {t_ours:.1f}s, ZigZag {t_zz:.1f}s", file=sys.stderr)
    wall = time.time() - t0

    head = ["layer", "kind", "bound", "ours lat", "ZZ lat", "ratio", "ours lat in net",
            "ours E-NoC uJ", "ZZ E uJ", "ratio", "cause"]
    table = []
    for r in rows:
        if not r.get("macs"):
            table.append([f"{r['model']}.{r['layer']}", r["kind"], "", "infeasible"] + [""] * 7)
            continue
        table.append([f"{r['model']}.{r['layer']}", r["kind"], f"{r['bound']:.0f}",
                      f"{r['ours_lat']:.0f}", f"{r['zz_lat']:.0f}", f"{r['lat_ratio']:.2f}",
                      f"{r['ours_lat_in_net']:.0f}", f"{r['ours_energy_wo_noc_uj']:.2f}",
                      f"{r['zz_energy_uj']:.2f}",
                      f"{r['energy_ratio']:.2f}", r["cause"] or "-"])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *table)]
    fmt = lambda row: "  ".join(str(x).ljust(w) for x, w in zip(row, widths))  # noqa: E731
    print(fmt(head))
    for row in table:
        print(fmt(row))
    ok = [r for r in rows if r.get("macs")]
    n_lat = sum(1 / TOL <= r["lat_ratio"] <= TOL for r in ok)
    n_en = sum(1 / TOL <= r["energy_ratio"] <= TOL for r in ok)
    gl = math.exp(np.mean([math.log(r["lat_ratio"]) for r in ok]))
    ge = math.exp(np.mean([math.log(r["energy_ratio"]) for r in ok]))
    summary = (f"{len(ok)} layers: latency within {TOL}x for {n_lat}, energy (ours without NoC) within "
               f"{TOL}x for {n_en}; geomean ratio latency {gl:.2f}, energy {ge:.2f}. "
               f"hardware {hw.name}, LOMA lpf {args.lpf}, {args.spatial} spatial mappings"
               f"{', mixed' if args.mix else ''}, PE operand registers {'on' if args.pe_regs else 'off'}; "
               f"{wall:.0f} s")
    print(summary)
    if args.out:
        keys = list(dict.fromkeys(k for r in rows for k in r))
        with open(f"{args.out}.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(rows)
        md = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        md += ["| " + " | ".join(str(x) for x in row) + " |" for row in table]
        md += ["", summary, ""]
        Path(f"{args.out}.md").write_text("\n".join(md))
        print(f"wrote {args.out}.csv, {args.out}.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
