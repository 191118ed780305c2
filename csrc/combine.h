// The per-placement combine of pipeorgan_jax/cost (score_one), one function per Python phase,
// in the same order and with the same float32 operations in the same order, so that a reader
// can hold each function against its Python twin: segments and layers (geometry.py), tiles,
// edges / traffic / links (traffic.py), memory / compute_cycles / segment_latency (timing.py),
// energy (energy.py) and the whole-network reductions (cost/__init__.py combine).
// Sums keep the Python order where the Python order is fixed (window sums run from a
// segment's last summed layer back to its first, as Segments._shifted's shifts add them;
// Slots.reduce adds a layer's first two entries, then the rest); whole-network sums over
// layers and edges run first to last.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "arrays.h"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#ifdef PIPEORGAN_PROFILE
#include <cstdio>
#include <x86intrin.h>
#endif

namespace pipeorgan {

constexpr float GRAN_ROWS[7] = {1, 2, 4, 8, 16, 32, 0};  // placement.py GRAN_ROWS

// cost/ops.py ceil_ratio / floor_ratio: a ceil or floor of a ratio of integers, a few ulps
// of rounding (a float32 ops-per-output, XLA's reciprocal division) taken off first.
constexpr float RATIO_EPS = 1e-6f;
inline float ceil_ratio(float x) { return std::ceil(x - RATIO_EPS * std::fabs(x)); }
inline float floor_ratio(float x) { return std::floor(x + RATIO_EPS * std::fabs(x)); }

// One placement's choices (rows of the batch's [B, L] arrays).
struct PlacementRow {
  const bool* seg_end;
  const int32_t* gran;
  const int32_t* org;
  const int32_t* share;
  const int32_t* part;
};

// One placement's outputs: the Cost fields (cost/__init__.py), scalars then [L] rows.
struct CostRow {
  float latency_cycles, energy_pj, energy_mac_pj, energy_pe_sram_pj, energy_noc_pj,
      energy_glb_pj, energy_dram_pj, edp;
  bool feasible;
  int32_t reason;
  float max_link_bytes, byte_hops, dist_byte_hops, glb_bytes, dram_bytes;
  float* seg_latency;
  float* seg_energy;
  bool* seg_feasible;
};

// Per-placement state, allocated once per thread and reused for every placement.
struct Scratch {
  // segments
  std::vector<int32_t> f, z, depth, k, e;
  // layers
  std::vector<int32_t> gran, org, part, n, start, key;
  std::vector<float> n_f, P_f;
  std::vector<const float*> chain_row;  // [L] the chain-table row of the pair (l, l + 1)
  // tiles
  std::vector<float> n_tiles, r, h;
  // edges [E]
  std::vector<int32_t> intra, ps, pd, bcast;  // flags as int32: a char store may alias anything
  std::vector<int32_t> src, part_d;
  std::vector<float> lag, hop_mean, far, pair, a2a;
  // traffic
  std::vector<float> e_mesh_bh, e_dist_bh, e_deliv, per_unit_in, out_unit, a2a_link, skip_b;
  std::vector<int32_t> to_glb, restream, no_fit, glb_fed;
  std::vector<float> out_bh, glb_in_l, glb_out_l, w_bytes, w_bh, w_deliv, ps_bytes, ps_bh, ps_deliv;
  // links
  std::vector<float> seg_link, ps_link, x_edge, x_ps;
  // memory and timing
  std::vector<float> live, W_s, cyc, c_pace, c_done, F0, fill_F, fill_rho, fill_E, seg_lat, t_out;
  std::vector<float> sigma, win8;  // per layer: the segment's sigma; [L, 8] window sums
  std::vector<float> col;          // a per-layer column to window-sum

  void resize(int L, int E) {
    for (auto* v : {&f, &z, &depth, &k, &e, &gran, &org, &part, &n, &start, &key}) v->resize(L);
    for (auto* v : {&n_f, &P_f, &n_tiles, &r, &h, &out_bh, &glb_in_l, &glb_out_l, &w_bytes, &w_bh,
                    &w_deliv, &ps_bytes, &ps_bh, &ps_deliv, &seg_link, &ps_link, &x_ps, &live, &W_s,
                    &cyc, &c_pace, &c_done, &F0, &fill_F, &fill_rho, &fill_E, &seg_lat, &t_out,
                    &sigma, &col})
      v->resize(L);
    win8.resize((size_t)L * 8);
    chain_row.resize(L);
    for (auto* v : {&to_glb, &restream, &no_fit, &glb_fed}) v->resize(L);
    for (auto* v : {&intra, &ps, &pd, &bcast}) v->resize(E);
    for (auto* v : {&src, &part_d}) v->resize(E);
    for (auto* v : {&lag, &hop_mean, &far, &pair, &a2a, &e_mesh_bh, &e_dist_bh, &e_deliv,
                    &per_unit_in, &out_unit, &a2a_link, &skip_b, &x_edge})
      v->resize(E);
  }
};

class Combine {
 public:
  Combine(const ModelView& ma, const HwView& ha, Scratch& s) : ma(ma), ha(ha), s(s) {
    s.resize(ma.L, ma.E);
  }

