// The XLA FFI handler: a batch of placements scored by the combine, the batch split into
// chunks that the caller's thread and this library's helper threads take in turn. A chunk's
// placements go through the lane-parallel combine (combine_lanes.h) a vector's worth at a time
// (16 with AVX-512, 8 with AVX2; bitwise the scalar combine's results), the rest of the chunk
// (or all of it without AVX2, or with PIPEORGAN_KERNEL_SCALAR set) through the scalar combine
// (combine.h).
// Operands and attributes are listed in pipeorgan_jax/cost/kernel.py (`_call`), which packs them.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "combine.h"
#include "combine_lanes.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace pipeorgan {
namespace {

constexpr int N_PLACEMENT = 5;  // seg_end, gran, org, share, part
constexpr int N_OPERANDS = 26;
constexpr int N_SCALAR_OUT = 15;  // Cost's per-placement fields, then 3 per-layer ones
constexpr int CHUNK = 128;  // placements per task grab at most (a multiple of the lanes)
constexpr int MIN_CHUNK = 32;  // ... and at least, where the batch is small (a multiple too)

template <typename T>
const T* data(const ffi::AnyBuffer& b) { return static_cast<const T*>(b.untyped_data()); }

struct Job {
  ModelView ma;
  HwView ha;
  std::vector<int32_t> hop_x, hop_y;
  int64_t B;
  const bool* seg_end;
  const int32_t *gran, *org, *share, *part;
  void* out[N_SCALAR_OUT + 3];
  std::atomic<int64_t> next{0}, done{0};
  int64_t n_chunks, chunk = CHUNK;

  bool use_lanes = false;  // the lane-parallel combine (combine_lanes.h) for whole groups

  PlacementRow row(int64_t b) const {
    const int64_t o = b * ma.L;
    return PlacementRow{seg_end + o, gran + o, org + o, share + o, part + o};
  }
  CostRow cost_row(int64_t b) const {
    const int64_t o = b * ma.L;
    CostRow r{};
    r.seg_latency = static_cast<float*>(out[N_SCALAR_OUT]) + o;
    r.seg_energy = static_cast<float*>(out[N_SCALAR_OUT + 1]) + o;
    r.seg_feasible = static_cast<bool*>(out[N_SCALAR_OUT + 2]) + o;
    return r;
  }
  void store(int64_t b, const CostRow& r) {
    const float f[] = {r.latency_cycles, r.energy_pj, r.energy_mac_pj, r.energy_pe_sram_pj,
                       r.energy_noc_pj, r.energy_glb_pj, r.energy_dram_pj, r.edp};
    for (int i = 0; i < 8; ++i) static_cast<float*>(out[i])[b] = f[i];
    static_cast<bool*>(out[8])[b] = r.feasible;
    static_cast<int32_t*>(out[9])[b] = r.reason;
    const float g[] = {r.max_link_bytes, r.byte_hops, r.dist_byte_hops, r.glb_bytes, r.dram_bytes};
    for (int i = 0; i < 5; ++i) static_cast<float*>(out[10 + i])[b] = g[i];
  }

