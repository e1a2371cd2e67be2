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

#include "transpose_avx512.h"

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

// tmm0-3 += A * B over `blocks` 32-deep blocks: rows 0-15 of A at a0, rows 16-31 at a1, `aStride`
// bytes between rows and `aStep` bytes from one block to the next; B blocks of 2 KiB at b.
__attribute__((always_inline)) inline void amxBlocks(int64_t blocks, const char* a0, const char* a1, int64_t aStride,
                                                     int64_t aStep, const char* b) {
  for (int64_t q = 0; q < blocks; q++) {
    // B block: [16 pairs][32 columns][2] (2 KiB).
    _tile_loadd(4, a0, aStride);
    _tile_loadd(6, b, 128);
    _tile_loadd(7, b + 64, 128);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_loadd(5, a1, aStride);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
    a0 += aStep;
    a1 += aStep;
    b += 2048;
  }
}

__attribute__((always_inline)) inline void amxLoadC(const float* c, int64_t ldcBytes) {
  _tile_loadd(0, c, ldcBytes);
  _tile_loadd(1, c + 16, ldcBytes);
  _tile_loadd(2, reinterpret_cast<const char*>(c) + 16 * ldcBytes, ldcBytes);
  _tile_loadd(3, reinterpret_cast<const char*>(c + 16) + 16 * ldcBytes, ldcBytes);
}

__attribute__((always_inline)) inline void amxZeroC() {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
}

__attribute__((always_inline)) inline void amxStoreC(float* c, int64_t ldcBytes) {
  _tile_stored(0, c, ldcBytes);
  _tile_stored(1, c + 16, ldcBytes);
  _tile_stored(2, reinterpret_cast<char*>(c) + 16 * ldcBytes, ldcBytes);
  _tile_stored(3, reinterpret_cast<char*>(c + 16) + 16 * ldcBytes, ldcBytes);
}

// C[0:32, 0:32] = alpha * A * B + beta * C over `blocks` 32-deep blocks of packed panels (A block:
// [32 rows][32 depth], 2 KiB). With alpha = 1 the tiles accumulate straight into C (loaded first when
// beta = 1); otherwise they go through scratch.
void microAmx(int64_t blocks, const void* ap, const void* bp, float* c, int64_t ldc, float alpha, float beta) {
  ensureConfigured();
  const char* a = static_cast<const char*>(ap);
  const int64_t ldcBytes = ldc * 4;
  const bool direct = alpha == 1.0f && (beta == 0.0f || beta == 1.0f);
  if (direct && beta == 1.0f) amxLoadC(c, ldcBytes);
  else amxZeroC();
  amxBlocks(blocks, a, a + 1024, 64, 2048, static_cast<const char*>(bp));
  if (direct) {
    amxStoreC(c, ldcBytes);
    return;
  }
  alignas(64) float s[32 * 32];
  amxStoreC(s, 128);
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  for (int i = 0; i < 32; i++) {
    float* row = c + i * ldc;
    for (int v = 0; v < 2; v++) {
      const __m512 acc = _mm512_mul_ps(va, _mm512_load_ps(s + i * 32 + v * 16));
      _mm512_storeu_ps(row + v * 16, beta == 0.0f ? acc : _mm512_fmadd_ps(vb, _mm512_loadu_ps(row + v * 16), acc));
    }
  }
}

// microAmx with the 32 rows of A read in place, ldaBytes apart (KernelSet::microDirect).
void microAmxDirect(int64_t blocks, const void* ap, int64_t ldaBytes, const void* bp, float* c, int64_t ldc, bool accumulate) {
  ensureConfigured();
  const char* a = static_cast<const char*>(ap);
  const int64_t ldcBytes = ldc * 4;
  if (accumulate) amxLoadC(c, ldcBytes);
  else amxZeroC();
  amxBlocks(blocks, a, a + 16 * ldaBytes, ldaBytes, 64, static_cast<const char*>(bp));
  amxStoreC(c, ldcBytes);
}

inline __mmask16 mask16(int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }  // n in [0, 16]

