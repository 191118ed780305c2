// The combine of combine.h for W placements at once (W = 16 with AVX-512, 8 with AVX2): every
// per-layer and per-edge value is a vector of W floats (or ints), one placement per lane, and
// each lane does exactly the float32 operations of the scalar Combine in the same order, so
// that both give bitwise the same results. What differs between lanes is the segment
// structure, so the scalar combine's loops over a segment's layers become fixed-shape passes
// over all layers:
//  - a window sum / max (Segments.sum / max at a segment's first layer f: layers e down to f)
//    is one pass from the last layer to the first that restarts at each lane's e and adds
//    (or maxes) while below it: at f it holds the scalar's value, added in the same order;
//  - a segment's value (known at f) reaches its other layers by a forward pass that takes it
//    from the previous layer unless the layer starts a segment; a value known at the
//    segment's last layer z reaches the others by a backward pass;
//  - branches are selects (both sides computed; the unused side may be inf or nan);
//  - table lookups (key_scalars, chain, by_n) are gathers.
// The geometry of a non-chain edge (chunk hops, projections) is the scalar code, per lane.
// Memory: the tables are larger than the caches, so the chain-table rows and the non-chain
// edges' rows are prefetched as soon as the keys are known (layers()), and the next group's
// choices during this group's last phases (ffi.cc); the choices and the per-layer outputs
// are transposed 16 x 16 in registers (AVX-512), else gathered. A division by a power-of-two
// hardware constant is a multiplication by its reciprocal (Div: the same numbers).
#pragma once

// GCC's vector extensions (GCC 9 and later; other compilers build the scalar combine only)
#if (defined(__AVX512F__) || defined(__AVX2__)) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 9
#define PIPEORGAN_LANES 1
#include <immintrin.h>

#include <cstring>

#include "combine.h"

namespace pipeorgan {
namespace lanes {

#if defined(__AVX512F__)
constexpr int W = 16;
#else
constexpr int W = 8;
#endif
// the enums of arrays.h as ints (a vector operand takes an int, not an enum)
constexpr int32_t N_KS = pipeorgan::N_KS, N_CHAIN = pipeorgan::N_CHAIN;
constexpr int32_t CH_HOP_MEAN = pipeorgan::CH_HOP_MEAN, CH_HOP_MAX = pipeorgan::CH_HOP_MAX,
                  CH_EXT = pipeorgan::CH_EXT, CH_PAIR = pipeorgan::CH_PAIR, CH_A2A = pipeorgan::CH_A2A;
constexpr int32_t SPATIAL = pipeorgan::SPATIAL, CHANNEL = pipeorgan::CHANNEL, HYBRID = pipeorgan::HYBRID,
                  REDUCTION = pipeorgan::REDUCTION;

typedef float vf __attribute__((vector_size(4 * W)));
typedef int32_t vi __attribute__((vector_size(4 * W)));

inline vf splat(float x) { return vf{} + x; }
inline vi splati(int32_t x) { return vi{} + x; }
inline vf sel(vi m, vf a, vf b) { return m ? a : b; }
inline vi seli(vi m, vi a, vi b) { return m ? a : b; }
// std::max(a, b) = a < b ? b : a and std::min(a, b) = b < a ? b : a, nan and signed zeros
// included
inline vf vmax(vf a, vf b) { return a < b ? b : a; }
inline vf vmin(vf a, vf b) { return b < a ? b : a; }
inline vi imax(vi a, vi b) { return a < b ? b : a; }
inline vi imin(vi a, vi b) { return b < a ? b : a; }
inline vf tof(vi x) { return __builtin_convertvector(x, vf); }
inline vi toi(vf x) { return __builtin_convertvector(x, vi); }  // truncates, as (int)
inline vf vabs(vf x) {
  vi b = (vi)x & 0x7fffffff;
  return (vf)b;
}
#if defined(__AVX512F__)
inline vf vceil(vf x) { return (vf)_mm512_roundscale_ps((__m512)x, _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC); }
inline vf vfloor(vf x) { return (vf)_mm512_roundscale_ps((__m512)x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
inline vf gather(const float* base, vi idx) { return (vf)_mm512_i32gather_ps((__m512i)idx, base, 4); }
inline vi gatheri(const int32_t* base, vi idx) { return (vi)_mm512_i32gather_epi32((__m512i)idx, base, 4); }
#else
inline vf vceil(vf x) { return (vf)_mm256_round_ps((__m256)x, _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC); }
inline vf vfloor(vf x) { return (vf)_mm256_round_ps((__m256)x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
inline vf gather(const float* base, vi idx) { return (vf)_mm256_i32gather_ps(base, (__m256i)idx, 4); }
inline vi gatheri(const int32_t* base, vi idx) { return (vi)_mm256_i32gather_epi32((const int*)base, (__m256i)idx, 4); }
#endif
inline vf ceil_ratio(vf x) { return vceil(x - RATIO_EPS * vabs(x)); }
inline vf floor_ratio(vf x) { return vfloor(x + RATIO_EPS * vabs(x)); }
// A division by a hardware constant: x / v, or x * (1 / v) where v is a power of two (then
// the same number: both are x * 2^-k rounded once, subnormals, zeros, infinities and nans
// included), a multiplication being several times cheaper than a vector division.
struct Div {
  float v, r;
  bool pow2;
  explicit Div(float v) : v(v), r(1.0f / v) {
    int e;
    pow2 = std::isnormal(v) && std::isnormal(r) && std::frexp(v, &e) == 0.5f;
  }
};
inline vf operator/(vf x, const Div& d) { return d.pow2 ? x * d.r : x / d.v; }

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define PIPEORGAN_TRANSPOSE 1
// 16 rows of 16 int32 into 16 columns: r[c][j] = r[j][c] before
inline void transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  // r[4i + c]: in 128-bit lane q, element 4q + c of rows 4i..4i+3
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512i a = _mm512_shuffle_i32x4(r[c], r[4 + c], 0x88), a2 = _mm512_shuffle_i32x4(r[c], r[4 + c], 0xdd);
    const __m512i b = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0x88), b2 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0xdd);
    t[c] = _mm512_shuffle_i32x4(a, b, 0x88);
    t[8 + c] = _mm512_shuffle_i32x4(a, b, 0xdd);
    t[4 + c] = _mm512_shuffle_i32x4(a2, b2, 0x88);
    t[12 + c] = _mm512_shuffle_i32x4(a2, b2, 0xdd);
  }
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}
#endif

inline vf b2f(vi m) { return sel(m, splat(1.0f), splat(0.0f)); }

// lane-parallel scratch: [L] or [E] vectors
struct Scratch {
  std::vector<vi> end, f, z, e, depth, k, gran, org, part, n, start, key, chain_idx;
  std::vector<vf> n_f, P_f, n_tiles, r, h, cpu;  // cpu: by_n's column 1 at n
  std::vector<vi> intra, ps, pd, bcast;
  std::vector<vf> lag, hop_mean, far, pair, a2a;
  std::vector<vf> e_mesh_bh, e_dist_bh, e_deliv, per_unit_in, out_unit, a2a_link, skip_b;
  std::vector<vi> to_glb, restream, no_fit, glb_fed;
  std::vector<vf> out_bh, glb_in_l, glb_out_l, w_bytes, w_bh, w_deliv, ps_bytes, ps_bh, ps_deliv;
  std::vector<vf> seg_link, ps_link, x_edge, x_ps;
  std::vector<vf> live, W_s, cyc, c_pace, c_done, F0, fill_F, fill_rho, fill_E, seg_lat, t_out, sigma;
  std::vector<vf> win[8];
  std::vector<vf> col, tmp;
  // kept by the thread: the placements' choices, transposed; prefetch_next's lines; the
  // output gather indices
  std::vector<vi> p_gran, p_org, p_share, p_part, out_idx;
  std::vector<const char*> lines;

