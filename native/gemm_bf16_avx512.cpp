// AVX-512 BF16 GEMM: vdpbf16ps microkernel over pair-interleaved packed panels (see gemm.h,
// kpack = 2) with float32 accumulation, and the vdpbf16ps peak loop. Packing lives in
// gemm_avx512.cpp (packAvx512Bf16Pairs). Same rules as gemm_avx512.cpp: compiled with a target
// pragma and only reached when detectIsa() reports avx512bf16, no header templates.
// Headers first: their inline functions and intrinsics then keep their own targets, not this file's.
#include <immintrin.h>

#include "gemm.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,avx2")



namespace graft {
namespace gemm {
namespace {

// MR x (NV * 16) tile. Per k-step (two depth values): NV loads of 16 B column pairs, MR broadcasts
// of one A pair (32 bits), MR * NV vdpbf16ps, each 32 multiply-adds.
template <int MR, int NV>
void microBf16(int64_t ksteps, const void* ap, const void* bp, float* c, int64_t ldc, float alpha, float beta) {
  const uint32_t* a = static_cast<const uint32_t*>(ap);  // one bf16 pair per 32-bit unit
  const __m512i* b = static_cast<const __m512i*>(bp);
  __m512 acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; i++) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) acc[i][v] = _mm512_setzero_ps();
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + NV * 16 - 1), _MM_HINT_T0);
  }
#pragma GCC unroll 4
  for (int64_t q = 0; q < ksteps; q++) {
    __m512bh bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) bv[v] = (__m512bh)_mm512_load_si512(b + v);
#pragma GCC unroll 32
    for (int i = 0; i < MR; i++) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(static_cast<int>(a[i]));
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], av, bv[v]);
    }
    a += MR;
    b += NV;
  }
  const __m512 va = _mm512_set1_ps(alpha);
  if (beta == 0.0f) {
#pragma GCC unroll 32
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) _mm512_storeu_ps(c + i * ldc + v * 16, _mm512_mul_ps(va, acc[i][v]));
  } else {
    const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 32
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) {
        float* p = c + i * ldc + v * 16;
        _mm512_storeu_ps(p, _mm512_fmadd_ps(va, acc[i][v], _mm512_mul_ps(vb, _mm512_loadu_ps(p))));
      }
  }
}

// 14x32 tile (28 accumulators; a k-step is a bf16 pair, B two vectors of 16 columns). KC counts bf16
// depth values: 512 (256 k-steps) keeps the 32 x 512 B micro-panel at 32 KiB and the 336 x 512 A
// block at 336 KiB.
const KernelSet kAvx512Bf16 = {"avx512bf16 14x32", 14, 32, 2, 2, 336, 512, 4096,
                               packAvx512Bf16Pairs, packAvx512Bf16Pairs, microBf16<14, 2>, nullptr};

}  // namespace

double peakChunkAvx512Bf16(int64_t iters) {
  __m512 acc[16];
  for (int j = 0; j < 16; j++) acc[j] = _mm512_set1_ps(static_cast<float>(j));
  // Pairs of small bf16 values (1/256 and its negative): the products cancel, so acc stays bounded.
  const __m512bh x = (__m512bh)_mm512_set1_epi32(0x3b80bb80);
  const __m512bh y = (__m512bh)_mm512_set1_epi32(0x3f803f80);
  for (int64_t it = 0; it < iters; it++) {
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++) acc[j] = _mm512_dpbf16_ps(acc[j], x, y);
  }
  __m512 s = acc[0];
  for (int j = 1; j < 16; j++) s = _mm512_add_ps(s, acc[j]);
  volatile float sink = _mm512_reduce_add_ps(s);
  (void)sink;
  return static_cast<double>(iters) * 16 * 32 * 2;
}

const KernelSet* avx512Bf16Kernels(DType a) { return a == DType::BF16 ? &kAvx512Bf16 : nullptr; }

}  // namespace gemm
}  // namespace graft
#pragma GCC pop_options
