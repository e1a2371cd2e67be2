// GEMM driver: kernel selection, work split over the thread pool, and the GotoBLAS/BLIS loop nest
// around the per-ISA packers and microkernels (see gemm.h for the packed layout).
#include "gemm.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <sys/mman.h>

#include "threadpool.h"

namespace graft {
namespace gemm {
namespace {

std::atomic<int> levelCap{static_cast<int>(Level::Amx)};

// Per-thread packing buffers, grown on demand and kept for the thread's lifetime (pool threads are
// persistent, so steady-state GEMMs allocate nothing).
struct Buffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  ~Buffer() { std::free(ptr); }
  void* get(size_t want) {
    if (want > bytes) {
      std::free(ptr);
      // Blocks of 512 KiB and more go on 2 MiB pages where the kernel allows (transparent huge pages in
      // madvise mode): a packed block streams through far more 4 KiB pages than the TLBs hold.
      const size_t align = want >= (size_t(1) << 19) ? size_t(2) << 20 : 4096;
      bytes = (want + align - 1) & ~(align - 1);
      ptr = std::aligned_alloc(align, bytes);
      if (!ptr) {
        bytes = 0;
        std::abort();  // out of memory inside a kernel: nothing sensible to return to JS from here
      }
      if (align > 4096) madvise(ptr, bytes, MADV_HUGEPAGE);  // advice only: failure changes nothing
    }
    return ptr;
  }
};

struct ThreadBuffers {
  Buffer a, b, c;
};

thread_local ThreadBuffers tlBuffers;

inline float bf16ToF32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even; NaN stays a (quiet) NaN.
inline uint16_t f32ToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

const KernelSet* pickKernelsImpl(Level level, DType ab) {
  const int l = static_cast<int>(level);
  const KernelSet* ks = nullptr;
  if (l >= static_cast<int>(Level::Amx) && ab == DType::BF16) ks = amxKernels(ab);
  if (!ks && l >= static_cast<int>(Level::Avx512Bf16) && ab == DType::BF16) ks = avx512Bf16Kernels(ab);
  if (!ks && l >= static_cast<int>(Level::Avx512)) ks = avx512Kernels(ab);
  if (!ks && l >= static_cast<int>(Level::Avx2)) ks = avx2Kernels(ab);
  if (!ks) ks = genericKernels(ab);
  return ks;
}

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The block size to split `total` into ceil(total / maxBlock) near-equal blocks, rounded up to a
// multiple of `unit` (so that K = 896 runs as 3 x 299 rather than 384 + 384 + 128: a short last
// block does the same C loads and stores for a fraction of the flops).
int64_t evenBlock(int64_t total, int64_t maxBlock, int64_t unit) {
  if (total <= 0) return maxBlock;
  const int64_t blocks = ceilDiv(total, maxBlock);
  return std::min(maxBlock, ceilDiv(ceilDiv(total, blocks), unit) * unit);
}

// C = beta * C over a dense-ish f32 block (used when k == 0 or alpha == 0).
void scaleBlock(float* c, int64_t ldc, int64_t rows, int64_t cols, float beta) {
  for (int64_t i = 0; i < rows; i++) {
    float* row = c + i * ldc;
    if (beta == 0.0f) std::fill(row, row + cols, 0.0f);
    else if (beta != 1.0f)
      for (int64_t j = 0; j < cols; j++) row[j] *= beta;
  }
}

// One matrix of the batch as the packers see it: base pointers and index/depth strides of A
// (index = row i of C, depth = p) and B (index = column j of C, depth = p), in source elements.
struct Operands {
  const char* a;
  const char* b;
  int64_t aSi, aSp, bSi, bSp;
  int64_t bytes;  // per source element

