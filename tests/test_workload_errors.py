"""Workload validation: every bad input raises a one-line WorkloadError naming file, layer and
field; a known-good model gives hand-computed shapes, MACs, edges and A/W ratios."""
from __future__ import annotations

import math

import pytest

from pipeorgan_jax.workload import WorkloadError, summarize
from pipeorgan_jax.loading import load_model

HEAD = """\
name: bad
inputs:
  - {name: img, shape: [4, 8, 8]}
layers:
  - {name: c1, op: conv, inputs: [img], C: 4, K: 8, Y: 8, X: 8, R: 3, S: 3}
"""

# (id, layer lines appended after c1, layer named in the error, field named in the error)
BAD_LAYERS = [
    ("missing_field", "  - {name: c2, op: conv, inputs: [c1], C: 8, Y: 8, X: 8, R: 3, S: 3}",
     "c2", "K"),
    ("missing_op", "  - {name: c2, inputs: [c1], C: 8, K: 8, Y: 8, X: 8, R: 3, S: 3}", "c2", "op"),
    ("zero_dim", "  - {name: c2, op: conv, inputs: [c1], C: 8, K: 0, Y: 8, X: 8, R: 3, S: 3}",
     "c2", "K"),
    ("negative_dim", "  - {name: c2, op: conv, inputs: [c1], C: 8, K: 8, Y: 8, X: 8, R: -3, S: 3}",
     "c2", "R"),
    ("zero_stride", "  - {name: p2, op: pool, inputs: [c1], C: 8, Y: 8, X: 8, R: 2, S: 2, stride: 0}",
     "p2", "stride"),
    ("unknown_op", "  - {name: c2, op: deconv, inputs: [c1], C: 8, K: 8}", "c2", "op"),
    ("cycle", "  - {name: a, op: add, inputs: [c1, b]}\n  - {name: b, op: add, inputs: [c1, a]}",
     "a", "inputs"),
    ("self_cycle", "  - {name: a, op: add, inputs: [c1, a]}", "a", "inputs"),
    ("unknown_edge", "  - {name: c2, op: conv, inputs: [nope], C: 8, K: 8, Y: 8, X: 8, R: 3, S: 3}",
     "c2", "inputs"),
    ("forward_edge", "  - {name: a, op: add, inputs: [c1, z]}\n"
     "  - {name: z, op: conv, inputs: [c1], C: 8, K: 8, Y: 8, X: 8, R: 1, S: 1}", "a", "inputs"),
    ("shape_mismatch", "  - {name: c2, op: conv, inputs: [c1], C: 4, K: 8, Y: 8, X: 8, R: 3, S: 3}",
     "c2", "C/Y/X"),
    ("size_mismatch", "  - {name: c2, op: conv, inputs: [c1], C: 8, K: 8, Y: 4, X: 4, R: 3, S: 3}",
     "c2", "C/Y/X"),
    ("fc_elems_mismatch", "  - {name: f, op: fc, inputs: [c1], C: 8, K: 2}", "f", "C"),
    ("add_mismatch", "  - {name: a, op: add, inputs: [c1, img]}", "a", "inputs"),
    ("concat_mismatch", "  - {name: p, op: pool, inputs: [c1], C: 8, Y: 8, X: 8, R: 2, S: 2, stride: 2}\n"
     "  - {name: cat, op: concat, inputs: [p, c1]}", "cat", "inputs"),
    ("matmul_arity", "  - {name: mm, op: matmul, inputs: [c1], M: 8, N: 8, Kd: 64}", "mm", "inputs"),
    ("type_string", "  - {name: c2, op: conv, inputs: [c1], C: 8, K: '16', Y: 8, X: 8, R: 3, S: 3}",
     "c2", "K"),
    ("type_float", "  - {name: c2, op: conv, inputs: [c1], C: 8, K: 8, Y: 8, X: 8, R: 3, S: 3, stride: 1.5}",
     "c2", "stride"),
    ("type_bool", "  - {name: c2, op: conv, inputs: [c1], C: 8, K: 8, Y: 8, X: 8, R: true, S: 3}",
     "c2", "R"),
    ("type_null", "  - {name: c2, op: conv, inputs: [c1], C: 8, K: 8, Y: 8, X: 8, R: 3, S: 3, groups: null}",
     "c2", "groups"),
    ("type_inputs", "  - {name: c2, op: conv, inputs: c1, C: 8, K: 8, Y: 8, X: 8, R: 3, S: 3}",
     "c2", "inputs"),
    ("type_padding", "  - {name: c2, op: conv, inputs: [c1], C: 8, K: 8, Y: 8, X: 8, R: 3, S: 3, padding: true}",
     "c2", "padding"),
    ("negative_padding", "  - {name: c2, op: conv, inputs: [c1], C: 8, K: 8, Y: 8, X: 8, R: 3, S: 3, padding: -1}",
     "c2", "padding"),
    ("bad_padding", "  - {name: c2, op: conv, inputs: [c1], C: 8, K: 8, Y: 8, X: 8, R: 3, S: 3, padding: full}",
     "c2", "padding"),
    ("duplicate_name", "  - {name: c1, op: conv, inputs: [c1], C: 8, K: 8, Y: 8, X: 8, R: 3, S: 3}",
     "c1", "name"),
    ("unknown_field", "  - {name: c2, op: conv, inputs: [c1], C: 8, K: 8, Y: 8, X: 8, R: 3, S: 3, factor: 2}",
     "c2", "factor"),
    ("groups_divide", "  - {name: c2, op: conv, inputs: [c1], C: 8, K: 8, Y: 8, X: 8, R: 3, S: 3, groups: 3}",
     "c2", "groups"),
    ("kernel_too_big", "  - {name: c2, op: conv, inputs: [c1], C: 8, K: 8, Y: 8, X: 8, R: 9, S: 3, padding: valid}",
     "c2", "R/S"),
    ("bad_pool_kind", "  - {name: p, op: pool, inputs: [c1], C: 8, Y: 8, X: 8, R: 2, S: 2, kind: median}",
     "p", "kind"),
    ("inferred_not_input", "  - {name: a, op: add, inputs: [c1, c1], inferred: [img]}", "a", "inferred"),
]


