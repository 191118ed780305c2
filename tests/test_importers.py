"""Importers: MAESTRO .m files (XR-bench scenarios and hw configs) and plain layer tables."""
from __future__ import annotations

import functools
import json
import re
import warnings
from pathlib import Path

import pytest

from pipeorgan_jax import importers
from pipeorgan_jax.importers import (MaestroWarning, load_layer_table, load_maestro,
                                     load_maestro_hw, load_maestro_scenario)
from pipeorgan_jax.workload import WorkloadError
from pipeorgan_jax.loading import load_model

XRBENCH = Path(__file__).resolve().parents[2] / "shared" / "xrbench"
SCENARIO_FILES = sorted(p.name for p in (XRBENCH / "usage_scenarios").glob("*.m")) or ["<none>"]
# outdoor_activity_B.m names the OD model differently; summary.json knows it as OD_D2go_FasterRCNN.
ALIASES = {"D2go_FastRCNN": "OD_D2go_FasterRCNN"}


@pytest.fixture(scope="module")
def xrbench() -> Path:
    if not (XRBENCH / "usage_scenarios").is_dir():
        pytest.skip(f"XR-bench reference data not found at {XRBENCH}")
    return XRBENCH


@functools.lru_cache(maxsize=None)
def _scenario(path: str):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sc = load_maestro_scenario(path)
    return sc, [w for w in caught if issubclass(w.category, MaestroWarning)]


def _raw_layers(text: str) -> dict[str, list[tuple[str, dict]]]:
    """Independent regex read of an XR-bench .m file: network -> [(layer, dims)]."""
    out = {}
    for chunk in re.split(r"\bNetwork\s+", text)[1:]:
        name = chunk.split()[0]
        out[name] = [(m.group(1), {k: int(v) for k, v in re.findall(r"(\w+):\s*(\d+)", m.group(2))})
                     for m in re.finditer(r"Layer\s+(\S+)\s*\{[^{}]*Dimensions:\s*\{([^}]*)\}",
                                          chunk)]
    return out


# ----------------------------------------------------------------------------- XR-bench scenarios

@pytest.mark.parametrize("fname", SCENARIO_FILES)
def test_scenario_matches_usage_scenarios_json(xrbench, fname):
    sc, caught = _scenario(str(xrbench / "usage_scenarios" / fname))
    ref = json.loads((xrbench / "usage_scenarios.json").read_text())[sc.name]
    assert [e.model.name for e in sc.entries] == [r["net"] for r in ref]
    for e, r in zip(sc.entries, ref):
        assert e.fps == r["fps"]
        assert e.depends_on == ((r["dep"],) if r["dep"] else ())
        assert e.probability == r["prob"]
        assert sum(l.ref is not None for l in e.model.layers) == r["nlayers"]
    assert [(m.name, f) for m, f in sc.pairs] == [(r["net"], r["fps"]) for r in ref]
    # Every XR-bench layer lacks a Stride: exactly one warning per file, with the count.
    assert len(caught) == 1
    n = sum(r["nlayers"] for r in ref)
    assert f"{n} of {n} layers have no Stride" in str(caught[0].message)
    assert fname in str(caught[0].message)


@pytest.mark.parametrize("fname", SCENARIO_FILES)
def test_maestro_mac_semantics(xrbench, fname):
    path = xrbench / "usage_scenarios" / fname
    sc, _ = _scenario(str(path))
    summary = json.loads((xrbench / "summary.json").read_text())
    raw = _raw_layers(path.read_text())
    for m in sc.models:
        assert m.macs == summary[ALIASES.get(m.name, m.name)]["macs_maestro_semantics"], m.name
        rows = raw[m.name]
        imported = [l for l in m.layers if l.ref is not None]
        assert [l.ref for l in imported] == [r for r, _ in rows]
        for l, (ref, d) in zip(imported, rows):
            yo, xo = max(d["Y"] - d["R"] + 1, 1), max(d["X"] - d["S"] + 1, 1)
            assert l.macs == d["K"] * d["C"] * yo * xo * d["R"] * d["S"], (m.name, ref)
            assert l.op == ("fc" if ref.startswith("fc") else "conv")
        # Inserted layers carry no MACs; every fresh input is explained in a note.
        assert all(l.macs == 0 for l in m.layers if l.ref is None)
        notes = " ".join(m.source["notes"].values())
        for name in m.input_names[1:]:
            assert f"fresh input '{name}'" in notes
        # a chain: every layer but the first reads the layer before it or a fresh input
        for i, l in enumerate(m.layers[1:], 1):
            assert l.inputs[0] in (m.layers[i - 1].name, *m.input_names)