  void resize(int L, int E) {
    for (auto* v : {&end, &f, &z, &e, &depth, &k, &gran, &org, &part, &n, &start, &key, &chain_idx, &to_glb, &restream,
                    &no_fit, &glb_fed})
      v->resize(L);
    for (auto* v : {&n_f, &P_f, &n_tiles, &r, &h, &cpu, &out_bh, &glb_in_l, &glb_out_l, &w_bytes, &w_bh, &w_deliv,
                    &ps_bytes, &ps_bh, &ps_deliv, &seg_link, &ps_link, &x_ps, &live, &W_s, &cyc, &c_pace,
                    &c_done, &F0, &fill_F, &fill_rho, &fill_E, &seg_lat, &t_out, &sigma, &col, &tmp})
      v->resize(L);
    for (auto& v : win) v.resize(L);
    for (auto* v : {&intra, &ps, &pd, &bcast}) v->resize(E);
    for (auto* v : {&lag, &hop_mean, &far, &pair, &a2a, &e_mesh_bh, &e_dist_bh, &e_deliv, &per_unit_in,
                    &out_unit, &a2a_link, &skip_b, &x_edge})
      v->resize(E);
  }
};

class Combine {
 public:
  // `scalar` lends its non-chain edge geometry (the scalar combine over the same tables)
  Combine(const ModelView& ma, const HwView& ha, Scratch& s, const pipeorgan::Combine& scalar)
      : ma(ma), ha(ha), s(s), scalar(scalar) {
    s.resize(ma.L, ma.E);
    for (int i = 0; i < W; ++i) lane_id[i] = i;
    macs = Div(hw(HS_MACS_PER_CYCLE));
    for (int i = 0; i < ma.E; ++i)
      if (ma.ei[EI_KIND * ma.E + i] != EK_CHAIN && ma.ei[EI_SRC * ma.E + i] >= 0) nonchain.push_back(i);
  }

  // W placements (p[0..W-1]) into W cost rows
  void run(const PlacementRow* p, CostRow* out) {
#ifdef PIPEORGAN_PROFILE
    uint64_t t[11];
    int i = 0;
#define PHASE(x) t[i++] = __rdtsc(); x; pump();
#else
#define PHASE(x) x; pump();
#endif
    pump_from = 5;  // the last 5 phases (fetched earlier, they would be evicted again)
    phase = 0;
    PHASE(segments(p))
    PHASE(layers())
    PHASE(tiles())
    PHASE(edges())
    PHASE(traffic())
    PHASE(links())
    PHASE(memory())
    PHASE(segment_latency())
    PHASE(energy())
    PHASE(reductions(out))
#undef PHASE
    pump(size_t(1) << 40);
#ifdef PIPEORGAN_PROFILE
    t[i++] = __rdtsc();
    for (int j = 0; j < 10; ++j) pipeorgan::Combine::prof()[j] += t[j + 1] - t[j];
    pipeorgan::Combine::prof()[10] += W;
#endif
  }

  // Memory that the next run reads (contiguous ranges), fetched a slice after each of this
  // run's last phases: the next placements' rows are not in the caches, and fetched at once
  // they would not all be fetched, or be evicted again.
  void prefetch_next(const void* p, int64_t bytes) {
    const char* c = static_cast<const char*>(p);
    for (int64_t o = 0; o < bytes; o += 64) lines.push_back(c + o);
    if (bytes > 0) lines.push_back(c + bytes - 1);
  }

 private:
  const ModelView& ma;
  const HwView& ha;
  Scratch& s;
  const pipeorgan::Combine& scalar;
  vi lane_id;
  Div macs{1.0f};
  std::vector<const char*>& lines = s.lines;  // prefetch_next
  size_t pumped = 0;
  int phase = 0, pump_from = 0;
  void pump(size_t n = 0) {
    if (!n && ++phase <= pump_from) return;
    if (!n) n = lines.size() / (10 - pump_from) + 1;
    const size_t end = std::min(lines.size(), pumped + n);
    for (; pumped < end; ++pumped) __builtin_prefetch(lines[pumped]);
    if (pumped == lines.size()) {
      lines.clear();
      pumped = 0;
    }
  }
  std::vector<int> nonchain;  // the layer-to-layer edges that are not chain edges
  // per-placement choices, transposed: [L] vectors
  std::vector<vi>&p_gran = s.p_gran, &p_org = s.p_org, &p_share = s.p_share, &p_part = s.p_part;
  vf spill, glb_bytes, dram_bytes, mac_pj, pe_sram_pj, noc_pj, glb_pj, dram_pj, byte_hops, dist_bh;

  float hw(HwS i) const { return ha.hs[i]; }
  vf ks(int l, int col) const { return gather(ha.key_scalars, s.key[l] * N_KS + col); }
  vi is_f(int l) const { return s.f[l] == l; }

  // Slots.reduce, as combine.h slot_sum (the slots are the model's: the same in every lane)
  template <typename F>
  vf slot_sum(const int32_t* idx, int D, int l, F v) const {
    const int32_t* row = idx + (int64_t)l * D;
    vf lo = splat(0.0f);
    int K = std::min(D, 2);
    for (int j = 0; j < K; ++j) {
      const vf x = row[j] >= 0 ? v(row[j]) : splat(0.0f);
      lo = (j == 0) ? x : lo + x;
    }
    if (D <= 2) return lo;
    bool more = false;
    for (int j = 2; j < D; ++j) more |= row[j] >= 0;
    if (!more) return lo;
    vf hi = splat(0.0f);
    for (int j = 2; j < D; ++j) {
      const vf x = row[j] >= 0 ? v(row[j]) : splat(0.0f);
      hi = (j == 2) ? x : hi + x;
    }
    return lo + hi;
  }
  template <typename F>
  vf by_dst(int l, F v) const { return slot_sum(ma.in_eidx, ma.D_in, l, v); }
  template <typename F>
  vf by_src(int l, F v) const { return slot_sum(ma.out_eidx, ma.D_out, l, v); }