  void run_chunk(int64_t c, Scratch& scratch) {
    Combine comb(ma, ha, scratch);
    int64_t b = c * chunk;
    const int64_t b1 = std::min(B, (c + 1) * chunk);
#ifdef PIPEORGAN_LANES
    if (use_lanes && b + lanes::W <= b1) {
      thread_local lanes::Scratch lscratch;
      lanes::Combine lcomb(ma, ha, lscratch, comb);
      for (; b + lanes::W <= b1; b += lanes::W) {
        PlacementRow p[lanes::W];
        CostRow r[lanes::W];
        for (int j = 0; j < lanes::W; ++j) {
          p[j] = row(b + j);
          r[j] = cost_row(b + j);
        }
        // the next group's rows of the [B, L] arrays, fetched during this one (not its
        // outputs: measured slower)
        if (b + 2 * lanes::W <= b1) {
          const int64_t o = (b + lanes::W) * ma.L, n = (int64_t)lanes::W * ma.L;
          for (const int32_t* q : {gran, org, share, part}) lcomb.prefetch_next(q + o, n * 4);
          lcomb.prefetch_next(seg_end + o, n);
        }
        lcomb.run(p, r);
        for (int j = 0; j < lanes::W; ++j) store(b + j, r[j]);
      }
    }
#endif
    for (; b < b1; ++b) {
      PlacementRow p = row(b);
      CostRow r = cost_row(b);
      comb.run(p, r);
      store(b, r);
    }
  }
  // Take chunks until none is left.
  void work() {
    thread_local Scratch scratch;
    for (int64_t c; (c = next.fetch_add(1)) < n_chunks;) {
      run_chunk(c, scratch);
      done.fetch_add(1, std::memory_order_release);
    }
  }
};

// Helper threads of this library, started on first use and kept: they wait for a job, take
// its chunks with the calling thread, and wait again. (XLA:CPU's intra-op pool runs its
// tasks after the caller has taken every chunk, so it is not used.)
class Helpers {
 public:
  explicit Helpers(int n) {
    for (int i = 0; i < n; ++i) std::thread([this] { loop(); }).detach();
    count = n;
  }
  void start(std::shared_ptr<Job> j) {
    {
      std::lock_guard<std::mutex> lk(m);
      job = std::move(j);
      ++generation;
    }
    cv.notify_all();
  }
  int count = 0;