def test_load_maestro_returns_all_networks(xrbench):
    with pytest.warns(MaestroWarning):
        models = load_maestro(xrbench / "usage_scenarios" / "social_interactionB.m")
    assert [m.name for m in models] == ["ES_RITNet", "GE_FBNet_C", "AS_ED_TCN"]
    with pytest.raises(WorkloadError, match="holds 3 networks"), pytest.warns(MaestroWarning):
        load_model(xrbench / "usage_scenarios" / "social_interactionB.m")


@pytest.mark.parametrize("cfg,pes,gbuf,local", [("Single_4K.m", 4096, 4 << 20, 8 << 10),
                                                ("Single_8K.m", 8192, 8 << 20, 16 << 10)])
def test_hw_config(xrbench, cfg, pes, gbuf, local):
    hw = load_maestro_hw(xrbench / "hw_configs" / cfg)
    assert hw["num_pes"] == pes
    assert hw["global_shared_memory"] == gbuf
    assert hw["PE_local_memory"] == local
    assert hw["offchip_bw"] == 128 and hw["top_noc_bw"] == 256
    assert hw["top_noc_multicast"] is True
    assert hw["name"].startswith("Acc0_")


# ----------------------------------------------------------------------------- small .m files

SMALL_M = """\
// a comment line
/* a block
   comment */
Network tiny {
FPS: 30   // trailing comment
Layer conv1 {
  Type: CONV
  Stride: {X: 2, Y: 2}
  Dimensions: { N: 1, K: 8, C: 3, Y: 33, X: 33, R: 3, S: 3 }
}
Layer conv2 {
  Type: CONV
  Dimensions: { K: 8, C: 8, Y: 18, X: 18, R: 3, S: 3 }
}
Layer conv3 {
  Type: CONV
  Dimensions: { N: 1, K: 16, C: 8, Y: 8, X: 8, R: 1, S: 1 }
}
Layer fc1 {
  Type: CONV
  Dimensions: { N: 1, K: 10, C: 16, Y: 1, X: 1, R: 1, S: 1 }
}
}
"""


def test_small_m_missing_stride_warns_once_and_reads_stride_1(tmp_path):
    p = tmp_path / "tiny.m"
    p.write_text(SMALL_M)
    with pytest.warns(MaestroWarning, match=r"3 of 4 layers have no Stride") as rec:
        sc = load_maestro_scenario(p)
    assert len([w for w in rec if issubclass(w.category, MaestroWarning)]) == 1
    m = sc.entries[0].model
    assert sc.name == "tiny" and sc.entries[0].fps == 30.0
    assert sc.entries[0].depends_on == () and sc.entries[0].probability is None
    by = {l.name: l for l in m.layers}
    # conv1: stride 2, valid: (33 - 3) // 2 + 1 = 16
    assert by["conv1"].out_shape == (8, 16, 16)
    assert by["conv1"].macs == 8 * 3 * 16 * 16 * 9
    # conv2: no Stride -> stride 1: 18 - 3 + 1 = 16; reads conv1 zero-padded 16 -> 18
    assert by["conv2"].params["stride"] == 1
    assert by["conv2"].out_shape == (8, 16, 16)
    assert by["conv2"].macs == 8 * 8 * 16 * 16 * 9
    pad = by["conv2_pool"]
    assert pad.inputs == ("conv1",) and pad.params["padding"] == 1 and pad.out_shape == (8, 18, 18)
    assert by["conv2"].inputs == ("conv2_pool",)
    # conv3 reads 8x8: a 2x2/2 pool downsamples conv2's 16x16
    dn = by["conv3_pool"]
    assert (dn.params["R"], dn.params["stride"], dn.params["padding"]) == (2, 2, "valid")
    assert by["conv3"].macs == 16 * 8 * 8 * 8
    # fc1 over one token of 16 channels: global pool in front, fc MACs = C * K
    assert by["fc1"].op == "fc" and by["fc1"].macs == 160
    assert by["fc1_pool"].out_shape == (16, 1, 1)
    assert m.macs == 8 * 3 * 256 * 9 + 8 * 8 * 256 * 9 + 16 * 8 * 64 + 160
    assert [l.ref for l in m.layers] == ["conv1", None, "conv2", None, "conv3", None, "fc1"]
    assert "importer" in m.source["notes"]["conv2"]
    # load_model dispatches a one-network .m file to the importer
    with pytest.warns(MaestroWarning):
        assert load_model(p).macs == m.macs