def _check(path, exc: WorkloadError, layer: str, field: str) -> str:
    msg = str(exc)
    assert str(path) in msg, msg
    assert f"layer '{layer}'" in msg, msg
    assert f"field '{field}'" in msg, msg
    assert "\n" not in msg and "\r" not in msg, msg
    return msg


@pytest.mark.parametrize("case,lines,layer,field", BAD_LAYERS, ids=[c[0] for c in BAD_LAYERS])
def test_bad_layer(tmp_path, case, lines, layer, field):
    p = tmp_path / f"{case}.yaml"
    p.write_text(HEAD + lines + "\n")
    with pytest.raises(WorkloadError) as ei:
        load_model(p)
    msg = _check(p, ei.value, layer, field)
    if "cycle" in case:
        assert "cycle" in msg
    if case == "unknown_edge":
        assert "'nope'" in msg


@pytest.mark.parametrize("case,text,layer,field", [
    ("no_layers", "name: x\ninputs:\n  - {name: img, shape: [1, 2, 2]}\n", "-", "layers"),
    ("no_inputs", "name: x\nlayers:\n  - {name: a, op: fc, inputs: [img], C: 4, K: 2}\n",
     "-", "inputs"),
    ("input_zero", "name: x\ninputs:\n  - {name: img, shape: [1, 0, 2]}\nlayers:\n"
     "  - {name: a, op: fc, inputs: [img], C: 4, K: 2}\n", "img", "shape"),
    ("input_type", "name: x\ninputs:\n  - {name: img, shape: [1, 2]}\nlayers:\n"
     "  - {name: a, op: fc, inputs: [img], C: 2, K: 2}\n", "img", "shape"),
    ("data_bytes", "name: x\ndata_bytes: 0\ninputs:\n  - {name: img, shape: [1, 2, 2]}\nlayers:\n"
     "  - {name: a, op: fc, inputs: [img], C: 4, K: 2}\n", "-", "data_bytes"),
    ("layer_not_mapping", "name: x\ninputs:\n  - {name: img, shape: [1, 2, 2]}\nlayers:\n"
     "  - just a string\n", "layers[0]", "-"),
])
def test_bad_top_level(tmp_path, case, text, layer, field):
    p = tmp_path / f"{case}.yaml"
    p.write_text(text)
    with pytest.raises(WorkloadError) as ei:
        load_model(p)
    _check(p, ei.value, layer, field)