  void run(const PlacementRow& p, CostRow& out) {
#ifdef PIPEORGAN_PROFILE
    uint64_t t[11];
    int i = 0;
    t[i++] = __rdtsc(); segments(p);
    t[i++] = __rdtsc(); layers(p);
    t[i++] = __rdtsc(); tiles();
    t[i++] = __rdtsc(); edges();
    t[i++] = __rdtsc(); traffic();
    t[i++] = __rdtsc(); links();
    t[i++] = __rdtsc(); memory();
    t[i++] = __rdtsc(); segment_latency();
    t[i++] = __rdtsc(); energy();
    t[i++] = __rdtsc(); reductions(out);
    t[i++] = __rdtsc();
    for (int j = 0; j < 10; ++j) prof()[j] += t[j + 1] - t[j];
    prof()[10] += 1;
#else
    segments(p);
    layers(p);
    tiles();
    edges();
    traffic();
    links();
    memory();
    segment_latency();
    energy();
    reductions(out);
#endif
  }
#ifdef PIPEORGAN_PROFILE
  static uint64_t* prof() {
    static uint64_t c[11] = {};
    static struct P { ~P() { fprintf(stderr, "cycles/placement: seg %lu lay %lu til %lu edg %lu tra %lu lnk %lu mem %lu lat %lu en %lu red %lu (n=%lu)\n",
        c[0]/c[10], c[1]/c[10], c[2]/c[10], c[3]/c[10], c[4]/c[10], c[5]/c[10], c[6]/c[10], c[7]/c[10], c[8]/c[10], c[9]/c[10], c[10]); } } p;
    return c;
  }
#endif

 private:
  const ModelView& ma;
  const HwView& ha;
  Scratch& s;
  // whole-network values carried between phases
  float spill = 0, glb_bytes = 0, dram_bytes = 0;
  float mac_pj = 0, pe_sram_pj = 0, noc_pj = 0, glb_pj = 0, dram_pj = 0, byte_hops = 0, dist_bh = 0;

  float hw(HwS i) const { return ha.hs[i]; }
  const float* ks(int l) const { return ha.key_scalars + (int64_t)s.key[l] * N_KS; }

  // Slots.reduce: per layer, v summed (or maxed, v >= 0) over its edge slots; the first two
  // slots, then the others, then their sum.
  template <typename F>
  float slot_sum(const int32_t* idx, int D, int l, F v) const {
    const int32_t* row = idx + (int64_t)l * D;
    float lo = 0.0f;
    int K = std::min(D, 2);
    for (int j = 0; j < K; ++j) lo = (j == 0) ? (row[j] >= 0 ? v(row[j]) : 0.0f) : lo + (row[j] >= 0 ? v(row[j]) : 0.0f);
    if (D <= 2) return lo;
    bool more = false;
    for (int j = 2; j < D; ++j) more |= row[j] >= 0;
    if (!more) return lo;
    float hi = 0.0f;
    for (int j = 2; j < D; ++j) hi = (j == 2) ? (row[j] >= 0 ? v(row[j]) : 0.0f) : hi + (row[j] >= 0 ? v(row[j]) : 0.0f);
    return lo + hi;
  }
  template <typename F>
  float slot_max(const int32_t* idx, int D, int l, F v) const {
    const int32_t* row = idx + (int64_t)l * D;
    float m = 0.0f;
    for (int j = 0; j < D; ++j) m = std::max(m, row[j] >= 0 ? v(row[j]) : 0.0f);
    return m;
  }
  template <typename F>
  float by_dst(int l, F v) const { return slot_sum(ma.in_eidx, ma.D_in, l, v); }
  template <typename F>
  float by_src(int l, F v) const { return slot_sum(ma.out_eidx, ma.D_out, l, v); }

  // A whole-network sum (over layers or edges). XLA:CPU adds a row of 32 to ~80 elements in
  // 16 lanes (element i into lane i mod 16, each lane in order), then the lanes pairwise
  // (lane j + lane j + 8, ...); shorter rows one by one. Longer rows it splits in a way not
  // reproduced here (those sums then differ by float rounding, docs in tests/test_kernel.py).
  template <typename F>
  static float net_sum(int n, F v) {
#ifdef PIPEORGAN_SEQUENTIAL_SUMS
    float a = 0.0f;
    for (int i = 0; i < n; ++i) a += v(i);
    return a;
#else
    if (n < 32) {
      float a = 0.0f;
      for (int i = 0; i < n; ++i) a += v(i);
      return a;
    }
    float lane[16] = {};
    for (int i = 0; i < n; ++i) lane[i & 15] += v(i);
    for (int h = 8; h >= 1; h /= 2)
      for (int j = 0; j < h; ++j) lane[j] = lane[j] + lane[j + h];
    return lane[0];
#endif
  }

  // Segments.sum / Segments.max at a segment's first layer f: its window f..e, added from e
  // down to f.
  template <typename F>
  float win_sum(int f, F v) const {
    int e = s.e[f];
    float acc = v(e);
    for (int j = e - 1; j >= f; --j) acc = acc + v(j);
    return acc;
  }
  template <typename F>
  float win_max(int f, F v) const {
    int e = s.e[f];
    float acc = v(e);
    for (int j = e - 1; j >= f; --j) acc = std::max(acc, v(j));
    return acc;
  }

  // geometry.segments
  void segments(const PlacementRow& p) {
    const int L = ma.L, D = ha.max_depth;
    int first = 0;
    for (int l = 0; l < L; ++l) {
      s.f[l] = first;
      s.k[l] = l - first;
      if (p.seg_end[l] || l == L - 1) {
        for (int j = first; j <= l; ++j) {
          s.z[j] = l;
          s.depth[j] = l - first + 1;
          s.e[j] = std::min(l, first + D - 1);
        }
        first = l + 1;
      }
    }
  }