  Operands(const Problem& p, int64_t bi) {
    bytes = p.ab == DType::BF16 ? 2 : 4;
    a = static_cast<const char*>(p.a) + bi * p.strideA * bytes;
    b = static_cast<const char*>(p.b) + bi * p.strideB * bytes;
    aSi = p.transA ? 1 : p.lda;
    aSp = p.transA ? p.lda : 1;
    bSi = p.transB ? p.ldb : 1;
    bSp = p.transB ? 1 : p.ldb;
  }
  const char* aAt(int64_t i, int64_t pc) const { return a + (i * aSi + pc * aSp) * bytes; }
  const char* bAt(int64_t j, int64_t pc) const { return b + (j * bSi + pc * bSp) * bytes; }
};

// A block's rows [0, direct.rows) read in place by KernelSet::microDirect (rows of A `ldaBytes` apart),
// the rest from packed panels (direct.rows = 0: all packed).
struct DirectA {
  const char* a = nullptr;
  int64_t ldaBytes = 0;
  int64_t rows = 0;
};

// C[0:mc, 0:nc] (+)= alpha * packed A block * packed B block over `ksteps` k-steps: the jr / ir loops
// around the microkernel. The B micro-panel (jr) is reused across the A block's micro-panels, which
// stream from L2.
void macroKernel(const KernelSet& ks, const char* packA, const char* packB, int64_t ksteps, int64_t mc, int64_t nc,
                 float* c, int64_t ldc, float alpha, float beta, const DirectA& direct = DirectA()) {
  const int mr = ks.mr, nr = ks.nr;
  const int64_t panelA = ksteps * ks.kpack * mr * ks.packedBytes;  // bytes per micro-panel
  const int64_t panelB = ksteps * ks.kpack * nr * ks.packedBytes;
  const int64_t panelsA = ceilDiv(mc, mr);
  // The next B micro-panel is pulled into L2 while this one is in use, a slice per microkernel call
  // (it usually comes from L3, where the first pass over it would otherwise wait on every line).
  const int64_t sliceB = ceilDiv(ceilDiv(panelB, 64), panelsA) * 64;
  for (int64_t jr = 0; jr < nc; jr += nr) {
    const int64_t nrr = std::min<int64_t>(nr, nc - jr);
    const char* bp = packB + (jr / nr) * panelB;
    const bool hasNext = jr + nr < nc;
    for (int64_t ir = 0; ir < mc; ir += mr) {
      const int64_t mrr = std::min<int64_t>(mr, mc - ir);
      const char* ap = ir < direct.rows ? nullptr : packA + ((ir - direct.rows) / mr) * panelA;
      if (hasNext) {
        const char* next = bp + panelB + (ir / mr) * sliceB;
        const char* end = std::min(bp + 2 * panelB, next + sliceB);
        for (; next < end; next += 64) __builtin_prefetch(next, 0, 2);
      }
      float* ct = c + ir * ldc + jr;
      if (ir < direct.rows && nrr == nr) {
        ks.microDirect(ksteps, direct.a + ir * direct.ldaBytes, direct.ldaBytes, bp, ct, ldc, beta != 0.0f);
        continue;
      }
      if (mrr == mr && nrr == nr) {
        ks.micro(ksteps, ap, bp, ct, ldc, alpha, beta);
        continue;
      }
      // Edge tile: the panels are zero-padded, so compute the full tile into scratch and merge
      // only the valid part.
      alignas(64) float tile[32 * 64];
      if (ap) ks.micro(ksteps, ap, bp, tile, nr, alpha, 0.0f);
      else ks.microDirect(ksteps, direct.a + ir * direct.ldaBytes, direct.ldaBytes, bp, tile, nr, false);
      for (int64_t i = 0; i < mrr; i++) {
        float* crow = ct + i * ldc;
        const float* trow = tile + i * nr;
        if (beta == 0.0f)
          for (int64_t j = 0; j < nrr; j++) crow[j] = trow[j];
        else
          for (int64_t j = 0; j < nrr; j++) crow[j] = trow[j] + beta * crow[j];
      }
    }
  }
}

// A bfloat16 C is computed in a float32 scratch block (the K blocks accumulate into it) and rounded
// once at the end. These convert C's rows [r0, r1) of the column block at jc to / from scratch rows
// starting at f (row stride ldf).
void loadBf16Rows(const Problem& p, int64_t bi, int64_t jc, int64_t nc, int64_t r0, int64_t r1, float* f, int64_t ldf) {
  if (p.beta == 0.0f) return;  // never read: beta = 0 ignores C
  const uint16_t* cb = static_cast<const uint16_t*>(p.c) + bi * p.strideC + r0 * p.ldc + jc;
  for (int64_t i = 0; i < r1 - r0; i++)
    for (int64_t j = 0; j < nc; j++) f[i * ldf + j] = bf16ToF32(cb[i * p.ldc + j]);
}

void storeBf16Rows(const KernelSet& ks, const Problem& p, int64_t bi, int64_t jc, int64_t nc, int64_t r0, int64_t r1, const float* f,
                   int64_t ldf) {
  uint16_t* cb = static_cast<uint16_t*>(p.c) + bi * p.strideC + r0 * p.ldc + jc;
  if (ks.storeRows) {
    ks.storeRows(f, ldf, r1 - r0, nc, cb, p.ldc, DType::BF16, 1.0f, 0.0f);
    return;
  }
  for (int64_t i = 0; i < r1 - r0; i++)
    for (int64_t j = 0; j < nc; j++) cb[i * p.ldc + j] = f32ToBf16(f[i * ldf + j]);
}

constexpr int64_t kDirectMaxRows = 256;

// Whether the kernel set's tiles may read this problem's A in place (AMX: A not transposed, alpha = 1,
// beta 0 or 1). Rows 2 KiB apart (or a multiple) fall into one or two L1 sets, and 32 of them thrash
// it; a tall A gains little (its packing is spread over many columns): those are packed as before.
bool readsAInPlace(const KernelSet& ks, const Problem& p) {
  const int64_t ldaBytes = p.lda * (p.ab == DType::BF16 ? 2 : 4);
  return ks.microDirect && !p.transA && p.alpha == 1.0f && (p.beta == 0.0f || p.beta == 1.0f) && p.m <= kDirectMaxRows &&
         ldaBytes % 2048 != 0;
}

// Packs rows [ic, ic + mc) of A at depth [pc, pc + kc) for macroKernel, or, where readsAInPlace and the
// K block is whole 32-deep blocks, only the rows past the last whole panel. Reading A in place saves a
// copy of A per column block (computeColumns takes many narrow ones).
DirectA packAOrDirect(const KernelSet& ks, const Problem& p, const Operands& op, int64_t ic, int64_t pc, int64_t mc, int64_t kc,
                      char* packA) {
  DirectA d;
  if (readsAInPlace(ks, p) && kc % ks.kpack == 0) {
    d.a = op.aAt(ic, pc);
    d.ldaBytes = op.aSi * op.bytes;
    d.rows = mc / ks.mr * ks.mr;
  }
  if (d.rows < mc) ks.packA(op.aAt(ic + d.rows, pc), op.aSi, op.aSp, mc - d.rows, kc, ks.mr, packA);
  return d;
}

// One thread computes rows [i0, i1) and columns [j0, j1) of C on its own, packing everything it needs.
void computeBlock(const KernelSet& ks, const Problem& p, int64_t bi, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  const Operands op(p, bi);
  const int64_t rows = i1 - i0;
  const int64_t kcMax = std::min<int64_t>(ks.kc, ceilDiv(p.k, ks.kpack) * ks.kpack);
  const int64_t mcMax = std::min<int64_t>(ks.mc, ceilDiv(rows, ks.mr) * ks.mr);
  const int64_t ncMax = std::min<int64_t>(ks.nc, ceilDiv(j1 - j0, ks.nr) * ks.nr);
  const bool compute = p.k > 0 && p.alpha != 0.0f;
  char* packA = compute ? static_cast<char*>(tlBuffers.a.get(size_t(mcMax) * kcMax * ks.packedBytes)) : nullptr;
  char* packB = compute ? static_cast<char*>(tlBuffers.b.get(size_t(ncMax) * kcMax * ks.packedBytes)) : nullptr;

  for (int64_t jc = j0; jc < j1; jc += ks.nc) {
    const int64_t nc = std::min<int64_t>(ks.nc, j1 - jc);
    // The f32 destination of this column block: C itself, or scratch for a bf16 C.
    float* cf;
    int64_t ldcf;
    if (p.cd == DType::F32) {
      cf = static_cast<float*>(p.c) + bi * p.strideC + i0 * p.ldc + jc;
      ldcf = p.ldc;
    } else {
      ldcf = nc;
      cf = static_cast<float*>(tlBuffers.c.get(size_t(rows) * nc * sizeof(float)));
      loadBf16Rows(p, bi, jc, nc, i0, i1, cf, ldcf);
    }
    if (!compute) {
      scaleBlock(cf, ldcf, rows, nc, p.beta);
    } else {
      for (int64_t pc = 0; pc < p.k; pc += ks.kc) {
        const int64_t kc = std::min<int64_t>(ks.kc, p.k - pc);
        const int64_t ksteps = ceilDiv(kc, ks.kpack);
        ks.packB(op.bAt(jc, pc), op.bSi, op.bSp, nc, kc, ks.nr, packB);
        for (int64_t ic = i0; ic < i1; ic += ks.mc) {
          const int64_t mc = std::min<int64_t>(ks.mc, i1 - ic);
          const DirectA d = packAOrDirect(ks, p, op, ic, pc, mc, kc, packA);
          macroKernel(ks, packA, packB, ksteps, mc, nc, cf + (ic - i0) * ldcf, ldcf, p.alpha, pc == 0 ? p.beta : 1.0f, d);
        }
      }
    }
    if (p.cd == DType::BF16) storeBf16Rows(ks, p, bi, jc, nc, i0, i1, cf, ldcf);
  }
}

// A barrier for the pool's threads: spins briefly, then yields (the pool may share its cores).
class SpinBarrier {
 public:
  explicit SpinBarrier(int n) : n_(n) {}
  void wait() {
    const int phase = phase_.load(std::memory_order_acquire);
    if (count_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
      count_.store(0, std::memory_order_relaxed);
      phase_.fetch_add(1, std::memory_order_release);
      return;
    }
    for (int spins = 0; phase_.load(std::memory_order_acquire) == phase; spins++) {
      if (spins > 1000) std::this_thread::yield();
      else __builtin_ia32_pause();
    }
  }