def test_small_m_fresh_input_upsample_and_scenario_fields(tmp_path):
    p = tmp_path / "two.m"
    p.write_text("""
Network a { FPS: 60
  Layer c1 { Type: CONV Stride: {X: 1, Y: 1} Dimensions: { K: 4, C: 2, Y: 8, X: 8, R: 1, S: 1 } }
  Layer c2 { Type: CONV Stride: {X: 1, Y: 1} Dimensions: { K: 4, C: 4, Y: 16, X: 16, R: 1, S: 1 } }
  Layer c3 { Type: CONV Stride: {X: 1, Y: 1} Dimensions: { K: 4, C: 7, Y: 16, X: 16, R: 5, S: 5 } }
  Layer c4 { Type: CONV Stride: {X: 1, Y: 1} Dimensions: { K: 4, C: 4, Y: 2, X: 2, R: 3, S: 3 } }
}
Network b {
  Dependency: { a }
  Probability: 0.25
  FPS: 15
  Layer fc1 { Type: CONV Stride: {X: 1, Y: 1} Dimensions: { K: 6, C: 5, Y: 7, X: 1, R: 1, S: 1 } }
}
""")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every layer has a Stride: no warning
        sc = load_maestro_scenario(p)
    a, b = sc.entries
    assert (a.fps, b.fps, b.depends_on, b.probability) == (60.0, 15.0, ("a",), 0.25)
    by = {l.name: l for l in a.model.layers}
    assert by["c2_up"].params["factor"] == 2 and by["c2"].inputs == ("c2_up",)
    # c3 wants 7 channels, c2 gives 4: fresh input of c3's own shape, noted
    assert by["c3"].inputs == ("c3_in",)
    assert a.model.input_shapes[a.model.input_names.index("c3_in")] == (7, 16, 16)
    assert "channels differ" in a.model.source["notes"]["c3"]
    # c4: 3x3 kernel over a 2x2 input counts one output (MAESTRO clamps): 4*4*1*1*9 MACs
    assert by["c4"].macs == 4 * 4 * 9 and by["c4"].out_shape == (4, 1, 1)
    assert b.model.layers[0].macs == 7 * 5 * 6
    assert sc.entry("b").model.input_shapes == ((5, 7, 1),)