// float32 -> bfloat16 bits, round to nearest even, NaN kept quiet (as f32ToBf16 in gemm.cpp).
inline __m256i toBf16(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i hi = _mm512_srli_epi32(u, 16);
  const __m512i bias = _mm512_add_epi32(_mm512_set1_epi32(0x7fff), _mm512_and_si512(hi, _mm512_set1_epi32(1)));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, bias), 16);
  r = _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_or_si512(hi, _mm512_set1_epi32(0x40)));
  return _mm512_cvtepi32_epi16(r);
}

// C[i, j] (or, transposed, C[j, i]) = alpha * S[i, j] + beta * C, for 16 values of C's row from v.
__attribute__((always_inline)) inline void mergeRow(__m512 v, void* cv, int64_t offset, __mmask16 m, DType cd, __m512 va, __m512 vb,
                                                    float beta) {
  v = _mm512_mul_ps(va, v);
  if (cd == DType::F32) {
    float* dst = static_cast<float*>(cv) + offset;
    if (beta != 0.0f) v = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, dst), v);
    _mm512_mask_storeu_ps(dst, m, v);
  } else {
    uint16_t* dst = static_cast<uint16_t*>(cv) + offset;
    if (beta != 0.0f) {
      const __m512i old = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, dst)), 16);
      v = _mm512_fmadd_ps(vb, _mm512_castsi512_ps(old), v);
    }
    _mm256_mask_storeu_epi16(dst, m, toBf16(v));
  }
}

// KernelSet::storeT: 16 x 16 blocks of S transposed in registers, scaled, merged and stored as rows of C.
void storeTransposed(const float* s, int64_t lds, int64_t rows, int64_t cols, void* c, int64_t ldc, DType cd, float alpha,
                     float beta) {
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  for (int64_t i0 = 0; i0 < rows; i0 += 16) {
    const int64_t ni = rows - i0 < 16 ? rows - i0 : 16;
    for (int64_t j0 = 0; j0 < cols; j0 += 16) {
      const int64_t nj = cols - j0 < 16 ? cols - j0 : 16;
      __m512 r[16];
      for (int q = 0; q < 16; q++)
        r[q] = q < ni ? _mm512_maskz_loadu_ps(mask16(nj), s + (i0 + q) * lds + j0) : _mm512_setzero_ps();
      transpose16(r);  // r[q] lane i = S[i0 + i][j0 + q], i.e. C row j0 + q, columns i0 + i
      for (int q = 0; q < nj; q++) mergeRow(r[q], c, (j0 + q) * ldc + i0, mask16(ni), cd, va, vb, beta);
    }
  }
}

// KernelSet::storeRows: the same without the transpose (C[i, j] from S[i, j]).
void storeRows(const float* s, int64_t lds, int64_t rows, int64_t cols, void* c, int64_t ldc, DType cd, float alpha, float beta) {
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j0 = 0; j0 < cols; j0 += 16) {
      const __mmask16 m = mask16(cols - j0 < 16 ? cols - j0 : 16);
      mergeRow(_mm512_maskz_loadu_ps(m, s + i * lds + j0), c, i * ldc + j0, m, cd, va, vb, beta);
    }
}

// 32x32 tile, depth blocks of 32. KC = 2048 bf16 values: every 32-deep block is four tdpbf16ps
// (65536 flops) on 4 KiB of tile loads, so the kernel is bound by L2 bandwidth, packing and the C
// tile's per-call load / store, not by the tile unit (~3.6 TFLOP/s per core in peakChunkAmx); a
// larger KC amortises C better. The 256 x 2048 A block (1 MiB) and a 32 x 2048 B micro-panel (128 KiB) stay in
// the 2 MiB L2. Single-thread runs of the three benchmark shapes measured 5-20% faster than KC = 1024.
const KernelSet kAmx = {"amx-bf16 32x32", 32, 32, 32, 2, 256, 2048, 4096, packAmxBf16A, packAmxBf16B, microAmx, amxDone,
                        microAmxDirect, storeTransposed, storeRows};

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