  // combine.h net_sum, per lane
  template <typename F>
  static vf net_sum(int n, F v) {
#ifdef PIPEORGAN_SEQUENTIAL_SUMS
    vf a = splat(0.0f);
    for (int i = 0; i < n; ++i) a += v(i);
    return a;
#else
    if (n < 32) {
      vf a = splat(0.0f);
      for (int i = 0; i < n; ++i) a += v(i);
      return a;
    }
    vf lane[16];
    for (int j = 0; j < 16; ++j) lane[j] = splat(0.0f);
    for (int i = 0; i < n; ++i) lane[i & 15] += v(i);
    for (int h = 8; h >= 1; h /= 2)
      for (int j = 0; j < h; ++j) lane[j] = lane[j] + lane[j + h];
    return lane[0];
#endif
  }

  // The window maximum of every segment, into out (valid at the segments' first layers):
  // from the last layer down, restarting at each lane's window end e.
  template <typename F>
  void win_max(vf* out, F v) const {
    vf run = splat(0.0f);
    for (int l = ma.L - 1; l >= 0; --l) {
      const vf x = v(l);
      const vi e = s.e[l];
      run = (e == l) ? x : ((l < e) ? vmax(run, x) : run);
      out[l] = run;
    }
  }
  // N window sums in one pass (a window maximum for bit k of MAX): v(l, x) sets x[0..N-1]
  template <int N, unsigned MAX, typename F>
  void windows(vf* const (&out)[N], F v) const {
    vf run[N];
    for (int k = 0; k < N; ++k) run[k] = splat(0.0f);
    for (int l = ma.L - 1; l >= 0; --l) {
      const vi e = s.e[l];
      const vi at = e == l, in = l < e;
      vf x[N];
      v(l, x);
      for (int k = 0; k < N; ++k) {
        const vf acc = ((MAX >> k) & 1) ? vmax(run[k], x[k]) : run[k] + x[k];
        run[k] = at ? x[k] : (in ? acc : run[k]);
        out[k][l] = run[k];
      }
    }
  }
  // a value known at each segment's first layer, to all its layers
  void from_first(vf* x) const {
    for (int l = 1; l < ma.L; ++l) x[l] = is_f(l) ? x[l] : x[l - 1];
  }
  void from_first_i(vi* x) const {
    for (int l = 1; l < ma.L; ++l) x[l] = is_f(l) ? x[l] : x[l - 1];
  }
  // a value known at each segment's last layer, to all its layers
  void from_last(vf* x) const {
    for (int l = ma.L - 2; l >= 0; --l) x[l] = s.end[l] ? x[l] : x[l + 1];
  }
  void from_last_i(vi* x) const {
    for (int l = ma.L - 2; l >= 0; --l) x[l] = s.end[l] ? x[l] : x[l + 1];
  }

  // geometry.segments, with the placements' choices transposed
  void segments(const PlacementRow* p) {
    const int L = ma.L, D = ha.max_depth;
    p_gran.resize(L);
    p_org.resize(L);
    p_share.resize(L);
    p_part.resize(L);
#ifdef PIPEORGAN_TRANSPOSE
    // 16 layers of the 16 rows at a time, transposed in registers
    for (int l0 = 0; l0 < L; l0 += 16) {
      const int cnt = std::min(16, L - l0);
      const __mmask16 m = (__mmask16)((1u << cnt) - 1);
      __m512i r[16];
      auto one = [&](const int32_t* PlacementRow::*field, std::vector<vi>& dst) {
        for (int j = 0; j < 16; ++j) r[j] = _mm512_maskz_loadu_epi32(m, p[j].*field + l0);
        transpose16(r);
        for (int c = 0; c < cnt; ++c) dst[l0 + c] = (vi)r[c];
      };
      one(&PlacementRow::gran, p_gran);
      one(&PlacementRow::org, p_org);
      one(&PlacementRow::share, p_share);
      one(&PlacementRow::part, p_part);
      for (int j = 0; j < 16; ++j) r[j] = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, p[j].seg_end + l0));
      transpose16(r);
      for (int c = 0; c < cnt; ++c) s.end[l0 + c] = (vi)r[c] != 0;
    }
#else
    // the rows of one batch are W consecutive rows of [B, L] arrays (ffi.cc), so lane j's
    // element l is at lane j * L + l from lane 0's row
    bool consecutive = true;
    for (int j = 1; j < W; ++j)
      consecutive &= p[j].gran == p[0].gran + (int64_t)j * L && p[j].org == p[0].org + (int64_t)j * L &&
                     p[j].share == p[0].share + (int64_t)j * L && p[j].part == p[0].part + (int64_t)j * L;
    if (consecutive && (int64_t)W * L < (int64_t(1) << 31)) {
      const vi rows = lane_id * L;
      for (int l = 0; l < L; ++l) {
        p_gran[l] = gatheri(p[0].gran, rows + l);
        p_org[l] = gatheri(p[0].org, rows + l);
        p_share[l] = gatheri(p[0].share, rows + l);
        p_part[l] = gatheri(p[0].part, rows + l);
      }
    } else {
      for (int j = 0; j < W; ++j)
        for (int l = 0; l < L; ++l) {
          p_gran[l][j] = p[j].gran[l];
          p_org[l][j] = p[j].org[l];
          p_share[l][j] = p[j].share[l];
          p_part[l][j] = p[j].part[l];
        }
    }
    for (int j = 0; j < W; ++j)
      for (int l = 0; l < L; ++l) s.end[l][j] = p[j].seg_end[l] ? -1 : 0;
#endif
    s.end[L - 1] = splati(-1);
    vi first = splati(0);
    for (int l = 0; l < L; ++l) {
      s.f[l] = first;
      s.k[l] = l - first;
      first = s.end[l] ? splati(l + 1) : first;
    }
    vi z = splati(L - 1);
    for (int l = L - 1; l >= 0; --l) {
      z = s.end[l] ? splati(l) : z;
      s.z[l] = z;
      s.depth[l] = z - s.f[l] + 1;
      s.e[l] = imin(z, s.f[l] + (D - 1));
    }
  }