def test_invalid_yaml_is_one_line(tmp_path):
    p = tmp_path / "syntax.yaml"
    p.write_text("name: x\nlayers: [\n  {name: a\n")
    with pytest.raises(WorkloadError) as ei:
        load_model(p)
    assert str(p) in str(ei.value) and "\n" not in str(ei.value)


GOOD = """\
name: KD_res8_narrow
inputs:
  - {name: mfcc, shape: [1, 98, 40]}
layers:
  - {name: conv0, op: conv, inputs: [mfcc], C: 1, K: 19, Y: 98, X: 40, R: 3, S: 3, ref: conv0}
  - {name: pool0, op: pool, inputs: [conv0], C: 19, Y: 98, X: 40, R: 4, S: 3, stride: 4, stride_x: 3, padding: valid, kind: avg}
  - {name: conv1, op: conv, inputs: [pool0], C: 19, K: 19, Y: 24, X: 13, R: 3, S: 3, ref: conv1}
  - {name: conv2, op: conv, inputs: [conv1], C: 19, K: 19, Y: 24, X: 13, R: 3, S: 3, ref: conv2}
  - {name: add1, op: add, inputs: [conv2, pool0]}
  - {name: gap, op: pool, inputs: [add1], C: 19, Y: 24, X: 13, R: 24, S: 13, stride: 24, stride_x: 13, padding: valid, kind: avg}
  - {name: output, op: fc, inputs: [gap], C: 19, K: 12, ref: output}
"""


def test_known_good_model(tmp_path):
    p = tmp_path / "good.yaml"
    p.write_text(GOOD)
    m = load_model(p)
    by = {l.name: l for l in m.layers}
    # shapes: same padding keeps 98x40; pool (98-4)//4+1 = 24, (40-3)//3+1 = 13
    assert by["conv0"].out_shape == (19, 98, 40)
    assert by["pool0"].out_shape == (19, 24, 13)
    assert by["conv2"].out_shape == by["add1"].out_shape == (19, 24, 13)
    assert by["gap"].out_shape == (19, 1, 1)
    assert by["output"].out_shape == (12, 1, 1)
    # MACs by hand
    assert by["conv0"].macs == 98 * 40 * 19 * 1 * 9 == 670_320
    assert by["conv1"].macs == by["conv2"].macs == 24 * 13 * 19 * 19 * 9 == 1_013_688
    assert by["output"].macs == 19 * 12 == 228
    assert by["pool0"].macs == by["add1"].macs == by["gap"].macs == 0
    assert m.macs == 670_320 + 2 * 1_013_688 + 228 == 2_697_924
    # weights, edges, skip edges
    assert m.weight_elems == 19 * 9 + 2 * 19 * 19 * 9 + 19 * 12
    assert len(m.edges) == 8
    skips = m.skip_edges
    assert len(skips) == 1
    assert (skips[0].src, skips[0].dst) == (m.index("pool0"), m.index("add1"))
    assert skips[0].elems == 19 * 24 * 13 and skips[0].operand == 1
    assert m.edges[0].src == -1  # from the network input
    # A/W ratio = (input + output activations) / weights
    assert by["conv0"].aw_ratio == pytest.approx((98 * 40 + 19 * 98 * 40) / (19 * 9))
    assert by["conv1"].aw_ratio == pytest.approx(2 * 19 * 24 * 13 / (19 * 19 * 9))
    assert by["output"].aw_ratio == pytest.approx((19 + 12) / (19 * 12))
    assert math.isinf(by["add1"].aw_ratio)
    s = summarize(m)
    assert (s["layers"], s["edges"], s["skip_edges"]) == (7, 8, 1)
    assert s["aw_min"] == pytest.approx(31 / 228)
    assert s["aw_max"] == pytest.approx(78400 / 171)
    # row geometry: the global pool needs its whole input; a 3x3 same conv pads one row
    assert by["gap"].rows_full and not by["conv1"].rows_full
    assert by["conv1"].pad_rows == 1 and by["pool0"].stride_rows == 4
    assert [l.ref for l in m.layers if l.ref] == ["conv0", "conv1", "conv2", "output"]