 private:
  const int n_;
  std::atomic<int> count_{0};
  std::atomic<int> phase_{0};
};

// State shared by the threads of one computeShared() call.
struct Shared {
  char* packB;       // the packed B block, packed by all threads together
  float* cScratch;   // float32 rows of a bf16 C for the current column block (m x nc)
  int64_t tilesM;    // row tiles of C (ceil(m / mr)), dealt out as `chunks` near-equal work items
  int64_t chunks;
  int64_t maxChunkRows;
  int64_t chunkBegin(int64_t c) const { return c * tilesM / chunks; }  // in tiles
  SpinBarrier barrier;
  std::atomic<int64_t> next[2];  // work-item counters, alternating between K blocks
  explicit Shared(int nt) : barrier(nt) {
    next[0] = 0;
    next[1] = 0;
  }
};

// GotoBLAS/BLIS-style parallel GEMM of one matrix: for each (jc, pc) block the threads pack B
// together into one shared buffer, then take MC-row chunks of C from a counter (so a thread slowed by
// other load simply takes fewer), each packing its own A block. Nothing is packed twice.
// `parity` (which of the two counters is live) carries over between calls for the batch's matrices.
void computeShared(const KernelSet& ks, const Problem& p, int64_t bi, Shared& sh, int t, int nt, int& parity) {
  const Operands op(p, bi);
  const int64_t kcMax = std::min<int64_t>(ks.kc, ceilDiv(p.k, ks.kpack) * ks.kpack);
  char* packA = static_cast<char*>(tlBuffers.a.get(size_t(sh.maxChunkRows) * kcMax * ks.packedBytes));
  // Rows of a bf16 C's scratch this thread converts (static, so no barrier is needed between
  // rounding one column block and loading the next).
  const int64_t r0 = p.m * t / nt, r1 = p.m * (t + 1) / nt;
  for (int64_t jc = 0; jc < p.n; jc += ks.nc) {
    const int64_t nc = std::min<int64_t>(ks.nc, p.n - jc);
    float* cf;
    int64_t ldcf;
    if (p.cd == DType::F32) {
      cf = static_cast<float*>(p.c) + bi * p.strideC + jc;
      ldcf = p.ldc;
    } else {
      // One row stride for every column block, so that each thread's rows stay in place.
      cf = sh.cScratch;
      ldcf = std::min<int64_t>(ks.nc, p.n);
      loadBf16Rows(p, bi, jc, nc, r0, r1, cf + r0 * ldcf, ldcf);
    }
    const int64_t panels = ceilDiv(nc, ks.nr);
    const int64_t p0 = panels * t / nt, p1 = panels * (t + 1) / nt;  // this thread's share of B
    for (int64_t pc = 0; pc < p.k; pc += ks.kc) {
      const int64_t kc = std::min<int64_t>(ks.kc, p.k - pc);
      const int64_t ksteps = ceilDiv(kc, ks.kpack);
      const int64_t panelB = ksteps * ks.kpack * ks.nr * ks.packedBytes;
      if (p0 < p1)
        ks.packB(op.bAt(jc + p0 * ks.nr, pc), op.bSi, op.bSp, std::min(nc, p1 * ks.nr) - p0 * ks.nr, kc, ks.nr,
                 sh.packB + p0 * panelB);
      sh.barrier.wait();  // B packed (and the bf16 scratch loaded)
      if (t == 0) sh.next[parity ^ 1].store(0, std::memory_order_relaxed);
      for (int64_t c; (c = sh.next[parity].fetch_add(1, std::memory_order_relaxed)) < sh.chunks;) {
        const int64_t ic = sh.chunkBegin(c) * ks.mr, mc = std::min(p.m, sh.chunkBegin(c + 1) * ks.mr) - ic;
        // (A is packed here even where the tiles could read it in place: with rows shared by the threads,
        // in-place reads measured 5-13% slower on the 0.5B shapes with M = 256.)
        ks.packA(op.aAt(ic, pc), op.aSi, op.aSp, mc, kc, ks.mr, packA);
        macroKernel(ks, packA, sh.packB, ksteps, mc, nc, cf + ic * ldcf, ldcf, p.alpha, pc == 0 ? p.beta : 1.0f);
      }
      parity ^= 1;
      sh.barrier.wait();  // everyone is done with this B block (and with the C scratch)
    }
    if (p.cd == DType::BF16) storeBf16Rows(ks, p, bi, jc, nc, r0, r1, cf + r0 * ldcf, ldcf);
  }
}

// Calls the kernel set's `done` hook (if any) when the thread's share of the GEMM is finished.
struct DoneGuard {
  const KernelSet& ks;
  ~DoneGuard() {
    if (ks.done) ks.done();
  }
};

// ---- C = A B^T with few rows of A, as C^T = B A^T -------------------------------------------------
//
// For a bf16 X W^T with X [m, k] small (activations) and W [n, k] large (a weight [out, in], or the
// output embedding), packing W costs as much as the product: every element is read, shuffled and
// written once for 2m flops. Computed as C^T = W X^T instead, W's rows are A tiles the microkernel
// loads in place (KernelSet::microDirect), and only X is packed (into B panels, once). Threads take
// chunks of W's rows from a counter; each accumulates its chunk of C^T over K in an L2-resident
// float32 block and stores it transposed into C (KernelSet::storeT).

// K slices of at most 256: a 32-row panel of W (16 KiB) stays in L1 while it meets every X panel, so
// the microkernel streams only X from L2 (single-thread runs of the 0.5B shapes: 10-20% faster than
// slices of 1024). The C^T block a thread accumulates over all slices stays in L2.
constexpr int64_t kTransposedKc = 256;
constexpr int64_t kTransposedBlockBytes = 512 << 10;  // the C^T block
constexpr int64_t kTransposedMaxPacked = 32 << 20;    // all of X packed, at most (else the usual path)
constexpr int64_t kTransposedStreamBytes = 64 << 20;  // a larger W is prefetched ahead of use

bool transposedApplies(const KernelSet& ks, const Problem& p) {
  if (!ks.microDirect || !ks.storeT || p.ab != DType::BF16 || !p.transB || p.transA) return false;
  if (p.k <= 0 || p.k % 32 != 0 || p.alpha == 0.0f || p.m > 512 || 2 * p.m > p.n) return false;
  return ceilDiv(p.m, ks.nr) * ks.nr * p.k * 2 <= kTransposedMaxPacked;
}

void computeTransposed(const KernelSet& ks, const Problem& p) {
  const int64_t mPad = ceilDiv(p.m, ks.nr) * ks.nr;
  const int64_t kc = evenBlock(p.k, kTransposedKc, 32);
  const int64_t slices = ceilDiv(p.k, kc);
  // Slice sl covers depth [sl * kc, sl * kc + sliceK(sl)), a multiple of 32 (as k is); X's panels of
  // one slice lie together, sliceBytes apart from the next slice's.
  const auto sliceK = [&](int64_t sl) { return std::min(kc, p.k - sl * kc); };
  const int64_t sliceBytes = kc * ks.nr * 2 * (mPad / ks.nr);
  const int nt = numThreads();
  // Rows of W per work item: the C^T block within kTransposedBlockBytes, and at least 4 items per thread.
  int64_t rows = std::max<int64_t>(32, kTransposedBlockBytes / (mPad * 4) / 32 * 32);
  rows = std::max<int64_t>(32, std::min(rows, ceilDiv(ceilDiv(p.n, 4 * nt), 32) * 32));
  const int64_t items = ceilDiv(p.n, rows);
  char* packX = static_cast<char*>(tlBuffers.b.get(size_t(sliceBytes * slices)));
  for (int64_t bi = 0; bi < p.batch; bi++) {
    const char* w = static_cast<const char*>(p.b) + bi * p.strideB * 2;
    const uint16_t* x = static_cast<const uint16_t*>(p.a) + bi * p.strideA;
    SpinBarrier barrier(nt);
    std::atomic<int64_t> next{0};
    parallelRun([&](int t, int n) {
      DoneGuard done{ks};
      // X's panels (of every K slice), shared out among the threads.
      const int64_t panels = mPad / ks.nr;
      for (int64_t j = panels * t / n; j < panels * (t + 1) / n; j++)
        for (int64_t sl = 0; sl < slices; sl++)
          ks.packB(x + j * ks.nr * p.lda + sl * kc, p.lda, 1, std::min<int64_t>(ks.nr, p.m - j * ks.nr), sliceK(sl), ks.nr,
                   packX + sl * sliceBytes + sliceK(sl) * ks.nr * 2 * j);
      if (n > 1) barrier.wait();
      float* block = static_cast<float*>(tlBuffers.c.get(size_t(rows * mPad) * sizeof(float)));
      char* edge = static_cast<char*>(tlBuffers.a.get(size_t(32 * kc * 2)));
      const int64_t ldaBytes = p.ldb * 2;
      const bool streamW = p.n * p.k * 2 > kTransposedStreamBytes;
      for (int64_t item; (item = next.fetch_add(1, std::memory_order_relaxed)) < items;) {
        const int64_t r0 = item * rows, r1 = std::min(p.n, r0 + rows);
        for (int64_t sl = 0; sl < slices; sl++) {
          const char* xs = packX + sl * sliceBytes;
          const int64_t depth = sliceK(sl), blocks = depth / 32, panelBytes = depth * ks.nr * 2;
          for (int64_t ir = r0; ir < r1; ir += 32) {
            float* cRow = block + (ir - r0) * mPad;
            if (r1 - ir >= 32) {
              const char* a = w + ir * ldaBytes + sl * kc * 2;
              // A W too large to stay in L3 between calls (e.g. the output embedding) streams from memory:
              // the next 32 rows' slice is pulled into L2 during this panel's calls, a share per call
              // (kc / 32 lines per row). For a cache-resident W the hardware does better alone.
              const bool prefetch = streamW && ir + 64 <= p.n;
              const int64_t lines = depth;  // 32 rows x depth / 32 lines
              for (int64_t j = 0; j < panels; j++) {
                if (prefetch)
                  for (int64_t l = lines * j / panels; l < lines * (j + 1) / panels; l++)
                    __builtin_prefetch(a + (32 + l / blocks) * ldaBytes + (l % blocks) * 64, 0, 2);
                ks.microDirect(blocks, a, ldaBytes, xs + j * panelBytes, cRow + j * ks.nr, mPad, sl > 0);
              }
            } else {
              // The last rows of W: a zero-padded packed panel (reading 32 rows in place would run past W).
              ks.packA(w + (ir * p.ldb + sl * kc) * 2, p.ldb, 1, r1 - ir, depth, 32, edge);
              for (int64_t j = 0; j < panels; j++)
                ks.micro(blocks, edge, xs + j * panelBytes, cRow + j * ks.nr, mPad, 1.0f, sl > 0 ? 1.0f : 0.0f);
            }
          }
        }
        ks.storeT(block, mPad, r1 - r0, p.m, static_cast<char*>(p.c) + (bi * p.strideC + r0) * (p.cd == DType::F32 ? 4 : 2),
                  p.ldc, p.cd, p.alpha, p.beta);
      }
    });
  }
}

// ---- A read in place: column blocks per thread ---------------------------------------------------
//
// Where the tiles read A in place (packAOrDirect) for every K block, nothing is packed twice when each
// thread takes whole column blocks of C (packing their B panels itself) from a counter: no barriers,
// and narrow blocks (256 columns) keep the float32 block of C a thread accumulates over K in L2 while
// a 512-deep B block (256 KiB) and the A rows pass. Used for a bf16 C of at most 256 rows (the 0.5B
// training shapes: 10-85% faster than 2432-column blocks shared by rows, timed alternately); with a
// float32 C or more rows the row-shared path was as fast or faster.
constexpr int64_t kDirectNc = 256;
constexpr int64_t kDirectKc = 512;

// Each column block reads all of A again: fine while A is a few MiB (or there is one block); [256, 4864]
// ran 10% faster here than on computeShared, [512, 4864] 19% slower. A larger A (or the logits gradient
// [T, 151936] times the embedding) goes to computeShared, which reads it once per wide column block.
constexpr int64_t kDirectMaxRereadBytes = 4 << 20;

bool directApplies(const KernelSet& ks, const Problem& p) {
  return readsAInPlace(ks, p) && p.ab == DType::BF16 && p.cd == DType::BF16 && p.k > 0 && p.k % ks.kpack == 0 &&
         (p.n <= kDirectNc || p.m * p.k * 2 <= kDirectMaxRereadBytes);
}

void computeColumns(KernelSet ks, const Problem& p) {
  ks.nc = kDirectNc;
  ks.kc = evenBlock(p.k, kDirectKc, ks.kpack);
  const int64_t blocks = ceilDiv(p.n, ks.nc), items = p.batch * blocks;
  std::atomic<int64_t> next{0};
  parallelRun([&](int, int) {
    DoneGuard done{ks};
    for (int64_t item; (item = next.fetch_add(1, std::memory_order_relaxed)) < items;) {
      const int64_t bi = item / blocks, j0 = (item % blocks) * ks.nc;
      computeBlock(ks, p, bi, 0, p.m, j0, std::min(p.n, j0 + ks.nc));
    }
  });
}

}  // namespace

const KernelSet& kernelsFor(Level level, DType ab) { return *pickKernelsImpl(level, ab); }

const char* levelName(Level level) {
  return level == Level::Amx ? "amx" : isaName(static_cast<Isa>(static_cast<int>(level)));
}

// The best level this machine allows: detectIsa(), with AMX on top when the CPU has it, the kernel
// grants tile data, and GRAFT_ISA (which cpu.cpp applies) names no lower level.
Level detectLevel() {
  static const Level found = [] {
    const Isa isa = detectIsa();
    if (isa != Isa::Avx512Bf16) return static_cast<Level>(static_cast<int>(isa));
    const char* env = std::getenv("GRAFT_ISA");
    const bool capped = env && (!std::strcmp(env, "generic") || !std::strcmp(env, "avx2") ||
                                !std::strcmp(env, "avx512") || !std::strcmp(env, "avx512bf16"));
    return !capped && amxUsable() ? Level::Amx : Level::Avx512Bf16;
  }();
  return found;
}

Level activeLevel() { return static_cast<Level>(std::min(static_cast<int>(detectLevel()), levelCap.load())); }

void capLevel(Level cap) { levelCap.store(static_cast<int>(cap)); }

void run(const Problem& p, Level level) {
  if (p.batch <= 0 || p.m <= 0 || p.n <= 0) return;
  KernelSet ks = kernelsFor(level, p.ab);
  ks.kc = evenBlock(p.k, ks.kc, ks.kpack);
  ks.nc = evenBlock(p.n, ks.nc, ks.nr);

  // Below ~2 MFLOP the pool's wake-up costs more than it saves.
  const double flops = 2.0 * double(p.m) * double(p.n) * double(std::max<int64_t>(p.k, 1)) * double(p.batch);
  const bool small = flops < 2e6;
  if (!small && transposedApplies(ks, p)) {
    computeTransposed(ks, p);
    return;
  }
  if (!small && directApplies(ks, p)) {
    computeColumns(ks, p);
    return;
  }
  const int nt = small ? 1 : numThreads();
  if (nt == 1) {
    DoneGuard done{ks};
    for (int64_t bi = 0; bi < p.batch; bi++) computeBlock(ks, p, bi, 0, p.m, 0, p.n);
    return;
  }

  // Whole matrices per thread when the batch divides well. Otherwise each matrix is shared: by rows
  // with one cooperatively packed B (computeShared), or, with too few rows, by columns.
  if (p.batch >= nt && (p.batch % nt == 0 || p.batch >= 4 * nt)) {
    parallelRun([&](int t, int n) {
      DoneGuard done{ks};
      const int64_t b0 = p.batch * t / n, b1 = p.batch * (t + 1) / n;
      for (int64_t bi = b0; bi < b1; bi++) computeBlock(ks, p, bi, 0, p.m, 0, p.n);
    });
    return;
  }
  const int64_t tilesM = ceilDiv(p.m, ks.mr), tilesN = ceilDiv(p.n, ks.nr);
  if (tilesM >= 2 * nt && p.k > 0 && p.alpha != 0.0f) {
    // Rows are shared out in chunks of whole tiles: at least two per thread (for balance under
    // other load), at most mc rows each, sizes differing by at most one tile.
    const int64_t maxTiles = ks.mc / ks.mr;
    Shared sh(nt);
    sh.tilesM = tilesM;
    sh.chunks = nt * std::max<int64_t>(2, ceilDiv(tilesM, nt * maxTiles));
    sh.maxChunkRows = ceilDiv(tilesM, sh.chunks) * ks.mr;
    const int64_t kcMax = std::min<int64_t>(ks.kc, ceilDiv(p.k, ks.kpack) * ks.kpack);
    const int64_t ncMax = std::min<int64_t>(ks.nc, tilesN * ks.nr);
    // The caller's thread-local buffers hold the shared blocks (the caller is pool thread 0, and its
    // own A block uses a different buffer).
    sh.packB = static_cast<char*>(tlBuffers.b.get(size_t(ncMax) * kcMax * ks.packedBytes));
    sh.cScratch = p.cd == DType::BF16
                      ? static_cast<float*>(tlBuffers.c.get(size_t(p.m) * std::min<int64_t>(ks.nc, p.n) * sizeof(float)))
                      : nullptr;
    parallelRun([&](int t, int n) {
      DoneGuard done{ks};
      int parity = 0;
      for (int64_t bi = 0; bi < p.batch; bi++) {
        if (n == nt) computeShared(ks, p, bi, sh, t, n, parity);
        else computeBlock(ks, p, bi, 0, p.m, 0, p.n);  // called inside a parallel region: runs inline
      }
    });
    return;
  }
  // Too few rows to share out: split the columns, each thread packing its own panels.
  parallelRun([&](int t, int n) {
    DoneGuard done{ks};
    const int64_t t0 = tilesN * t / n, t1 = tilesN * (t + 1) / n;
    if (t0 >= t1) return;
    for (int64_t bi = 0; bi < p.batch; bi++) computeBlock(ks, p, bi, 0, p.m, t0 * ks.nr, std::min(p.n, t1 * ks.nr));
  });
}

}  // namespace gemm
}  // namespace graft