  // geometry.layers
  void layers() {
    const int L = ma.L, U = ha.U, g = ha.uh * ha.uw;
    // the segment's total share (its running sum at z, taken back to its layers), gran and org
    vf* Wt = s.tmp.data();
    vf S = splat(0.0f);
    for (int l = 0; l < L; ++l) {
      S = is_f(l) ? splat(0.0f) : S;
      S += tof(p_share[l]);
      Wt[l] = S;
    }
    from_last(Wt);
    vi* org = s.org.data();
    for (int l = 0; l < L; ++l) {
      s.gran[l] = p_gran[l];
      org[l] = p_org[l];
    }
    from_last_i(s.gran.data());
    from_last_i(org);
    S = splat(0.0f);
    vi ncum = splati(0);
    for (int l = 0; l < L; ++l) {
      const vi f = is_f(l);
      S = f ? splat(0.0f) : S;
      ncum = f ? splati(0) : ncum;
      const vf free_ = tof(imax(U - s.depth[l], splati(0)));
      const vf share = tof(p_share[l]);
      S += share;
      const vf S_prev = S - share;
      const vf nn = vmax(1.0f + floor_ratio(free_ * S / Wt[l]) - floor_ratio(free_ * S_prev / Wt[l]), splat(1.0f));
      const vi n = toi(nn);
      s.part[l] = p_part[l];
      const vi st = ncum;
      ncum += n;
      s.key[l] = (org[l] * (U + 1) + imin(st, splati(U))) * U + n - 1;
      s.n_f[l] = tof(n);
      s.cpu[l] = gather(ha.by_n + 1, n * 3);
      s.P_f[l] = s.n_f[l] * (float)g;
      s.start[l] = st;
      s.n[l] = n;
    }
    // the chain-table row of every layer pair in a segment, as a float index into ha.chain
    for (int l = 0; l < L; ++l) {
      const vi st = imin(s.start[l], splati(U));
      const vi n = s.n[l];
      const vi pair_ = l < s.z[l];
      const vi n1 = l + 1 < L ? s.n[l + 1] : splati(1);
      const vi a = imin(n, imax(U - st, splati(1)));
      const vi b = imin(n1, imax(U - st - a, splati(1)));
      vi oi = (org[l] * (U + 1) + st) * (U + 1) + a;
      oi = seli(pair_, oi, splati(0));
      const vi off = gatheri(ha.chain_off, oi);
      const vi row = seli(pair_, (off + b - 1) * N_CHAIN, splati(0));
      s.chain_idx[l] = row;
      for (int j = 0; j < W; ++j) {
        __builtin_prefetch(ha.chain + row[j]);
        __builtin_prefetch(ha.chain + row[j] + N_CHAIN - 1);
      }
    }
    // the table rows that the geometry of every in-segment non-chain edge reads (edges()),
    // fetched now: one lane after another, each a chain of cache misses otherwise
    const int G = ha.GW + ha.GH, A = ha.A(), cb = ha.chunk_bytes;
    const int32_t *e_src = ma.ei + EI_SRC * ma.E, *e_dst = ma.ei + EI_DST * ma.E;
    auto fetch = [](const void* p, int bytes) {
      const char* c = static_cast<const char*>(p);
      for (int o = 0; o < bytes; o += 64) __builtin_prefetch(c + o);
      __builtin_prefetch(c + bytes - 1);
    };
    for (int i : nonchain) {
      const int es = e_src[i], ed = e_dst[i];
      const vi intra = s.f[es] == s.f[ed];
      const vi ps = s.part[es] != CHANNEL, pd = (s.part[ed] == SPATIAL) | (s.part[ed] == HYBRID);
      for (int j = 0; j < W; ++j) {
        if (!intra[j]) continue;
        const int64_t ks_ = s.key[es][j], kd_ = s.key[ed][j];
        const int ps_ = ps[j] != 0, pd_ = pd[j] != 0;
        fetch(static_cast<const char*>(ha.chunk_x) + ks_ * ha.U * cb, ha.U * cb);
        fetch(static_cast<const char*>(ha.chunk_x) + kd_ * ha.U * cb, ha.U * cb);
        fetch(static_cast<const char*>(ha.chunk_y) + ks_ * ha.U * cb, ha.U * cb);
        fetch(static_cast<const char*>(ha.chunk_y) + kd_ * ha.U * cb, ha.U * cb);
        fetch(ha.proj + (ks_ * 2 + ps_ * (1 - pd_)) * G, G * 4);
        fetch(ha.dist + (kd_ * 2 + pd_) * G, G * 4);
        fetch(ha.a2a_src + (ks_ * 2 + ps_) * A, A * 4);
        fetch(ha.a2a_dst + (kd_ * 2 + pd_) * A, A * 4);
        fetch(ha.ext + ks_ * 4, 16);
        fetch(ha.ext + kd_ * 4, 16);
      }
    }
  }

  // geometry.tiles
  void tiles() {
    const int L = ma.L;
    const float *Yo = ma.f(LF_YO), *Yin = ma.f(LF_YIN), *halo = ma.f(LF_HALO);
    const int32_t* rows_full = ma.i(LI_ROWS_FULL);
    vf* Yo_z = s.tmp.data();
    for (int l = 0; l < L; ++l) Yo_z[l] = splat(Yo[l]);
    from_last(Yo_z);
    vf* minr = s.n_tiles.data();
    win_max(minr, [&](int j) { return splat(-Yo[j]); });
    for (int l = 0; l < L; ++l) {
      const vf min_rows = -minr[l];
      vf T = gather(GRAN_ROWS, s.gran[l]);
      T = T == 0.0f ? Yo_z[l] : T;
      s.n_tiles[l] = vmax(vmin(ceil_ratio(Yo_z[l] / T), min_rows), splat(1.0f));
    }
    from_first(s.n_tiles.data());
    for (int l = 0; l < L; ++l) {
      const vf nt = s.n_tiles[l];
      const vf r = ceil_ratio(Yo[l] / nt);
      s.r[l] = r;
      const vf h = vmin(splat(Yin[l]), ceil_ratio(r * Yin[l] / Yo[l]) + halo[l]);
      s.h[l] = rows_full[l] ? splat(Yin[l]) : h;
    }
  }

  // traffic.edges
  void edges() {
    const int E = ma.E;
    const int32_t *e_src = ma.ei + EI_SRC * E, *e_dst = ma.ei + EI_DST * E, *kind = ma.ei + EI_KIND * E;
    const int32_t* rows_full = ma.i(LI_ROWS_FULL);
    for (int i = 0; i < E; ++i) {
      const int es = e_src[i], ed = e_dst[i], es_c = std::max(es, 0);
      const vi intra = es >= 0 ? (s.f[es_c] == s.f[ed]) : splati(0);
      s.intra[i] = intra;
      vf lag = rows_full[ed] ? s.n_tiles[ed] - 1.0f
                             : vmin(s.n_tiles[ed] - 1.0f, floor_ratio((s.h[ed] - 1.0f) / s.r[es_c]));
      s.lag[i] = vmax(lag, splat(0.0f));
      const vi pes = s.part[es_c], ped = s.part[ed];
      const vi ps = pes != CHANNEL, pd = (ped == SPATIAL) | (ped == HYBRID);
      s.ps[i] = ps;
      s.pd[i] = pd;
      s.bcast[i] = ped != SPATIAL;
      if (kind[i] == EK_CHAIN) {
        const vi row = seli(intra, s.chain_idx[es_c], splati(0));
        const vi kd = seli(pd, splati(2), seli(ps, splati(1), splati(0)));
        const vi both = pd & ps;
        const vf z = splat(0.0f);
        s.hop_mean[i] = sel(intra, gather(ha.chain, row + CH_HOP_MEAN), z);
        s.pair[i] = sel(intra, gather(ha.chain, row + CH_PAIR + kd), z);
        s.a2a[i] = sel(intra, gather(ha.chain, row + CH_A2A + kd), z);
        s.far[i] = sel(intra, gather(ha.chain, row + seli(both, splati(CH_HOP_MAX), splati(CH_EXT))), z);
      } else {
        s.hop_mean[i] = s.pair[i] = s.a2a[i] = s.far[i] = splat(0.0f);
      }
    }
    // the other in-segment edges (after the chain edges: their table rows are many, and
    // would evict the chain rows fetched by layers())
    for (int i : nonchain) {
      const int es = e_src[i], ed = e_dst[i];
      const vi intra = s.intra[i], ps = s.ps[i], pd = s.pd[i];
      float hm[W], pr[W], a2[W], fa[W];
      for (int j = 0; j < W; ++j) {
        hm[j] = pr[j] = a2[j] = fa[j] = 0.0f;
        if (!intra[j]) continue;
        scalar.nonchain_geometry(s.key[es][j], s.key[ed][j], ps[j] != 0, pd[j] != 0, hm[j], pr[j], a2[j], fa[j]);
      }
      std::memcpy(&s.hop_mean[i], hm, sizeof(vf));
      std::memcpy(&s.pair[i], pr, sizeof(vf));
      std::memcpy(&s.a2a[i], a2, sizeof(vf));
      std::memcpy(&s.far[i], fa, sizeof(vf));
    }
  }

