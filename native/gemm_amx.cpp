// AMX-BF16 GEMM: a 32x32 microkernel on tiles (four 16x16 float32 accumulators, two A tiles of
// 16 rows x 32 bf16, two VNNI B tiles of 16 pair-rows x 16 columns), the AMX detection and
// permission request, and the tdpbf16ps peak loop. Packing lives in gemm_avx512.cpp
// (packAmxBf16A / packAmxBf16B, depth padded to 32-value blocks: kpack = 32).
//
// Same rules as gemm_avx512.cpp: the kernels are compiled with a target pragma and only reached
// when amxUsable() says so; no header templates or inline library functions inside the pragma.
// Headers first: their inline functions and intrinsics then keep their own targets, not this file's.
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gemm.h"

namespace graft {
namespace gemm {
namespace {

constexpr long kArchReqXcompPerm = 0x1023;  // arch_prctl: request permission for an XSAVE feature
constexpr long kXfeatureXtileData = 18;     // AMX tile data (XCR0 bit 18; bit 17 is the tile config)

bool probeAmx() {
  unsigned int a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return false;  // OSXSAVE
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool amxBf16 = d & (1u << 22), amxTile = d & (1u << 24);
  if (!amxBf16 || !amxTile) return false;
  unsigned int lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & 0x60000u) != 0x60000u) return false;  // the OS does not manage tile state
  // Linux (5.16+) hands out tile data per process, on request; a refusal means no AMX.
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtileData) == 0;
}

}  // namespace

bool amxUsable() {
  static const bool usable = probeAmx();
  return usable;
}

}  // namespace gemm
}  // namespace graft

#pragma GCC push_options
#pragma GCC target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,avx2")

namespace graft {
namespace gemm {
namespace {

// LDTILECFG's 64-byte operand (palette 1).
struct alignas(64) TileConfig {
  uint8_t palette;
  uint8_t startRow;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

// Every tile is 16 rows x 64 bytes: tmm0-3 the C accumulators (16 x 16 float32), tmm4-5 A (16 rows
// x 32 bf16), tmm6-7 B (16 pair-rows x 16 columns x 2 bf16). A thread loads the configuration once
// per GEMM (the first microkernel call) and releases the tiles at the end (amxDone), so that its
// context switches do not carry 8 KiB of tile data afterwards.
thread_local bool tlConfigured = false;

inline void ensureConfigured() {
  if (tlConfigured) return;
  TileConfig cfg{};
  cfg.palette = 1;
  for (int t = 0; t < 8; t++) {
    cfg.colsb[t] = 64;
    cfg.rows[t] = 16;
  }
  _tile_loadconfig(&cfg);
  tlConfigured = true;
}

void amxDone() {
  if (!tlConfigured) return;
  _tile_release();
  tlConfigured = false;
}

// C[0:32, 0:32] = alpha * A * B + beta * C over `blocks` 32-deep blocks. With alpha = 1 the tiles
// accumulate straight into C (loaded first when beta = 1); otherwise they go through scratch.
void microAmx(int64_t blocks, const void* ap, const void* bp, float* c, int64_t ldc, float alpha, float beta) {
  ensureConfigured();
  const char* a = static_cast<const char*>(ap);
  const char* b = static_cast<const char*>(bp);
  const int64_t ldcBytes = ldc * 4;
  const bool direct = alpha == 1.0f && (beta == 0.0f || beta == 1.0f);
  if (direct && beta == 1.0f) {
    _tile_loadd(0, c, ldcBytes);
    _tile_loadd(1, c + 16, ldcBytes);
    _tile_loadd(2, c + 16 * ldc, ldcBytes);
    _tile_loadd(3, c + 16 * ldc + 16, ldcBytes);
  } else {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  }
  for (int64_t q = 0; q < blocks; q++) {
    // A block: [32 rows][32 depth] (2 KiB); B block: [16 pairs][32 columns][2] (2 KiB).
    _tile_loadd(4, a, 64);
    _tile_loadd(6, b, 128);
    _tile_loadd(7, b + 64, 128);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_loadd(5, a + 1024, 64);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
    a += 2048;
    b += 2048;
  }
  if (direct) {
    _tile_stored(0, c, ldcBytes);
    _tile_stored(1, c + 16, ldcBytes);
    _tile_stored(2, c + 16 * ldc, ldcBytes);
    _tile_stored(3, c + 16 * ldc + 16, ldcBytes);
    return;
  }
  alignas(64) float s[32 * 32];
  _tile_stored(0, s, 128);
  _tile_stored(1, s + 16, 128);
  _tile_stored(2, s + 16 * 32, 128);
  _tile_stored(3, s + 16 * 32 + 16, 128);
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  for (int i = 0; i < 32; i++) {
    float* row = c + i * ldc;
    for (int v = 0; v < 2; v++) {
      const __m512 acc = _mm512_mul_ps(va, _mm512_load_ps(s + i * 32 + v * 16));
      _mm512_storeu_ps(row + v * 16, beta == 0.0f ? acc : _mm512_fmadd_ps(vb, _mm512_loadu_ps(row + v * 16), acc));
    }
  }
}

// 32x32 tile, depth blocks of 32. KC = 2048 bf16 values: every 32-deep block is four tdpbf16ps
// (65536 flops) on 4 KiB of tile loads, so the kernel is bound by L2 bandwidth, packing and the C
// tile's per-call load / store, not by the tile unit (~3.6 TFLOP/s per core in peakChunkAmx); a
// larger KC amortises C better. The 256 x 2048 A block (1 MiB) and a 32 x 2048 B micro-panel (128 KiB) stay in
// the 2 MiB L2. Single-thread runs of the three benchmark shapes measured 5-20% faster than KC = 1024.
const KernelSet kAmx = {"amx-bf16 32x32", 32, 32, 32, 2, 256, 2048, 4096, packAmxBf16A, packAmxBf16B, microAmx, amxDone};

}  // namespace

double peakChunkAmx(int64_t iters) {
  ensureConfigured();
  alignas(64) uint16_t x[16 * 32];
  for (int i = 0; i < 16 * 32; i++) x[i] = (i & 1) ? 0xbb80 : 0x3b80;  // +-1/256: the products cancel
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, x, 64);
  _tile_loadd(5, x, 64);
  _tile_loadd(6, x, 64);
  _tile_loadd(7, x, 64);
  for (int64_t it = 0; it < iters; it++) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  alignas(64) float out[16 * 16];
  _tile_stored(0, out, 64);
  volatile float sink = out[0];
  (void)sink;
  amxDone();
  return static_cast<double>(iters) * 4 * 16 * 16 * 32 * 2;
}

const KernelSet* amxKernels(DType a) { return a == DType::BF16 && amxUsable() ? &kAmx : nullptr; }

}  // namespace gemm
}  // namespace graft
#pragma GCC pop_options