  // geometry.layers: units per layer from integer shares, then table keys
  void layers(const PlacementRow& p) {
    const int L = ma.L, U = ha.U, g = ha.uh * ha.uw;
    for (int f0 = 0; f0 < L; f0 = s.z[f0] + 1) {
      const int z = s.z[f0];
      float Wt = 0.0f;
      for (int l = f0; l <= z; ++l) Wt += (float)p.share[l];  // integers: exact in any order
      const float free_ = (float)std::max(U - s.depth[f0], 0);
      float S = 0.0f;
      int ncum = 0;
      for (int l = f0; l <= z; ++l) {
        const float share = (float)p.share[l];
        S += share;
        const float S_prev = S - share;
        const float nn = std::max(1.0f + floor_ratio(free_ * S / Wt) - floor_ratio(free_ * S_prev / Wt), 1.0f);
        const int n = (int)nn;
        s.gran[l] = p.gran[z];
        s.org[l] = p.org[z];
        s.part[l] = p.part[l];
        s.n[l] = n;
        s.start[l] = ncum;
        ncum += n;
        s.key[l] = (s.org[l] * (U + 1) + std::min(s.start[l], U)) * U + n - 1;
        s.n_f[l] = (float)n;
        s.P_f[l] = s.n_f[l] * (float)g;
        __builtin_prefetch(ha.key_scalars + (int64_t)s.key[l] * N_KS);
      }
      // The chain-table row of every layer pair in the segment (traffic._geometry), fetched
      // now: the table is larger than the caches, and its rows are read edges later.
      for (int l = f0; l < z; ++l) {
        const int st = std::min(s.start[l], U);
        const int a = std::min(s.n[l], std::max(U - st, 1));
        const int b = std::min(s.n[l + 1], std::max(U - st - a, 1));
        const int64_t off = ha.chain_off[((int64_t)s.org[l] * (U + 1) + st) * (U + 1) + a];
        s.chain_row[l] = ha.chain + (off + b - 1) * N_CHAIN;
        __builtin_prefetch(s.chain_row[l]);
        __builtin_prefetch(s.chain_row[l] + N_CHAIN - 1);
      }
    }
  }

  // geometry.tiles
  void tiles() {
    const int L = ma.L;
    const float *Yo = ma.f(LF_YO), *Yin = ma.f(LF_YIN), *halo = ma.f(LF_HALO);
    const int32_t* rows_full = ma.i(LI_ROWS_FULL);
    for (int f0 = 0; f0 < L; f0 = s.z[f0] + 1) {
      const int z = s.z[f0];
      const float Yo_z = Yo[z];
      const float min_rows = -win_max(f0, [&](int j) { return -Yo[j]; });
      float T = GRAN_ROWS[s.gran[f0]];
      if (T == 0.0f) T = Yo_z;
      const float nt = std::max(std::min(ceil_ratio(Yo_z / T), min_rows), 1.0f);
      for (int l = f0; l <= z; ++l) {
        s.n_tiles[l] = nt;
        const float r = ceil_ratio(Yo[l] / nt);
        s.r[l] = r;
        float h = std::min(Yin[l], ceil_ratio(r * Yin[l] / Yo[l]) + halo[l]);
        s.h[l] = rows_full[l] ? Yin[l] : h;
      }
    }
  }

  // geometry.unit_hops
  float unit_hops(float d, bool x) const { return unit_hops(ha, d, x); }

 public:
  static float unit_hops(const HwView& ha, float d, bool x) {
    const int u = x ? ha.uw : ha.uh, N = x ? ha.GW : ha.GH;
    if (ha.topology == TOPO_MESH) return d * (float)u;
    if (ha.topology == TOPO_TORUS) return (float)u * std::min(d, (float)N - d);
    if (ha.express_k == u) return d;
    return (x ? ha.hx : ha.hy)[(int)d];
  }

 private:

  // traffic._extent_hops for one edge
  float extent_hops(int64_t ks_, int64_t kd_, bool empty) const {
    const int32_t *es_ = ha.ext + ks_ * 4, *ed_ = ha.ext + kd_ * 4;
    float out = 0.0f;
    for (int ax = 0; ax < 2; ++ax) {
      const bool x = ax == 0;
      const int u = x ? ha.uw : ha.uh;
      const int i0 = x ? 0 : 2, i1 = x ? 1 : 3;
      if (ha.topology != TOPO_TORUS && (ha.topology == TOPO_MESH || ha.express_k == u)) {
        const int d = std::max(std::abs(es_[i1] - ed_[i0]), std::abs(ed_[i1] - es_[i0]));
        out = out + unit_hops((float)d, x);
      } else {  // hops not monotone in distance: every pair of occupied columns (rows)
        const int n = x ? ha.GW : ha.GH, off = x ? 0 : ha.GW, G = ha.GW + ha.GH;
        const float* hh = x ? ha.hx : ha.hy;
        const float *sa = ha.dist + ks_ * 2 * G + off, *sb = ha.dist + kd_ * 2 * G + off;
        float m = 0.0f;
        for (int i = 0; i < n; ++i) {
          if (!(sa[i] > 0)) continue;
          for (int j = 0; j < n; ++j)
            if (sb[j] > 0) m = std::max(m, hh[std::abs(i - j)]);
        }
        out = out + m;
      }
    }
    return empty ? 0.0f : out;
  }

  // tables.a2a_combine for one source and destination factor row
  float a2a_combine(const float* src, const float* dst) const {
    const int nx = ha.GW - 1, ny = ha.GH - 1;
    auto mx = [&](int a, int b) {
      if (b <= a) return 0.0f;
      float m = src[a] * dst[a];
      for (int i = a + 1; i < b; ++i) m = std::max(m, src[i] * dst[i]);
      return m;
    };
    const float east = mx(0, nx), west = mx(nx, 2 * nx);
    const float south = mx(2 * nx, 2 * nx + ny), north = mx(2 * nx + ny, 2 * nx + 2 * ny);
    return std::max(std::max(east, west) / ha.lanes_x, std::max(south, north) / ha.lanes_y);
  }