  // combine.h pick4, as selects
  static vf pick4(vi c, vf a, vf b, vf cc, vf d) { return c == 0 ? a : (c == 1 ? b : (c == 2 ? cc : d)); }
  static vi pick4i(vi c, int a, int b, int cc, int d) {
    return c == 0 ? splati(a) : (c == 1 ? splati(b) : (c == 2 ? splati(cc) : splati(d)));
  }

  // traffic.traffic
  void traffic() {
    const int L = ma.L, E = ma.E;
    const float g = (float)(ha.uh * ha.uw);
    const int32_t *e_src = ma.ei + EI_SRC * E, *e_dst = ma.ei + EI_DST * E;
    const float* eb_ = ma.e_bytes;
    const vf zero = splat(0.0f), one = splat(1.0f);
    for (int i = 0; i < E; ++i) {
      const int ed = e_dst[i], es = std::max(e_src[i], 0);
      const float eb = eb_[i];
      const vf n_d = s.n_f[ed];
      const vi intra = s.intra[i], ps = s.ps[i], pd = s.pd[i], bcast = s.bcast[i];
      const vi pe_ = s.part[ed];
      const vi to_all = pe_ == CHANNEL;
      const vf recv = sel(to_all, eb * n_d, splat(eb));
      // intra
      const vf bh1 = eb * s.hop_mean[i];
      const vf bh23 = eb * s.pair[i] * sel(to_all, n_d, one);
      const vf inter_bh = sel(pd & ps, bh1, bh23);
      const vf mesh_in = inter_bh + sel(bcast, recv * (g - 1.0f), zero);
      const vf deliv_in = sel(bcast, recv * g, recv);
      // between segments
      const vf kd = gather(ha.key_scalars,
                           s.key[ed] * N_KS + pick4i(pe_, KS_WIRE_UNI_C, KS_WIRE_ALL, KS_WIRE_UNIT_C, KS_WIRE_UNIT_U));
      const vf dist_x = eb * kd;
      const vf deliv_x = eb * pick4(pe_, one, s.P_f[ed], splat(g), splat(g));
      s.e_mesh_bh[i] = sel(intra, mesh_in, zero);
      s.e_dist_bh[i] = sel(intra, zero, dist_x);
      s.e_deliv[i] = sel(intra, deliv_in, deliv_x);
      const vf cpu_d = s.cpu[ed], cpu_s = s.cpu[es];
      s.per_unit_in[i] = sel(pd, eb * cpu_d, sel(to_all, splat(eb), eb / n_d));
      const vi a2a = intra & ~(ps & pd);
      s.a2a_link[i] = sel(a2a, eb * sel(to_all, n_d, one) * s.a2a[i], zero);
      const vf src_unit = sel(ps, eb * cpu_s, eb / s.n_f[es]);
      s.out_unit[i] = sel(intra, sel(to_all, src_unit * n_d, src_unit), zero);
      const vi k_e = s.k[ed] - s.k[es];
      s.skip_b[i] = sel(intra & (k_e > 1), (tof(k_e - 1) + s.lag[i]) * eb / s.n_tiles[ed], zero) / s.P_f[ed];
    }
    const float *out_bytes = ma.f(LF_OUT_BYTES), *K = ma.f(LF_K), *Wl = ma.f(LF_W);
    const float *Xo = ma.f(LF_XO), *in_full = ma.f(LF_IN_FULL_BYTES), *in_row = ma.f(LF_IN_ROW_BYTES);
    const float* out_elems = ma.f(LF_OUT_ELEMS);
    const int32_t *t_last = ma.i(LI_T_LAST), *net_out = ma.i(LI_NET_OUT), *rows_full = ma.i(LI_ROWS_FULL);
    const float sram = hw(HS_SRAM), db = hw(HS_DB), psum_b = hw(HS_PSUM_B);
    for (int l = 0; l < L; ++l) {
      const vi part = s.part[l];
      const vi pos_split = part != CHANNEL, red = part == REDUCTION;
      const vi to_glb = (t_last[l] > s.z[l]) | splati(net_out[l] ? -1 : 0);
      s.to_glb[l] = to_glb;
      const vf wire = gather(ha.key_scalars, s.key[l] * N_KS + seli(pos_split, splati(KS_WIRE_UNI_C), splati(KS_WIRE_UNI_U)));
      s.out_bh[l] = sel(to_glb, out_bytes[l] * wire, zero);
      s.glb_in_l[l] = by_dst(l, [&](int e) { return sel(s.intra[e], zero, splat(eb_[e])); });
      s.glb_out_l[l] = sel(to_glb, splat(out_bytes[l]), zero);
      const float Kf = K[l], Wf = Wl[l];
      const vf n_f = s.n_f[l], P_f = s.P_f[l];
      const float kg = pipeorgan::ceil_ratio(Kf / g);
      const vf w_pe = pick4(part, splat(Wf), ceil_ratio(Kf / P_f) * Wf / Kf, splat(kg * Wf / Kf), kg * Wf / Kf / n_f);
      const vf I = rows_full[l] ? splat(in_full[l]) : s.h[l] * in_row[l];
      const vf I_pe = pick4(part, I / P_f, I, I / n_f, I / n_f);
      const vf O_pe = sel(red, s.r[l] * Xo[l] * kg * psum_b, s.r[l] * Kf * Xo[l] * db / P_f);
      const vf need = w_pe + 2.0f * (I_pe + O_pe) + by_dst(l, [&](int e) { return s.skip_b[e]; });
      const vi over = need > sram;
      const vi restream = over & (need - w_pe <= sram);
      s.restream[l] = restream;
      s.no_fit[l] = over & ~restream;
      const vf wmult = sel(restream, s.n_tiles[l], one);
      const vf w_bytes = Wf * wmult;
      s.w_bytes[l] = w_bytes;
      const vf wk = gather(ha.key_scalars, s.key[l] * N_KS + pick4i(part, KS_WIRE_ALL, KS_WIRE_UNI_U, KS_WIRE_HYB, KS_WIRE_UNI_U));
      s.w_bh[l] = w_bytes * wk;
      s.w_deliv[l] = w_bytes * pick4(part, P_f, one, n_f, one);
      const vf ps_bytes = sel(red & (s.n[l] > 1), splat(out_elems[l] * psum_b), zero);
      s.ps_bytes[l] = ps_bytes;
      s.ps_bh[l] = ps_bytes * n_f * ks(l, KS_PAIR_PS);
      s.ps_deliv[l] = ps_bytes * (n_f - 1.0f);
    }
  }

