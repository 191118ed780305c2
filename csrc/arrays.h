// The tables the combine reads, as raw views of the FFI buffers (pipeorgan_jax/cost/kernel.py
// packs them from ModelArrays and HwArrays; cost/tables.py documents every field). Nothing here
// is computed: the kernel holds no cost semantics beyond the combine (combine.h).
#pragma once

#include <cstdint>

namespace pipeorgan {

// Rows of the packed per-layer float matrix [N_LF, L] (kernel.py LAYER_F, same order).
enum LayerF {
  LF_K, LF_YO, LF_XO, LF_YIN, LF_HALO, LF_M, LF_OPS, LF_W, LF_OUT_BYTES, LF_IN_ROW_BYTES,
  LF_IN_FULL_BYTES, LF_OUT_ELEMS, LF_NET_IN_FIRST, LF_ALIVE0, LF_T_BYTES, N_LF
};
// Rows of the packed per-layer int matrix [N_LI, L] (kernel.py LAYER_I).
enum LayerI { LI_ROWS_FULL, LI_NET_OUT, LI_RED_OK, LI_T_LAST, LI_NET_FIRST, N_LI };
// Rows of the packed per-edge int matrix [N_EI, E]: producer (-1 network input), consumer,
// kind (EK_*).
enum EdgeI { EI_SRC, EI_DST, EI_KIND, N_EI };
enum EdgeKind { EK_INPUT = 0, EK_CHAIN = 1, EK_SKIP = 2 };
// Model scalars (kernel.py MODEL_S).
enum ModelS { MS_W_TOTAL, MS_OPS_TOTAL, MS_NET_IN_TOTAL, MS_NET_OUT_TOTAL, N_MS };
// Hardware scalars, the shape-free HwArrays leaves (kernel.py HW_S).
enum HwS {
  HS_SRAM, HS_GLB, HS_GLB_BW, HS_DIST_BW, HS_DRAM_BW, HS_LINK_BW, HS_ROUTER, HS_MACS_PER_CYCLE,
  HS_DB, HS_PSUM_B, HS_SRAM_PER_MAC, HS_E_MAC, HS_E_SRAM, HS_E_NOC, HS_E_GLB, HS_E_DRAM, N_HS
};
// key_scalars columns (tables.py KS_*) and chain table columns (CH_*).
enum KeyS {
  KS_WIRE_ALL, KS_WIRE_HYB, KS_WIRE_UNI_U, KS_WIRE_UNI_C, KS_WIRE_UNIT_U, KS_WIRE_UNIT_C,
  KS_PORT_FAR, KS_PAIR_PS, KS_A2A_PS, KS_EXT_PS, KS_EMPTY, N_KS
};
enum Chain { CH_HOP_MEAN = 0, CH_HOP_MAX = 1, CH_EXT = 2, CH_PAIR = 3, CH_A2A = 6, N_CHAIN = 9 };
enum Topology { TOPO_MESH = 0, TOPO_TORUS = 1, TOPO_EXPRESS = 2 };
enum Partition { SPATIAL = 0, CHANNEL = 1, HYBRID = 2, REDUCTION = 3 };

struct ModelView {
  int L, E, D_in, D_out;      // layers, edges, in-edge and out-edge slots per layer
  const float* lf;            // [N_LF, L]
  const int32_t* li;          // [N_LI, L]
  const int32_t* ei;          // [N_EI, E]
  const float* e_bytes;       // [E]
  const int32_t* in_eidx;     // [L, D_in] edge index, -1 empty
  const int32_t* out_eidx;    // [L, D_out]
  const float* ms;            // [N_MS]
  const float* f(LayerF r) const { return lf + (int64_t)r * L; }
  const int32_t* i(LayerI r) const { return li + (int64_t)r * L; }
};

struct HwView {
  // static shape (FFI attributes)
  int U, GH, GW, uh, uw, max_depth, topology, express_k;
  float lanes, lanes_x, lanes_y;
  const float* hs;            // [N_HS]
  const float* key_scalars;   // [K, N_KS]
  const float* proj;          // [K, 2, GW + GH]
  const float* dist;          // [K, 2, GW + GH]
  const float* a2a_src;       // [K, 2, A]
  const float* a2a_dst;       // [K, 2, A]
  const int32_t* ext;         // [K, 4]
  const void* chunk_x;        // [K, U] int8 or int16
  const void* chunk_y;
  int chunk_bytes;            // 1 or 2
  const int32_t* chain_off;   // [4, U + 1, U + 1]
  const float* chain;         // [R, N_CHAIN]
  const float* by_n;          // [U + 1, 3]
  const float* hx;            // [GW]
  const float* hy;            // [GH]

  // unit_hops for a unit-column (row) offset 0..GW-1 (GH-1): whole hop counts, set by the
  // handler from the topology (combine.h unit_hops)
  const int32_t* hop_x;
  const int32_t* hop_y;

  int A() const { return 2 * (GW - 1) + 2 * (GH - 1); }
  int chunk(const void* t, int64_t key, int q) const {
    int64_t i = key * U + q;
    return chunk_bytes == 1 ? static_cast<const int8_t*>(t)[i] : static_cast<const int16_t*>(t)[i];
  }
};

}  // namespace pipeorgan