  // Hops from each chunk of one layer to the same chunk of another: their sum and maximum.
  template <typename T>
  void chunk_hops(int64_t ks_, int64_t kd_, int& hsum, int& hmax) const {
    const int U = ha.U;
    const T *xs = static_cast<const T*>(ha.chunk_x) + ks_ * U, *xd = static_cast<const T*>(ha.chunk_x) + kd_ * U;
    const T *ys = static_cast<const T*>(ha.chunk_y) + ks_ * U, *yd = static_cast<const T*>(ha.chunk_y) + kd_ * U;
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
    // 16 chunks at a time, the hop tables (at most 16 entries) held in a register
    if (sizeof(T) == 1 && ha.GW <= 16 && ha.GH <= 16 && U % 16 == 0) {
      const __m512i tx = _mm512_maskz_loadu_epi32((__mmask16)((1u << ha.GW) - 1), ha.hop_x);
      const __m512i ty = _mm512_maskz_loadu_epi32((__mmask16)((1u << ha.GH) - 1), ha.hop_y);
      __m512i sum = _mm512_setzero_si512(), mx = _mm512_setzero_si512();
      auto ld = [](const T* p) { return _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); };
      for (int q = 0; q < U; q += 16) {
        const __m512i dx = _mm512_abs_epi32(_mm512_sub_epi32(ld(xs + q), ld(xd + q)));
        const __m512i dy = _mm512_abs_epi32(_mm512_sub_epi32(ld(ys + q), ld(yd + q)));
        const __m512i h = _mm512_add_epi32(_mm512_permutexvar_epi32(dx, tx), _mm512_permutexvar_epi32(dy, ty));
        sum = _mm512_add_epi32(sum, h);
        mx = _mm512_max_epi32(mx, h);
      }
      hsum = _mm512_reduce_add_epi32(sum);
      hmax = _mm512_reduce_max_epi32(mx);
      return;
    }
#endif
    int sum = 0, mx = 0;
    for (int q = 0; q < U; ++q) {
      const int h = ha.hop_x[std::abs(xs[q] - xd[q])] + ha.hop_y[std::abs(ys[q] - yd[q])];
      sum += h;
      mx = std::max(mx, h);
    }
    hsum = sum;
    hmax = mx;
  }

  // traffic._geometry for one edge of a layer-to-layer kind
  void edge_geometry(int ei, int es, int ed) {
    const bool ps = s.ps[ei], pd = s.pd[ei];
    auto kind = [&](const float* v) { return pd ? v[2] : (ps ? v[1] : v[0]); };
    if (ma.ei[EI_KIND * ma.E + ei] == EK_CHAIN) {
      const float* row = s.chain_row[es];  // the pair (es, es + 1), found in layers()
      s.hop_mean[ei] = row[CH_HOP_MEAN];
      const float hop_max = row[CH_HOP_MAX], ext = row[CH_EXT];
      s.pair[ei] = kind(row + CH_PAIR);
      s.a2a[ei] = kind(row + CH_A2A);
      s.far[ei] = (pd && ps) ? hop_max : ext;
      return;
    }
    nonchain_geometry(s.key[es], s.key[ed], ps, pd, s.hop_mean[ei], s.pair[ei], s.a2a[ei], s.far[ei]);
  }

 public:
  // The geometry of an edge that is not a chain edge, from its layers' table keys (also
  // called per lane by the lane-parallel combine, combine_lanes.h).
  void nonchain_geometry(int64_t ks_, int64_t kd_, bool ps, bool pd, float& hop_mean, float& pair_,
                         float& a2a, float& far) const {
    const int U = ha.U;
    // every chunk's hops are whole numbers (well below 2^24), so their float sum and maximum
    // are exact in any order: added here as integers
    int hsum, hmax;
    if (ha.chunk_bytes == 1)
      chunk_hops<int8_t>(ks_, kd_, hsum, hmax);
    else
      chunk_hops<int16_t>(ks_, kd_, hsum, hmax);
    const bool empty = (ha.key_scalars[ks_ * N_KS + KS_EMPTY] + ha.key_scalars[kd_ * N_KS + KS_EMPTY]) > 0;
    const int G = ha.GW + ha.GH, A = ha.A();
    const int ps_ = ps, pd_ = pd;
    const float* pr = ha.proj + (ks_ * 2 + ps_ * (1 - pd_)) * G;
    const float* di = ha.dist + (kd_ * 2 + pd_) * G;
    float pair = 0.0f;
    for (int j = 0; j < G; ++j) pair = (j == 0) ? pr[j] * di[j] : pair + pr[j] * di[j];
    hop_mean = (float)hsum / (float)U;
    pair_ = pair;
    a2a = a2a_combine(ha.a2a_src + (ks_ * 2 + ps_) * A, ha.a2a_dst + (kd_ * 2 + pd_) * A);
    far = (pd && ps) ? (float)hmax : extent_hops(ks_, kd_, empty);
  }

 private:

  // traffic.edges. The geometry of an edge between two segments is never read (every use is
  // masked by `intra`), so it is skipped.
  void edges() {
    const int E = ma.E;
    const int32_t *e_src = ma.ei + EI_SRC * E, *e_dst = ma.ei + EI_DST * E;
    const int32_t* rows_full = ma.i(LI_ROWS_FULL);
    for (int i = 0; i < E; ++i) {
      const int es = e_src[i], ed = e_dst[i], es_c = std::max(es, 0);
      const bool intra = es >= 0 && s.f[es_c] == s.f[ed];
      s.src[i] = es_c;
      s.intra[i] = intra;
      float lag = rows_full[ed] ? s.n_tiles[ed] - 1.0f
                                : std::min(s.n_tiles[ed] - 1.0f, floor_ratio((s.h[ed] - 1.0f) / s.r[es_c]));
      s.lag[i] = std::max(lag, 0.0f);
      const int pes = s.part[es_c], ped = s.part[ed];
      s.ps[i] = pes != CHANNEL;
      s.pd[i] = ped == SPATIAL || ped == HYBRID;
      s.part_d[i] = ped;
      s.bcast[i] = ped != SPATIAL;
      if (intra) {
        edge_geometry(i, es, ed);
      } else {
        s.hop_mean[i] = s.pair[i] = s.a2a[i] = s.far[i] = 0.0f;
      }
    }
  }