  // traffic.links
  void links() {
    const int L = ma.L, E = ma.E;
    const float uh_ = (float)ha.uh, router = hw(HS_ROUTER);
    const Div uh(uh_), lanes(ha.lanes), link_bw(hw(HS_LINK_BW));
    const int32_t* e_dst = ma.ei + EI_DST * E;
    const vf zero = splat(0.0f);
    for (int l = 0; l < L; ++l) {
      const vf intra_link =
          by_dst(l, [&](int e) { return sel(s.intra[e] & s.bcast[e], s.per_unit_in[e], zero); }) * (uh_ - 1.0f) / uh;
      const vf edge_link = by_dst(l, [&](int e) { return sel(s.intra[e], s.per_unit_in[e], zero); }) / lanes;
      const vf src_link = vmax(by_src(l, [&](int e) { return s.out_unit[e]; }) / lanes,
                               by_dst(l, [&](int e) { return s.a2a_link[e]; }));
      const vf n_f = s.n_f[l];
      const vi bn = s.n[l] * 3;
      const vf ps_unit = s.ps_bytes[l] * vmax((n_f - 1.0f) * s.cpu[l], 1.0f - gather(ha.by_n + 2, bn)) / lanes;
      const vf ps_link = vmax(s.ps_bytes[l] * ks(l, KS_A2A_PS), ps_unit);
      s.ps_link[l] = ps_link;
      s.x_ps[l] = sel(s.ps_bytes[l] > 0, ps_link / s.n_tiles[l] / link_bw + router * ks(l, KS_EXT_PS), zero);
      s.col[l] = vmax(vmax(intra_link, edge_link), vmax(src_link, ps_link));
    }
    win_max(s.seg_link.data(), [&](int j) { return s.col[j]; });
    from_first(s.seg_link.data());
    for (int i = 0; i < E; ++i) {
      const int ed = e_dst[i];
      const vf x = vmax(vmax(s.per_unit_in[i], s.out_unit[i]) / lanes,
                        sel(s.bcast[i], s.per_unit_in[i] * (uh_ - 1.0f) / uh, zero));
      s.x_edge[i] = x / s.n_tiles[ed] / link_bw + router * s.far[i];
    }
  }

  // timing.memory
  void memory() {
    const int L = ma.L, E = ma.E;
    const vf zero = splat(0.0f);
    const vf sum_cross = net_sum(E, [&](int i) { return sel(s.intra[i], zero, splat(ma.e_bytes[i])); });
    const vf sum_w = net_sum(L, [&](int l) { return s.w_bytes[l]; });
    const vf sum_out = net_sum(L, [&](int l) { return s.glb_out_l[l]; });
    const vf glb_reads = sum_cross + sum_w;
    const vf glb_writes = sum_out + ma.ms[MS_NET_IN_TOTAL] + ma.ms[MS_W_TOTAL];
    const float *Wl = ma.f(LF_W), *t_bytes = ma.f(LF_T_BYTES), *alive0 = ma.f(LF_ALIVE0);
    const int32_t* t_last = ma.i(LI_T_LAST);
    vf* tb_out = s.tmp.data();
    vf* w_restream = s.live.data();
    windows<3, 0>({s.W_s.data(), tb_out, w_restream}, [&](int j, vf* x) {
      x[0] = splat(Wl[j]);
      x[1] = sel(t_last[j] > s.z[j], splat(t_bytes[j]), zero);
      x[2] = sel(s.restream[j], splat(Wl[j]), zero);
    });
    vf live_max = splat(-INFINITY);
    vf W_next = zero;  // the next segment's W_s, from the last layer down
    for (int l = L - 1; l >= 0; --l) {
      if (l + 1 < L) W_next = s.end[l] ? s.W_s[l + 1] : W_next;
      const vf live_own = alive0[l] + tb_out[l] + w_restream[l];
      s.live[l] = live_own + W_next;
    }
    for (int l = 0; l < L; ++l) live_max = is_f(l) ? vmax(live_max, s.live[l]) : live_max;
    spill = 2.0f * vmax(live_max - hw(HS_GLB), zero);
    glb_bytes = glb_reads + glb_writes;
    dram_bytes = ma.ms[MS_W_TOTAL] + ma.ms[MS_NET_IN_TOTAL] + ma.ms[MS_NET_OUT_TOTAL] + spill;
  }

  // timing.compute_cycles
  vf compute_cycles(int l) const {
    const float g = (float)(ha.uh * ha.uw);
    const float Kf = ma.f(LF_K)[l], m = ma.f(LF_M)[l];
    const vf n_f = s.n_f[l], P_f = s.P_f[l];
    const float kg = pipeorgan::ceil_ratio(Kf / g);
    const vf Q = s.r[l] * ma.f(LF_XO)[l];
    const float m_red = std::ceil(m - 1e-3f);
    const vi part = s.part[l];
    const vf c0 = ceil_ratio(Q / P_f) * Kf * m;
    const vf c1 = ceil_ratio(Kf / P_f) * Q * m;
    const vf c2 = ceil_ratio(Q / n_f) * kg * m;
    const vf c3 = (ceil_ratio(m_red / n_f) * Q + (n_f - 1.0f) * ceil_ratio(Q / n_f)) * kg;
    const vf cyc = pick4(part, c0, c1, c2, c3);
    return ceil_ratio(cyc / macs);
  }