@pytest.mark.parametrize("text,field", [
    ("Network n { Layer l { Type: POOL Dimensions: { K: 1, C: 1, Y: 1, X: 1, R: 1, S: 1 } } }",
     "Type"),
    ("Network n { Layer l { Type: CONV Dimensions: { K: 1, C: 1, Y: 4, X: 1, S: 1 } } }", "R"),
    ("Network n { Layer l { Type: CONV Dimensions: { K: 0, C: 1, Y: 4, X: 1, R: 1, S: 1 } } }",
     "K"),
    ("Network n { Layer l { Type: CONV Dimensions: { K: 1, C: 1, Y: 4, X: 1, R: 1, S: 1 } }", "-"),
    ("Network n { Dependency: { zz } Layer l { Type: CONV Stride: {X: 1, Y: 1} "
     "Dimensions: { K: 1, C: 1, Y: 4, X: 1, R: 1, S: 1 } } }", "Dependency"),
])
def test_bad_m_file(tmp_path, text, field):
    p = tmp_path / "bad.m"
    p.write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(WorkloadError) as ei:
            load_maestro(p)
    msg = str(ei.value)
    assert str(p) in msg and f"field '{field}'" in msg and "\n" not in msg


def test_hw_without_block(tmp_path):
    p = tmp_path / "hw.m"
    p.write_text("num_pes: 256  // PEs\nl1_size_cstr: 100\nbandwidth: 1.5\n")
    assert load_maestro_hw(p) == {"name": "hw", "num_pes": 256, "l1_size_cstr": 100,
                                  "bandwidth": 1.5}
    p.write_text("Accelerator x { offchip_bw: 1 }")
    with pytest.raises(WorkloadError, match="num_pes"):
        load_maestro_hw(p)


# ----------------------------------------------------------------------------- layer tables

CSV = """\
name,op,C,K,Y,X,R,S,stride,groups,inputs
conv1,conv,3,16,32,32,3,3,2,,
dw2,conv,16,16,16,16,3,3,,16,
add3,add,,,,,,,,,dw2;conv1
gap4,pool,16,,16,16,16,16,16,,
fc5,fc,16,10,,,,,,,
"""


def test_csv_layer_table(tmp_path):
    p = tmp_path / "mynet.csv"
    p.write_text(CSV)
    m = load_model(p)
    assert m.name == "mynet" and m.input_shapes == ((3, 32, 32),)
    by = {l.name: l for l in m.layers}
    assert by["conv1"].inputs == ("input",) and by["dw2"].inputs == ("conv1",)
    assert by["conv1"].out_shape == (16, 16, 16)  # same padding, stride 2
    assert by["conv1"].macs == 16 * 16 * 16 * 3 * 9  # 110,592
    assert by["dw2"].macs == 16 * 16 * 16 * 1 * 9  # depthwise: 36,864
    assert by["dw2"].params["stride"] == 1  # empty cell -> default
    assert by["add3"].inputs == ("dw2", "conv1")
    assert by["gap4"].out_shape == (16, 1, 1)
    assert by["fc5"].macs == 160
    assert m.macs == 110592 + 36864 + 160
    assert len(m.skip_edges) == 1  # conv1 -> add3
    assert load_layer_table(p).macs == m.macs


def test_csv_optional_columns(tmp_path):
    p = tmp_path / "opt.csv"
    p.write_text("name,op,C,K,Y,X,R,S,stride,stride_x,padding,kind,factor,inputs\n"
                 "c1,conv,4,8,20,10,3,3,2,1,valid,,,\n"
                 "p1,pool,8,,9,8,2,2,,,,avg,,\n"
                 "u1,upsample,,,,,,,,,,,2,\n")
    m = load_model(p)
    assert m.layers[0].out_shape == (8, 9, 8)  # (20-3)//2+1, (10-3)//1+1
    assert m.layers[0].macs == 9 * 8 * 8 * 4 * 9
    assert m.layers[1].params["kind"] == "avg" and m.layers[2].out_shape == (8, 18, 16)


YAML_TABLE = """\
name: tiny_attention
table:
  - {name: q, op: fc, C: 64, K: 64, Y: 16}
  - {name: k, op: fc, C: 64, K: 64, Y: 16, inputs: input}
  - {name: v, op: fc, C: 64, K: 64, Y: 16, inputs: input}
  - {name: scores, op: matmul, M: 16, N: 16, Kd: 16, heads: 4, inputs: [q, k]}
  - {name: ctx, op: matmul, M: 16, N: 16, Kd: 16, heads: 4, inputs: "scores;v"}
"""