  static float pick4(int c, float a, float b, float cc, float d) {
    return c == 0 ? a : c == 1 ? b : c == 2 ? cc : d;
  }

  // traffic.traffic
  void traffic() {
    const int L = ma.L, E = ma.E;
    const float g = (float)(ha.uh * ha.uw);
    const int32_t* e_dst = ma.ei + EI_DST * E;
    const float* eb_ = ma.e_bytes;
    for (int i = 0; i < E; ++i) {
      const int ed = e_dst[i], es = s.src[i];
      const float eb = eb_[i], n_d = s.n_f[ed];
      const bool intra = s.intra[i], ps = s.ps[i], pd = s.pd[i], bcast = s.bcast[i];
      const int pe_ = s.part_d[i];
      const bool to_all = pe_ == CHANNEL;
      const float recv = to_all ? eb * n_d : eb;
      if (intra) {
        const float bh1 = eb * s.hop_mean[i];
        const float bh23 = eb * s.pair[i] * (to_all ? n_d : 1.0f);
        const float inter_bh = (pd && ps) ? bh1 : bh23;
        s.e_mesh_bh[i] = inter_bh + (bcast ? recv * (g - 1.0f) : 0.0f);
        s.e_dist_bh[i] = 0.0f;
        s.e_deliv[i] = bcast ? recv * g : recv;
      } else {
        const float* kd = ks(ed);
        s.e_mesh_bh[i] = 0.0f;
        s.e_dist_bh[i] = eb * pick4(pe_, kd[KS_WIRE_UNI_C], kd[KS_WIRE_ALL], kd[KS_WIRE_UNIT_C], kd[KS_WIRE_UNIT_U]);
        s.e_deliv[i] = eb * pick4(pe_, 1.0f, s.P_f[ed], g, g);
      }
      // mesh link loads (unit level)
      const float cpu_d = ha.by_n[s.n[ed] * 3 + 1], cpu_s = ha.by_n[s.n[es] * 3 + 1];
      s.per_unit_in[i] = pd ? eb * cpu_d : (to_all ? eb : eb / n_d);
      const bool a2a = intra && !(ps && pd);
      s.a2a_link[i] = a2a ? eb * (to_all ? n_d : 1.0f) * s.a2a[i] : 0.0f;
      const float src_unit = ps ? eb * cpu_s : eb / s.n_f[es];
      s.out_unit[i] = intra ? (to_all ? src_unit * n_d : src_unit) : 0.0f;
      // skip buffers
      const int k_e = s.k[ed] - s.k[es];
      s.skip_b[i] = (intra && k_e > 1 ? ((float)(k_e - 1) + s.lag[i]) * eb / s.n_tiles[ed] : 0.0f) / s.P_f[ed];
    }
    const float *out_bytes = ma.f(LF_OUT_BYTES), *K = ma.f(LF_K), *W = ma.f(LF_W);
    const float *Xo = ma.f(LF_XO), *in_full = ma.f(LF_IN_FULL_BYTES), *in_row = ma.f(LF_IN_ROW_BYTES);
    const float* out_elems = ma.f(LF_OUT_ELEMS);
    const int32_t *t_last = ma.i(LI_T_LAST), *net_out = ma.i(LI_NET_OUT), *rows_full = ma.i(LI_ROWS_FULL);
    const float sram = hw(HS_SRAM), db = hw(HS_DB), psum_b = hw(HS_PSUM_B);
    for (int l = 0; l < L; ++l) {
      const float* k = ks(l);
      const int part = s.part[l];
      const bool pos_split = part != CHANNEL, red = part == REDUCTION;
      const bool to_glb = t_last[l] > s.z[l] || net_out[l];
      s.to_glb[l] = to_glb;
      s.out_bh[l] = to_glb ? out_bytes[l] * (pos_split ? k[KS_WIRE_UNI_C] : k[KS_WIRE_UNI_U]) : 0.0f;
      s.glb_in_l[l] = by_dst(l, [&](int e) { return s.intra[e] ? 0.0f : eb_[e]; });
      s.glb_out_l[l] = to_glb ? out_bytes[l] : 0.0f;
      // capacity
      const float Kf = K[l], n_f = s.n_f[l], P_f = s.P_f[l];
      const float kg = ceil_ratio(Kf / g);
      const float w_pe = pick4(part, W[l], ceil_ratio(Kf / P_f) * W[l] / Kf, kg * W[l] / Kf, kg * W[l] / Kf / n_f);
      const float I = rows_full[l] ? in_full[l] : s.h[l] * in_row[l];
      const float I_pe = pick4(part, I / P_f, I, I / n_f, I / n_f);
      const float O_pe = red ? s.r[l] * Xo[l] * kg * psum_b : s.r[l] * Kf * Xo[l] * db / P_f;
      const float need = w_pe + 2.0f * (I_pe + O_pe) + by_dst(l, [&](int e) { return s.skip_b[e]; });
      const bool over = need > sram;
      const bool restream = over && (need - w_pe <= sram);
      s.restream[l] = restream;
      s.no_fit[l] = over && !restream;
      const float wmult = restream ? s.n_tiles[l] : 1.0f;
      const float w_bytes = W[l] * wmult;
      s.w_bytes[l] = w_bytes;
      s.w_bh[l] = w_bytes * pick4(part, k[KS_WIRE_ALL], k[KS_WIRE_UNI_U], k[KS_WIRE_HYB], k[KS_WIRE_UNI_U]);
      s.w_deliv[l] = w_bytes * pick4(part, P_f, 1.0f, n_f, 1.0f);
      // reduction partition: partial sums reduce-scattered over the mesh
      const float ps_bytes = (red && s.n[l] > 1) ? out_elems[l] * psum_b : 0.0f;
      s.ps_bytes[l] = ps_bytes;
      s.ps_bh[l] = ps_bytes * n_f * k[KS_PAIR_PS];
      s.ps_deliv[l] = ps_bytes * (n_f - 1.0f);
    }
  }