  // timing.segment_latency
  void segment_latency() {
    const int L = ma.L;
    const Div glb_bw(hw(HS_GLB_BW)), dist_bw(hw(HS_DIST_BW)), dram_bw(hw(HS_DRAM_BW));
    const Div link_bw(hw(HS_LINK_BW)), glb_dist(std::min(hw(HS_GLB_BW), hw(HS_DIST_BW)));
    const float router = hw(HS_ROUTER);
    const float *Wl = ma.f(LF_W), *nif = ma.f(LF_NET_IN_FIRST), *out_bytes = ma.f(LF_OUT_BYTES);
    const int32_t *net_out = ma.i(LI_NET_OUT), *rows_full = ma.i(LI_ROWS_FULL), *net_first = ma.i(LI_NET_FIRST);
    const vf zero = splat(0.0f);
    auto nob = [&](int j) { return net_out[j] ? out_bytes[j] : 0.0f; };
    vf* port_far = s.tmp.data();
    for (int l = 0; l < L; ++l) {
      s.cyc[l] = compute_cycles(l);
      s.glb_fed[l] = by_dst(l, [&](int e) { return sel(s.intra[e], zero, splat(1.0f)); }) > 0;
      port_far[l] = ks(l, KS_PORT_FAR);
    }
    auto& w = s.win;
    vf* mx = s.F0.data();
    windows<9, 1u << 8>({w[0].data(), w[1].data(), w[2].data(), w[3].data(), w[4].data(), w[5].data(),
                         w[6].data(), w[7].data(), mx},
                        [&](int j, vf* x) {
                          x[0] = s.glb_in_l[j] + sel(s.restream[j], Wl[j] * (s.n_tiles[j] - 1.0f), zero);
                          x[1] = splat(nif[j]);
                          x[2] = s.glb_out_l[j];
                          x[3] = splat(nif[j] + nob(j));
                          x[4] = splat(nob(j));
                          x[5] = s.glb_in_l[j] + s.glb_out_l[j] + Wl[j] + s.w_bytes[j] + nif[j];
                          x[6] = splat(Wl[j] + nif[j] + nob(j));
                          x[7] = s.glb_in_l[j] + s.w_bytes[j];
                          x[8] = sel(s.glb_fed[j], port_far[j], zero);
                        });
    // per segment (at its first layer, then to its other layers): t_in, sigma, t_out's
    // segment part
    vf* t_in = s.fill_F.data();
    vf* t_out_s = s.fill_E.data();
    for (int l = 0; l < L; ++l) {
      const vf nt = s.n_tiles[l];
      const vf g_in = w[0][l], g_net = w[1][l], g_out = w[2][l], d_pipe = w[3][l], d_out = w[4][l];
      t_in[l] = vmax(vmax((g_in + g_net) / glb_bw, g_in / dist_bw), g_net / dram_bw) / nt + router * mx[l];
      s.sigma[l] = vmax(vmax(s.seg_link[l] / link_bw, (g_in + g_net + g_out) / glb_bw),
                        vmax(vmax(g_in, g_out) / dist_bw, d_pipe / dram_bw)) / nt;
      t_out_s[l] = vmax(vmax(g_out / glb_bw, g_out / dist_bw), d_out / dram_bw) / nt;
    }
    from_first(t_in);
    from_first(s.sigma.data());
    from_first(t_out_s);
    for (int l = 0; l < L; ++l) {
      const vf nt = s.n_tiles[l];
      s.t_out[l] = t_out_s[l] + router * port_far[l];
      const vf tin = sel(s.glb_fed[l], t_in[l], zero);
      s.F0[l] = tin;
      s.c_pace[l] = vmax(vmax(s.cyc[l], tin), s.ps_link[l] / nt / link_bw);
      s.c_done[l] = s.cyc[l] + s.x_ps[l];
    }
    // fill
    for (int l = 0; l < L; ++l) {
      const int32_t* row = ma.in_eidx + (int64_t)l * ma.D_in;
      vf prev = zero, rin = zero, ein = zero;
      for (int j = 0; j < ma.D_in; ++j) {
        const int e = row[j];
        if (e < 0) continue;
        const int sr = std::max(ma.ei[EI_SRC * ma.E + e], 0);
        const vi in = s.intra[e];
        prev = sel(in, vmax(prev, s.fill_F[sr] + s.lag[e] * s.fill_rho[sr] + s.x_edge[e]), prev);
        rin = sel(in, vmax(rin, s.fill_rho[sr]), rin);
        ein = sel(in, vmax(ein, s.fill_E[sr] + s.x_edge[e]), ein);
      }
      s.fill_rho[l] = rows_full[l] ? s.c_pace[l] : vmax(s.c_pace[l], rin);
      const vf F = vmax(prev, s.F0[l]) + s.c_done[l];
      s.fill_F[l] = F;
      s.fill_E[l] = vmax(F + (s.n_tiles[l] - 1.0f) * s.c_pace[l], ein + s.c_done[l]);
    }
    vf* m0 = s.tmp.data();  // port_far no longer read
    vf* m1 = s.F0.data();
    windows<2, 3>({m0, m1}, [&](int j, vf* x) {
      x[0] = s.fill_E[j] + sel(s.to_glb[j], s.t_out[j], zero);
      x[1] = s.fill_F[j];
    });
    for (int l = 0; l < L; ++l) {
      const vf nt = s.n_tiles[l];
      const vf pipe = vmax(m0[l], m1[l] + (nt - 1.0f) * s.sigma[l]);
      const vf W_s = s.W_s[l];
      vf preload = W_s / glb_dist;
      if (net_first[l]) preload = vmax(preload, W_s / dram_bw);
      const vf b_glb = w[5][l], b_dram = w[6][l], b_dist = w[7][l], g_out = w[2][l];
      const vf bound = vmax(vmax(b_glb / glb_bw, b_dram / dram_bw),
                            vmax(vmax(b_dist, g_out) / dist_bw, s.seg_link[l] / link_bw));
      s.seg_lat[l] = vmax(preload + pipe, bound);
    }
  }

  // energy.energy
  void energy() {
    const int L = ma.L, E = ma.E;
    const vf e_mesh = net_sum(E, [&](int i) { return s.e_mesh_bh[i]; });
    const vf e_dist = net_sum(E, [&](int i) { return s.e_dist_bh[i]; });
    const vf e_deliv = net_sum(E, [&](int i) { return s.e_deliv[i]; });
    const vf ps_bh = net_sum(L, [&](int l) { return s.ps_bh[l]; });
    const vf out_bh = net_sum(L, [&](int l) { return s.out_bh[l]; });
    const vf w_bh = net_sum(L, [&](int l) { return s.w_bh[l]; });
    const vf w_deliv = net_sum(L, [&](int l) { return s.w_deliv[l]; });
    const vf ps_deliv = net_sum(L, [&](int l) { return s.ps_deliv[l]; });
    const vf mesh_bh = e_mesh + ps_bh;
    dist_bh = e_dist + out_bh + w_bh;
    byte_hops = mesh_bh + dist_bh;
    const vf delivered = e_deliv + w_deliv + ps_deliv;
    const float ops_total = ma.ms[MS_OPS_TOTAL];
    mac_pj = splat(ops_total * hw(HS_E_MAC));
    pe_sram_pj = (ops_total * hw(HS_SRAM_PER_MAC) + delivered) * hw(HS_E_SRAM);
    noc_pj = byte_hops * hw(HS_E_NOC);
    glb_pj = glb_bytes * hw(HS_E_GLB);
    dram_pj = dram_bytes * hw(HS_E_DRAM);
  }

  // energy.per_layer
  vf energy_per_layer(int l) const {
    const float *ops = ma.f(LF_OPS), *Wl = ma.f(LF_W), *nif = ma.f(LF_NET_IN_FIRST), *ob = ma.f(LF_OUT_BYTES);
    const float nob = ma.i(LI_NET_OUT)[l] ? ob[l] : 0.0f;
    const float e_mac = hw(HS_E_MAC), spm = hw(HS_SRAM_PER_MAC), e_sram = hw(HS_E_SRAM);
    const float e_noc = hw(HS_E_NOC), e_glb = hw(HS_E_GLB), e_dram = hw(HS_E_DRAM);
    return ops[l] * (e_mac + spm * e_sram)
           + e_sram * (by_dst(l, [&](int e) { return s.e_deliv[e]; }) + s.w_deliv[l] + s.ps_deliv[l])
           + e_noc * (by_dst(l, [&](int e) { return s.e_mesh_bh[e] + s.e_dist_bh[e]; }) + s.out_bh[l] + s.w_bh[l] + s.ps_bh[l])
           + e_glb * (s.glb_in_l[l] + s.glb_out_l[l] + Wl[l] + s.w_bytes[l] + nif[l])
           + e_dram * (Wl[l] + nob + nif[l]);
  }