def test_yaml_layer_table(tmp_path):
    p = tmp_path / "att.yaml"
    p.write_text(YAML_TABLE)
    m = load_model(p)
    assert m.name == "tiny_attention" and m.input_shapes == ((64, 16, 1),)
    assert [l.macs for l in m.layers] == [65536, 65536, 65536, 16384, 16384]
    assert m.macs == 3 * 16 * 64 * 64 + 2 * 4 * 16 * 16 * 16  # 229,376
    assert m.layers[4].inputs == ("scores", "v")


@pytest.mark.parametrize("suffix,text,layer,field", [
    (".csv", "name,op,C,K,Y,X,R,S\nc1,conv,3,x8,8,8,3,3\n", "c1", "K"),
    (".csv", "name,op,C,K,Y,X,R,S,bogus\nc1,conv,3,8,8,8,3,3,1\n", "-", "bogus"),
    (".csv", "name,op,C,K,Y,X,R,S\nc1,conv,3,8,8,8,3,3\nc2,conv,4,8,8,8,3,3\n", "c2", "C/Y/X"),
    (".csv", "name,op,C,K,Y,X,R,S\nc1,conv,3,8,8,8,3,3\nc2,pool,8,4,8,8,2,2\n", "c2", "K"),
    (".csv", "name,op,C,K,Y,X,R,S,inputs\nc1,conv,3,8,8,8,3,3,\nc2,add,,,,,,,c1;nope\n",
     "c2", "inputs"),
    (".csv", "name,op,C,K,Y,X,R,S\nc1,conv,3,8,8,8,0,3\n", "c1", "R"),
    (".csv", "name,op,C,K,Y,X,R,S\n,conv,3,8,8,8,3,3\n", "row 1", "name"),
    (".yaml", "name: t\ntable:\n  - {name: f, op: fc, C: 4, K: two}\n", "f", "K"),
    (".yaml", "name: t\ntable:\n  - {name: f, op: gemm, C: 4, K: 2}\n", "f", "op"),
    (".yaml", "name: t\ntable:\n  - {name: f, op: matmul, M: 4, N: 2, Kd: 2}\n", "f", "C"),
])
def test_layer_table_errors(tmp_path, suffix, text, layer, field):
    p = tmp_path / f"bad{suffix}"
    p.write_text(text)
    with pytest.raises(WorkloadError) as ei:
        load_model(p)
    msg = str(ei.value)
    assert str(p) in msg and f"layer '{layer}'" in msg and f"field '{field}'" in msg, msg
    assert "\n" not in msg


def test_table_constants_cover_doc():
    assert importers.TABLE_COLUMNS == ("name", "op", "C", "K", "Y", "X", "R", "S", "stride",
                                       "groups", "inputs")


def test_native_maestro_syntax_dsconv_and_dataflow(tmp_path):
    """MAESTRO's own syntax: `Stride { }` / `Dimensions { }` without colons, Dataflow blocks."""
    p = tmp_path / "native.m"
    p.write_text("""Network mobile {
Layer CONV1 {
  Type: CONV
  Stride { X: 2, Y: 2 }
  Dimensions { K: 8, C: 3, R: 3, S: 3, Y: 17, X: 17 }
  Dataflow {
    SpatialMap(1,1) K;
    TemporalMap(64,64) C;
    Cluster(8, P);
  }
}
Layer DW2 {
  Type: DSCONV
  Stride { X: 1, Y: 1 }
  Dimensions { C: 8, R: 3, S: 3, Y: 10, X: 10 }
}
}
""")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = load_model(p)
    c1, pad, dw = m.layers
    assert c1.out_shape == (8, 8, 8) and c1.macs == 8 * 3 * 64 * 9  # (17-3)//2+1 = 8
    assert pad.op == "pool" and pad.out_shape == (8, 10, 10)
    assert dw.params["groups"] == 8 and dw.macs == 8 * 8 * 8 * 9  # C * Y' * X' * R * S