  // traffic.links
  void links() {
    const int L = ma.L, E = ma.E;
    const float uh = (float)ha.uh, lanes = ha.lanes, link_bw = hw(HS_LINK_BW), router = hw(HS_ROUTER);
    const int32_t* e_dst = ma.ei + EI_DST * E;
    for (int l = 0; l < L; ++l) {
      const float* k = ks(l);
      const float intra_link =
          by_dst(l, [&](int e) { return (s.intra[e] && s.bcast[e]) ? s.per_unit_in[e] : 0.0f; }) * (uh - 1.0f) / uh;
      const float edge_link = by_dst(l, [&](int e) { return s.intra[e] ? s.per_unit_in[e] : 0.0f; }) / lanes;
      const float src_link = std::max(by_src(l, [&](int e) { return s.out_unit[e]; }) / lanes,
                                      by_dst(l, [&](int e) { return s.a2a_link[e]; }));
      const float n_f = s.n_f[l];
      const float* bn = ha.by_n + s.n[l] * 3;
      const float ps_unit = s.ps_bytes[l] * std::max((n_f - 1.0f) * bn[1], 1.0f - bn[2]) / lanes;
      const float ps_link = std::max(s.ps_bytes[l] * k[KS_A2A_PS], ps_unit);
      s.ps_link[l] = ps_link;
      s.x_ps[l] = s.ps_bytes[l] > 0 ? ps_link / s.n_tiles[l] / link_bw + router * k[KS_EXT_PS] : 0.0f;
      s.col[l] = std::max(std::max(intra_link, edge_link), std::max(src_link, ps_link));
    }
    for (int f0 = 0; f0 < L; f0 = s.z[f0] + 1) {
      const float m = win_max(f0, [&](int j) { return s.col[j]; });
      for (int l = f0; l <= s.z[f0]; ++l) s.seg_link[l] = m;
    }
    for (int i = 0; i < E; ++i) {
      if (!s.intra[i]) continue;  // read by the fill only through in-segment edges
      const int ed = e_dst[i];
      float x = std::max(std::max(s.per_unit_in[i], s.out_unit[i]) / lanes,
                         s.bcast[i] ? s.per_unit_in[i] * (uh - 1.0f) / uh : 0.0f);
      s.x_edge[i] = x / s.n_tiles[ed] / link_bw + router * s.far[i];
    }
  }

  // timing.memory
  void memory() {
    const int L = ma.L, E = ma.E;
    const float sum_cross = net_sum(E, [&](int i) { return s.intra[i] ? 0.0f : ma.e_bytes[i]; });
    const float sum_w = net_sum(L, [&](int l) { return s.w_bytes[l]; });
    const float sum_out = net_sum(L, [&](int l) { return s.glb_out_l[l]; });
    const float glb_reads = sum_cross + sum_w;
    const float glb_writes = sum_out + ma.ms[MS_NET_IN_TOTAL] + ma.ms[MS_W_TOTAL];
    const float *W = ma.f(LF_W), *t_bytes = ma.f(LF_T_BYTES), *alive0 = ma.f(LF_ALIVE0);
    const int32_t* t_last = ma.i(LI_T_LAST);
    // per segment: its weights (W_s), then its GLB live bytes: tensors alive at its start,
    // the crossing tensors it produces, re-streamed weights (live_own), and the next
    // segment's weights, fetched meanwhile
    for (int f0 = 0; f0 < L; f0 = s.z[f0] + 1) s.W_s[f0] = win_sum(f0, [&](int j) { return W[j]; });
    float live_max = -INFINITY;
    for (int f0 = 0; f0 < L; f0 = s.z[f0] + 1) {
      const int z = s.z[f0];
      const float tb_out = win_sum(f0, [&](int j) { return t_last[j] > z ? t_bytes[j] : 0.0f; });
      const float w_restream = win_sum(f0, [&](int j) { return s.restream[j] ? W[j] : 0.0f; });
      const float live_own = alive0[f0] + tb_out + w_restream;
      const float W_next = z + 1 < L ? s.W_s[z + 1] : 0.0f;
      s.live[f0] = live_own + W_next;
      live_max = std::max(live_max, s.live[f0]);
    }
    spill = 2.0f * std::max(live_max - hw(HS_GLB), 0.0f);
    glb_bytes = glb_reads + glb_writes;
    dram_bytes = ma.ms[MS_W_TOTAL] + ma.ms[MS_NET_IN_TOTAL] + ma.ms[MS_NET_OUT_TOTAL] + spill;
  }

  // timing.compute_cycles for one layer
  float compute_cycles(int l) const {
    const float g = (float)(ha.uh * ha.uw);
    const float Kf = ma.f(LF_K)[l], m = ma.f(LF_M)[l], n_f = s.n_f[l], P_f = s.P_f[l];
    const float kg = ceil_ratio(Kf / g);
    const float Q = s.r[l] * ma.f(LF_XO)[l];
    const float m_red = std::ceil(m - 1e-3f);
    float cyc;
    switch (s.part[l]) {
      case 0: cyc = ceil_ratio(Q / P_f) * Kf * m; break;
      case 1: cyc = ceil_ratio(Kf / P_f) * Q * m; break;
      case 2: cyc = ceil_ratio(Q / n_f) * kg * m; break;
      default: cyc = (ceil_ratio(m_red / n_f) * Q + (n_f - 1.0f) * ceil_ratio(Q / n_f)) * kg;
    }
    return ceil_ratio(cyc / hw(HS_MACS_PER_CYCLE));
  }