  // cost/__init__.py combine
  void reductions(CostRow* out) {
    const int L = ma.L, D = ha.max_depth;
    const float glb = hw(HS_GLB), e_dram = hw(HS_E_DRAM);
    const Div dram_bw(hw(HS_DRAM_BW));
    const int32_t* red_ok = ma.i(LI_RED_OK);
    const vf zero = splat(0.0f);
    const vf lat = net_sum(L, [&](int l) { return sel(is_f(l), s.seg_lat[l], zero); });
    vf max_link = splat(-INFINITY);
    vi any_deep = splati(0), any_nofit = splati(0), any_badred = splati(0);
    for (int l = 0; l < L; ++l) {
      s.col[l] = energy_per_layer(l);
      any_nofit |= s.no_fit[l];
      if (!red_ok[l]) any_badred |= s.part[l] == REDUCTION;
      max_link = vmax(max_link, s.seg_link[l]);
    }
    vf* bad = s.tmp.data();
    vf* esum = s.F0.data();
    windows<2, 0>({bad, esum}, [&](int j, vf* x) {
      const vi too_deep = s.depth[j] > D;
      vi b = s.no_fit[j] | too_deep;
      if (!red_ok[j]) b |= s.part[j] == REDUCTION;
      x[0] = b2f(b);
      x[1] = s.col[j];
    });
    // per layer outputs, then written out per lane
    vf* seg_latency = s.fill_F.data();
    vf* seg_energy = s.fill_E.data();
    vi* seg_feasible = s.glb_fed.data();
    for (int l = 0; l < L; ++l) {
      const vi f = is_f(l);
      const vi too_deep = s.depth[l] > D;
      any_deep |= f & too_deep;
      const vf spill_s = 2.0f * vmax(s.live[l] - glb, zero);
      seg_latency[l] = sel(f, s.seg_lat[l] + spill_s / dram_bw, zero);
      seg_energy[l] = sel(f, esum[l] + spill_s * e_dram, zero);
      seg_feasible[l] = ~f | ((bad[l] == 0.0f) & ~too_deep);
    }
    const vf latency = lat + spill / dram_bw;
    const vf energy = mac_pj + pe_sram_pj + noc_pj + glb_pj + dram_pj;
    const vf edp = energy * latency;
    const vi reason = seli(any_deep, splati(1), seli(any_nofit, splati(2), seli(any_badred, splati(3), splati(0))));
    for (int j = 0; j < W; ++j) {
      CostRow& o = out[j];
      o.latency_cycles = latency[j];
      o.energy_pj = energy[j];
      o.energy_mac_pj = mac_pj[j];
      o.energy_pe_sram_pj = pe_sram_pj[j];
      o.energy_noc_pj = noc_pj[j];
      o.energy_glb_pj = glb_pj[j];
      o.energy_dram_pj = dram_pj[j];
      o.edp = edp[j];
      o.reason = reason[j];
      o.feasible = reason[j] == 0;
      o.max_link_bytes = max_link[j];
      o.byte_hops = byte_hops[j];
      o.dist_byte_hops = dist_bh[j];
      o.glb_bytes = glb_bytes[j];
      o.dram_bytes = dram_bytes[j];
    }
#ifdef PIPEORGAN_TRANSPOSE
    // the per-layer rows: 16 layers of the 16 lanes at a time, transposed in registers
    for (int l0 = 0; l0 < L; l0 += 16) {
      const int cnt = std::min(16, L - l0);
      const __mmask16 m = (__mmask16)((1u << cnt) - 1);
      __m512i r[16];
      for (int c = 0; c < 16; ++c) r[c] = (__m512i)seg_latency[l0 + std::min(c, cnt - 1)];
      transpose16(r);
      for (int j = 0; j < 16; ++j) _mm512_mask_storeu_ps(out[j].seg_latency + l0, m, (__m512)r[j]);
      for (int c = 0; c < 16; ++c) r[c] = (__m512i)seg_energy[l0 + std::min(c, cnt - 1)];
      transpose16(r);
      for (int j = 0; j < 16; ++j) _mm512_mask_storeu_ps(out[j].seg_energy + l0, m, (__m512)r[j]);
      for (int c = 0; c < 16; ++c) r[c] = (__m512i)(seg_feasible[l0 + std::min(c, cnt - 1)] & 1);
      transpose16(r);
      for (int j = 0; j < 16; ++j)
        _mm_mask_storeu_epi8(out[j].seg_feasible + l0, m, _mm512_cvtepi32_epi8(r[j]));
    }
#else
    // the per-layer rows: W consecutive rows of [B, L] outputs (ffi.cc) are written as
    // vectors gathered from the [L][W] scratch, else one element at a time
    bool consecutive = true;
    for (int j = 1; j < W; ++j)
      consecutive &= out[j].seg_latency == out[0].seg_latency + (int64_t)j * L &&
                     out[j].seg_energy == out[0].seg_energy + (int64_t)j * L &&
                     out[j].seg_feasible == out[0].seg_feasible + (int64_t)j * L;
    if (consecutive) {
      if ((int)out_idx.size() != L) {
        out_idx.resize(L);
        for (int m = 0; m < L; ++m)
          for (int q = 0; q < W; ++q) {
            const int k = m * W + q;  // output element k: lane k / L, layer k % L
            out_idx[m][q] = (k % L) * W + k / L;
          }
      }
      typedef int8_t vb __attribute__((vector_size(W)));
      const float *lat_ = reinterpret_cast<const float*>(seg_latency), *en_ = reinterpret_cast<const float*>(seg_energy);
      const int32_t* fe_ = reinterpret_cast<const int32_t*>(seg_feasible);
      for (int m = 0; m < L; ++m) {
        const vf a = gather(lat_, out_idx[m]), b = gather(en_, out_idx[m]);
        const vb c = __builtin_convertvector(gatheri(fe_, out_idx[m]) & 1, vb);
        std::memcpy(out[0].seg_latency + (int64_t)m * W, &a, sizeof(a));
        std::memcpy(out[0].seg_energy + (int64_t)m * W, &b, sizeof(b));
        std::memcpy(out[0].seg_feasible + (int64_t)m * W, &c, sizeof(c));
      }
    } else {
      for (int j = 0; j < W; ++j)
        for (int l = 0; l < L; ++l) {
          out[j].seg_latency[l] = seg_latency[l][j];
          out[j].seg_energy[l] = seg_energy[l][j];
          out[j].seg_feasible[l] = seg_feasible[l][j] != 0;
        }
    }
#endif
  }
  std::vector<vi>& out_idx = s.out_idx;  // reductions: the output gather indices
};

}  // namespace lanes
}  // namespace pipeorgan
#endif