 private:
  void loop() {
    uint64_t seen = 0;
    for (;;) {
      std::shared_ptr<Job> j;
      {
        std::unique_lock<std::mutex> lk(m);
        cv.wait(lk, [&] { return generation != seen; });
        seen = generation;
        j = job;
      }
      if (j) j->work();
    }
  }
  std::mutex m;
  std::condition_variable cv;
  std::shared_ptr<Job> job;
  uint64_t generation = 0;
};

Helpers& helpers() {
  static Helpers* h = [] {  // never destroyed: its threads outlive static destruction
    int n = static_cast<int>(std::thread::hardware_concurrency()) - 1;
    if (const char* e = std::getenv("PIPEORGAN_KERNEL_HELPERS")) n = std::atoi(e);  // measurements
    return new Helpers(std::max(n, 0));
  }();
  return *h;
}

ffi::Error Score(ffi::RemainingArgs args, ffi::RemainingRets rets,
                 int64_t U, int64_t GH, int64_t GW, int64_t uh, int64_t uw, int64_t max_depth,
                 int64_t topology, int64_t express_k, float lanes, float lanes_x, float lanes_y) {
  if (args.size() != N_OPERANDS || rets.size() != N_SCALAR_OUT + 3)
    return ffi::Error::InvalidArgument("pipeorgan_score: wrong operand or result count");
  std::vector<ffi::AnyBuffer> a;
  for (int i = 0; i < N_OPERANDS; ++i) {
    auto b = args.get<ffi::AnyBuffer>(i);
    if (b.has_error()) return b.error();
    a.push_back(*b);
  }
  auto job = std::make_shared<Job>();
  auto pd = a[0].dimensions();
  if (pd.size() != 2) return ffi::Error::InvalidArgument("pipeorgan_score: placements must be [B, L]");
  job->B = pd[0];
  const int L = static_cast<int>(pd[1]);
  const int E = static_cast<int>(a[8].element_count());
  auto din = a[9].dimensions(), dout = a[10].dimensions();
  job->ma = ModelView{L, E, static_cast<int>(din[1]), static_cast<int>(dout[1]),
                      data<float>(a[5]), data<int32_t>(a[6]), data<int32_t>(a[7]), data<float>(a[8]),
                      data<int32_t>(a[9]), data<int32_t>(a[10]), data<float>(a[11])};
  const int chunk_bytes = static_cast<int>(ffi::ByteWidth(a[19].element_type()));
  job->ha = HwView{(int)U, (int)GH, (int)GW, (int)uh, (int)uw, (int)max_depth, (int)topology, (int)express_k,
                   lanes, lanes_x, lanes_y,
                   data<float>(a[12]), data<float>(a[13]), data<float>(a[14]), data<float>(a[15]),
                   data<float>(a[16]), data<float>(a[17]), data<int32_t>(a[18]),
                   a[19].untyped_data(), a[20].untyped_data(), chunk_bytes,
                   data<int32_t>(a[21]), data<float>(a[22]), data<float>(a[23]), data<float>(a[24]),
                   data<float>(a[25])};
  // whole hop counts per unit offset, from the same unit_hops the combine uses
  job->hop_x.resize(GW);
  job->hop_y.resize(GH);
  job->ha.hop_x = job->hop_x.data();
  job->ha.hop_y = job->hop_y.data();
  for (int d = 0; d < GW; ++d) job->hop_x[d] = static_cast<int32_t>(Combine::unit_hops(job->ha, (float)d, true));
  for (int d = 0; d < GH; ++d) job->hop_y[d] = static_cast<int32_t>(Combine::unit_hops(job->ha, (float)d, false));
  job->seg_end = data<bool>(a[0]);
  job->gran = data<int32_t>(a[1]);
  job->org = data<int32_t>(a[2]);
  job->share = data<int32_t>(a[3]);
  job->part = data<int32_t>(a[4]);
  for (int i = 0; i < N_SCALAR_OUT + 3; ++i) {
    auto r = rets.get<ffi::AnyBuffer>(i);
    if (r.has_error()) return r.error();
    job->out[i] = (*r)->untyped_data();
  }
  // the lane-parallel combine indexes its tables with 32-bit gathers
  const int64_t n_keys = a[13].element_count() / N_KS, chain_rows = a[22].element_count() / N_CHAIN;
  job->use_lanes = !std::getenv("PIPEORGAN_KERNEL_SCALAR") && n_keys * N_KS < (int64_t(1) << 31) &&
                   chain_rows * N_CHAIN < (int64_t(1) << 31) &&
                   a[21].element_count() < (int64_t(1) << 31);
  // chunks of CHUNK placements, smaller where that leaves a thread with fewer than 2
  const int64_t threads = helpers().count + 1;
  int64_t per = (job->B + 2 * threads - 1) / (2 * threads);
  per = (per + MIN_CHUNK - 1) / MIN_CHUNK * MIN_CHUNK;
  job->chunk = std::max<int64_t>(MIN_CHUNK, std::min<int64_t>(CHUNK, per));
  job->n_chunks = (job->B + job->chunk - 1) / job->chunk;
  // the helpers share the chunks with this thread; one that wakes after the last chunk was
  // taken finds nothing to do (the job outlives it through the shared_ptr)
  if (job->n_chunks > 1 && helpers().count > 0) helpers().start(job);
  job->work();
  while (job->done.load(std::memory_order_acquire) < job->n_chunks) std::this_thread::yield();
  return ffi::Error::Success();
}

}  // namespace
}  // namespace pipeorgan

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    PipeorganScore, pipeorgan::Score,
    ffi::Ffi::Bind()
        .RemainingArgs()
        .RemainingRets()
        .Attr<int64_t>("U")
        .Attr<int64_t>("GH")
        .Attr<int64_t>("GW")
        .Attr<int64_t>("uh")
        .Attr<int64_t>("uw")
        .Attr<int64_t>("max_depth")
        .Attr<int64_t>("topology")
        .Attr<int64_t>("express_k")
        .Attr<float>("lanes")
        .Attr<float>("lanes_x")
        .Attr<float>("lanes_y"));

// The ABI of the operands above; kernel.py refuses a library whose number differs.
extern "C" int pipeorgan_kernel_abi() { return 1; }