  // timing.segment_latency, with timing.fill as one pass in layer order (the Jacobi sweeps'
  // fixed point: the same operations on the same operands)
  void segment_latency() {
    const int L = ma.L;
    const float glb_bw = hw(HS_GLB_BW), dist_bw = hw(HS_DIST_BW), dram_bw = hw(HS_DRAM_BW);
    const float link_bw = hw(HS_LINK_BW), router = hw(HS_ROUTER);
    const float *W = ma.f(LF_W), *nif = ma.f(LF_NET_IN_FIRST), *out_bytes = ma.f(LF_OUT_BYTES);
    const int32_t *net_out = ma.i(LI_NET_OUT), *rows_full = ma.i(LI_ROWS_FULL);
    auto nob = [&](int j) { return net_out[j] ? out_bytes[j] : 0.0f; };
    for (int l = 0; l < L; ++l) {
      s.cyc[l] = compute_cycles(l);
      s.glb_fed[l] = by_dst(l, [&](int e) { return s.intra[e] ? 0.0f : 1.0f; }) > 0;
    }
    for (int f0 = 0; f0 < L; f0 = s.z[f0] + 1) {
      const int z = s.z[f0];
      const float nt = s.n_tiles[f0];
      float* w = &s.win8[(size_t)f0 * 8];
      w[0] = win_sum(f0, [&](int j) { return s.glb_in_l[j] + (s.restream[j] ? W[j] * (s.n_tiles[j] - 1.0f) : 0.0f); });
      w[1] = win_sum(f0, [&](int j) { return nif[j]; });
      w[2] = win_sum(f0, [&](int j) { return s.glb_out_l[j]; });
      w[3] = win_sum(f0, [&](int j) { return nif[j] + nob(j); });
      w[4] = win_sum(f0, [&](int j) { return nob(j); });
      w[5] = win_sum(f0, [&](int j) { return s.glb_in_l[j] + s.glb_out_l[j] + W[j] + s.w_bytes[j] + nif[j]; });
      w[6] = win_sum(f0, [&](int j) { return W[j] + nif[j] + nob(j); });
      w[7] = win_sum(f0, [&](int j) { return s.glb_in_l[j] + s.w_bytes[j]; });
      const float g_in = w[0], g_net = w[1], g_out = w[2], d_pipe = w[3], d_out = w[4];
      const float mx = win_max(f0, [&](int j) { return s.glb_fed[j] ? ks(j)[KS_PORT_FAR] : 0.0f; });
      const float t_in = std::max(std::max((g_in + g_net) / glb_bw, g_in / dist_bw), g_net / dram_bw) / nt + router * mx;
      const float seg_link = s.seg_link[f0];
      const float sigma = std::max(std::max(seg_link / link_bw, (g_in + g_net + g_out) / glb_bw),
                                   std::max(std::max(g_in, g_out) / dist_bw, d_pipe / dram_bw)) / nt;
      for (int l = f0; l <= z; ++l) {
        const float port_far = ks(l)[KS_PORT_FAR];
        s.t_out[l] = std::max(std::max(g_out / glb_bw, g_out / dist_bw), d_out / dram_bw) / nt + router * port_far;
        s.F0[l] = s.glb_fed[l] ? t_in : 0.0f;
        s.c_pace[l] = std::max(std::max(s.cyc[l], s.glb_fed[l] ? t_in : 0.0f), s.ps_link[l] / nt / link_bw);
        s.c_done[l] = s.cyc[l] + s.x_ps[l];
        s.sigma[l] = sigma;
      }
    }
    // fill: every layer from its in-segment producers' final values
    for (int l = 0; l < L; ++l) {
      const int32_t* row = ma.in_eidx + (int64_t)l * ma.D_in;
      float prev = 0.0f, rin = 0.0f, ein = 0.0f;
      for (int j = 0; j < ma.D_in; ++j) {
        const int e = row[j];
        if (e < 0 || !s.intra[e]) continue;
        const int sr = s.src[e];
        prev = std::max(prev, s.fill_F[sr] + s.lag[e] * s.fill_rho[sr] + s.x_edge[e]);
        rin = std::max(rin, s.fill_rho[sr]);
        ein = std::max(ein, s.fill_E[sr] + s.x_edge[e]);
      }
      s.fill_rho[l] = rows_full[l] ? s.c_pace[l] : std::max(s.c_pace[l], rin);
      const float F = std::max(prev, s.F0[l]) + s.c_done[l];
      s.fill_F[l] = F;
      s.fill_E[l] = std::max(F + (s.n_tiles[l] - 1.0f) * s.c_pace[l], ein + s.c_done[l]);
    }
    for (int f0 = 0; f0 < L; f0 = s.z[f0] + 1) {
      const float* w = &s.win8[(size_t)f0 * 8];
      const float m0 = win_max(f0, [&](int j) { return s.fill_E[j] + (s.to_glb[j] ? s.t_out[j] : 0.0f); });
      const float m1 = win_max(f0, [&](int j) { return s.fill_F[j]; });
      const float nt = s.n_tiles[f0];
      const float pipe = std::max(m0, m1 + (nt - 1.0f) * s.sigma[f0]);
      const float W_s = s.W_s[f0];
      float preload = W_s / std::min(glb_bw, dist_bw);
      if (ma.i(LI_NET_FIRST)[f0]) preload = std::max(preload, W_s / dram_bw);
      const float b_glb = w[5], b_dram = w[6], b_dist = w[7], g_out = w[2];
      const float bound = std::max(std::max(b_glb / glb_bw, b_dram / dram_bw),
                                   std::max(std::max(b_dist, g_out) / dist_bw, s.seg_link[f0] / link_bw));
      s.seg_lat[f0] = std::max(preload + pipe, bound);
    }
  }

  // energy.energy
  void energy() {
    const int L = ma.L, E = ma.E;
    const float e_mesh = net_sum(E, [&](int i) { return s.e_mesh_bh[i]; });
    const float e_dist = net_sum(E, [&](int i) { return s.e_dist_bh[i]; });
    const float e_deliv = net_sum(E, [&](int i) { return s.e_deliv[i]; });
    const float ps_bh = net_sum(L, [&](int l) { return s.ps_bh[l]; });
    const float out_bh = net_sum(L, [&](int l) { return s.out_bh[l]; });
    const float w_bh = net_sum(L, [&](int l) { return s.w_bh[l]; });
    const float w_deliv = net_sum(L, [&](int l) { return s.w_deliv[l]; });
    const float ps_deliv = net_sum(L, [&](int l) { return s.ps_deliv[l]; });
    const float mesh_bh = e_mesh + ps_bh;
    dist_bh = e_dist + out_bh + w_bh;
    byte_hops = mesh_bh + dist_bh;
    const float delivered = e_deliv + w_deliv + ps_deliv;
    const float ops_total = ma.ms[MS_OPS_TOTAL];
    mac_pj = ops_total * hw(HS_E_MAC);
    pe_sram_pj = (ops_total * hw(HS_SRAM_PER_MAC) + delivered) * hw(HS_E_SRAM);
    noc_pj = byte_hops * hw(HS_E_NOC);
    glb_pj = glb_bytes * hw(HS_E_GLB);
    dram_pj = dram_bytes * hw(HS_E_DRAM);
  }

  // energy.per_layer
  float energy_per_layer(int l) const {
    const float *ops = ma.f(LF_OPS), *W = ma.f(LF_W), *nif = ma.f(LF_NET_IN_FIRST), *ob = ma.f(LF_OUT_BYTES);
    const float nob = ma.i(LI_NET_OUT)[l] ? ob[l] : 0.0f;
    const float e_mac = hw(HS_E_MAC), spm = hw(HS_SRAM_PER_MAC), e_sram = hw(HS_E_SRAM);
    const float e_noc = hw(HS_E_NOC), e_glb = hw(HS_E_GLB), e_dram = hw(HS_E_DRAM);
    return ops[l] * (e_mac + spm * e_sram)
           + e_sram * (by_dst(l, [&](int e) { return s.e_deliv[e]; }) + s.w_deliv[l] + s.ps_deliv[l])
           + e_noc * (by_dst(l, [&](int e) { return s.e_mesh_bh[e] + s.e_dist_bh[e]; }) + s.out_bh[l] + s.w_bh[l] + s.ps_bh[l])
           + e_glb * (s.glb_in_l[l] + s.glb_out_l[l] + W[l] + s.w_bytes[l] + nif[l])
           + e_dram * (W[l] + nob + nif[l]);
  }

  // cost/__init__.py combine: the whole-network reductions and the per-segment attribution
  void reductions(CostRow& out) {
    const int L = ma.L, D = ha.max_depth;
    const float dram_bw = hw(HS_DRAM_BW), glb = hw(HS_GLB), e_dram = hw(HS_E_DRAM);
    const int32_t* red_ok = ma.i(LI_RED_OK);
    const float lat = net_sum(L, [&](int l) { return s.f[l] == l ? s.seg_lat[l] : 0.0f; });
    float max_link = -INFINITY;
    bool any_deep = false, any_nofit = false, any_badred = false;
    for (int l = 0; l < L; ++l) {
      s.col[l] = energy_per_layer(l);
      any_nofit |= (bool)s.no_fit[l];
      any_badred |= s.part[l] == REDUCTION && !red_ok[l];
      max_link = std::max(max_link, s.seg_link[l]);
    }
    for (int f0 = 0; f0 < L; f0 = s.z[f0] + 1) {
      const int z = s.z[f0];
      const bool too_deep = s.depth[f0] > D;
      any_deep |= too_deep;
      const float spill_s = 2.0f * std::max(s.live[f0] - glb, 0.0f);
      const float bad = win_sum(f0, [&](int j) {
        return (s.no_fit[j] || too_deep || (s.part[j] == REDUCTION && !red_ok[j])) ? 1.0f : 0.0f;
      });
      out.seg_latency[f0] = s.seg_lat[f0] + spill_s / dram_bw;
      out.seg_energy[f0] = win_sum(f0, [&](int j) { return s.col[j]; }) + spill_s * e_dram;
      out.seg_feasible[f0] = bad == 0.0f && !too_deep;
      for (int l = f0 + 1; l <= z; ++l) {
        out.seg_latency[l] = 0.0f;
        out.seg_energy[l] = 0.0f;
        out.seg_feasible[l] = true;
      }
    }
    const float latency = lat + spill / dram_bw;
    const float energy = mac_pj + pe_sram_pj + noc_pj + glb_pj + dram_pj;
    out.latency_cycles = latency;
    out.energy_pj = energy;
    out.energy_mac_pj = mac_pj;
    out.energy_pe_sram_pj = pe_sram_pj;
    out.energy_noc_pj = noc_pj;
    out.energy_glb_pj = glb_pj;
    out.energy_dram_pj = dram_pj;
    out.edp = energy * latency;
    out.reason = any_deep ? 1 : any_nofit ? 2 : any_badred ? 3 : 0;
    out.feasible = out.reason == 0;
    out.max_link_bytes = max_link;
    out.byte_hops = byte_hops;
    out.dist_byte_hops = dist_bh;
    out.glb_bytes = glb_bytes;
    out.dram_bytes = dram_bytes;
  }
};

}  // namespace pipeorgan
