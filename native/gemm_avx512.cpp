// AVX-512 float32 GEMM: the 8x48 register-blocked microkernel, AVX-512 packers (float32, and the
// bfloat16 pair layout used by the avx512_bf16 kernel) and the zmm FMA peak loop.
//
// Compiled for AVX-512 with a target pragma (the add-on itself targets baseline x86-64), so nothing
// here may be reached unless detectIsa() says the CPU has it. For the same reason this file uses no
// header templates or inline library functions (std::min etc.): a non-inlined copy compiled for
// AVX-512 could be picked by the linker for baseline callers elsewhere.
// Headers first: their inline functions and intrinsics then keep their own targets, not this file's.
#include <immintrin.h>

#include "gemm.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma,avx2")

#include "transpose_avx512.h"


namespace graft {
namespace gemm {
namespace {

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t clamp16(int64_t v) { return v < 0 ? 0 : (v > 16 ? 16 : v); }
inline __mmask16 mask16(int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }  // n in [0, 16]
inline __mmask32 mask32(int64_t n) { return n >= 32 ? 0xffffffffu : static_cast<__mmask32>((1u << n) - 1u); }

// ---------------------------------------------------------------------------------------------
// Microkernel. MR rows of C by NV zmm vectors (NV * 16 columns); acc stays in registers
// (MR * NV + NV + 1 <= 32). Per k-step: NV aligned loads of B, MR broadcasts of A fused into the
// FMAs as embedded {1to16} memory operands.
template <int MR, int NV>
void microF32(int64_t ksteps, const void* ap, const void* bp, float* c, int64_t ldc, float alpha, float beta) {
  const float* a = static_cast<const float*>(ap);
  const float* b = static_cast<const float*>(bp);
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
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) bv[v] = _mm512_load_ps(b + v * 16);
#pragma GCC unroll 32
    for (int i = 0; i < MR; i++) {
      const __m512 av = _mm512_set1_ps(a[i]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) acc[i][v] = _mm512_fmadd_ps(av, bv[v], acc[i][v]);
    }
    a += MR;
    b += NV * 16;
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


// Transposing pack of 32-bit units: index i's depth run is contiguous. Unit (i, u) is loaded by
// loadRow(i, u0) (16 units from u0, zero past the end) and lives at base + i * rowBytes + u * 4.
// Output slot (u, i) at dst[u * w + i]; a panel holds unitsPad >= units units, the ones past
// `units` zero-filled (depth padding for kernels that step through whole depth blocks). Done in 16x16 blocks; while one group of 16 indices is
// transposed, the next group's rows are prefetched (the source is often cold, e.g. a weight
// matrix [out, in] used transposed, and 16 concurrent strided rows defeat the hardware prefetcher).
template <typename LoadRow>
void packTransposed32(const char* base, int64_t rowBytes, int64_t count, int64_t units, int64_t unitsPad, int w,
                      uint32_t* dst, LoadRow loadRow) {
  for (int64_t i0 = 0; i0 < count; i0 += w) {
    const int64_t wn = min64(w, count - i0);
    uint32_t* panel = dst + (i0 / w) * unitsPad * w;
    for (int64_t u = units * w; u < unitsPad * w; u += 16)
      _mm512_storeu_si512(panel + u, _mm512_setzero_si512());  // w is a multiple of 16
    for (int sub = 0; sub < w; sub += 16) {
      const int64_t gn = clamp16(wn - sub);
      // The next group of 16 indices (in this panel or the next), clipped to the source.
      const int64_t nextI = i0 + sub + 16 < i0 + w ? i0 + sub + 16 : i0 + w;
      const int64_t nextN = nextI < count ? min64(16, count - nextI) : 0;
      const __mmask16 store = mask16(min64(16, w - sub));
      for (int64_t u0 = 0; u0 < units; u0 += 16) {
        const int64_t un = min64(16, units - u0);
        for (int64_t j = 0; j < nextN; j++)
          _mm_prefetch(base + (nextI + j) * rowBytes + u0 * 4, _MM_HINT_T0);
        __m512 r[16];
        if (gn == 16) {
#pragma GCC unroll 16
          for (int j = 0; j < 16; j++) r[j] = loadRow(i0 + sub + j, u0);
        } else {
          for (int j = 0; j < 16; j++) r[j] = j < gn ? loadRow(i0 + sub + j, u0) : _mm512_setzero_ps();
        }
        transpose16(r);
        if (un == 16) {
#pragma GCC unroll 16
          for (int u = 0; u < 16; u++) _mm512_mask_storeu_ps(panel + (u0 + u) * w + sub, store, r[u]);
        } else {
          for (int64_t u = 0; u < un; u++) _mm512_mask_storeu_ps(panel + (u0 + u) * w + sub, store, r[u]);
        }
      }
    }
  }
}

void packF32(const void* srcv, int64_t si, int64_t sp, int64_t count, int64_t kc, int w, void* dstv) {
  const float* src = static_cast<const float*>(srcv);
  float* dst = static_cast<float*>(dstv);
  if (sp == 1 && si != 1) {
    packTransposed32(static_cast<const char*>(srcv), si * 4, count, kc, kc, w, reinterpret_cast<uint32_t*>(dst),
                     [&](int64_t i, int64_t u0) {
                       return _mm512_maskz_loadu_ps(mask16(min64(16, kc - u0)), src + i * si + u0);
                     });
    return;
  }
  // Consecutive indices are contiguous: each depth step is a (masked) vector copy. The walk goes by
  // groups of 8 depth rows, then panel by panel: the source is read as 8 sequential streams (row by
  // row), and each panel receives 8 consecutive steps (a depth-outer walk would scatter every store
  // 32 KiB apart, onto the same cache sets).
  const int64_t panels = (count + w - 1) / w;
  for (int64_t q0 = 0; q0 < kc; q0 += 8) {
    const int64_t q1 = min64(kc, q0 + 8);
    for (int64_t p = 0; p < panels; p++) {
      const int64_t wn = min64(w, count - p * w);
      float* out = dst + p * kc * w;
      const float* in = src + p * w;
      // Prefetch this panel's slice of the next group of depth rows.
      for (int64_t q = q0 + 8; q < min64(kc, q0 + 16); q++) {
        _mm_prefetch(reinterpret_cast<const char*>(in + q * sp), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(in + q * sp + wn - 1), _MM_HINT_T0);
      }
      if (wn == 32 && w == 32) {
        for (int64_t q = q0; q < q1; q++) {
          _mm512_store_ps(out + q * 32, _mm512_loadu_ps(in + q * sp));
          _mm512_store_ps(out + q * 32 + 16, _mm512_loadu_ps(in + q * sp + 16));
        }
      } else {
        for (int64_t q = q0; q < q1; q++)
          for (int sub = 0; sub < w; sub += 16) {
            const __m512 v = _mm512_maskz_loadu_ps(mask16(clamp16(wn - sub)), in + q * sp + sub);
            _mm512_mask_storeu_ps(out + q * w + sub, mask16(min64(16, w - sub)), v);
          }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
template <int MR, int NV>
constexpr KernelSet f32Set(const char* name, int64_t mc, int64_t kc, int64_t nc) {
  return KernelSet{name, MR, NV * 16, 1, 4, mc, kc, nc, packF32, packF32, microF32<MR, NV>, nullptr};
}

// 8x48: 24 accumulators + 3 B vectors + 1 broadcast register, 11 loads per 24 FMAs (14x32 needs 16
// per 28). In isolation on a Sapphire Rapids core it ran at ~90% of the FMA peak against ~85% for
// 14x32, and whole GEMMs of the benchmark shapes, timed alternately with a 14x32 build in one
// process, 2-5% faster (9x48 was close behind). KC = 1024: a microkernel call's fixed cost (zeroing
// the accumulators, prefetching and updating the 8 x 48 C tile) is paid per KC depth values, and C is
// read and written once per KC. The 8 x 1024 A micro-panels (32 KiB) and the 48 x 1024 B micro-panel
// (192 KiB) stream from L2, the MC x KC A block (224 x 1024 floats, 896 KiB) stays in the 2 MiB L2
// while the B panels pass, and the NC x KC B block (up to 16 MiB, shared by the threads) lives in L3.
// The driver evens out the K and N blocks (K = 4864 runs as 5 x 973, not 4 x 1024 + 768).
const KernelSet kAvx512F32 = f32Set<8, 3>("avx512-f32 8x48", 224, 1024, 4080);

// ---------------------------------------------------------------------------------------------
// bf16 pair packing. Output u16 slot ((s * w + i) * 2 + q) = X(i, 2s + q) for s < ceil(kc / 2);
// a panel holds kstepsPad k-steps, the ones past ceil(kc / 2) zero.
void packBf16Pairs(const void* srcv, int64_t si, int64_t sp, int64_t count, int64_t kc, int w, void* dstv,
                   int64_t kstepsPad) {
  const uint16_t* src = static_cast<const uint16_t*>(srcv);
  uint16_t* dst = static_cast<uint16_t*>(dstv);
  const int64_t ksteps = (kc + 1) / 2;
  if (sp == 1 && si != 1) {
    // A pair X(i, 2s), X(i, 2s + 1) is one 32-bit unit of index i's row: transpose units, loading
    // with a 16-bit-granular mask so an odd kc reads nothing past the row and pads with zero.
    packTransposed32(static_cast<const char*>(srcv), si * 2, count, ksteps, kstepsPad, w,
                     reinterpret_cast<uint32_t*>(dst), [&](int64_t i, int64_t u0) {
      const __mmask32 m = mask32(min64(32, kc - 2 * u0));
      return _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(m, src + i * si + 2 * u0));
    });
    return;
  }
  // Consecutive indices are contiguous: interleave depth rows 2s and 2s + 1, 16 indices at a time,
  // in groups of 4 k-steps per panel (see packF32 for the walk order).
  const __m512i interleave = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8,
                                              39, 7, 38, 6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
  const int64_t panels = (count + w - 1) / w;
  for (int64_t s0 = 0; s0 < ksteps; s0 += 4) {
    const int64_t s1 = min64(ksteps, s0 + 4);
    for (int64_t p = 0; p < panels; p++) {
      const int64_t wn = min64(w, count - p * w);
      for (int64_t s = s0; s < s1; s++) {
        const uint16_t* r0 = src + 2 * s * sp + p * w;
        const bool hasR1 = 2 * s + 1 < kc;
        uint16_t* out = dst + (p * kstepsPad + s) * 2 * w;
        if (s + 4 < ksteps) {
          _mm_prefetch(reinterpret_cast<const char*>(r0 + 8 * sp), _MM_HINT_T0);
          _mm_prefetch(reinterpret_cast<const char*>(r0 + 9 * sp), _MM_HINT_T0);
        }
        for (int sub = 0; sub < w; sub += 16) {
          const __mmask32 lm = static_cast<__mmask32>(mask16(clamp16(wn - sub)));
          const __m512i v0 = _mm512_maskz_loadu_epi16(lm, r0 + sub);
          const __m512i v1 = hasR1 ? _mm512_maskz_loadu_epi16(lm, r0 + sp + sub) : _mm512_setzero_si512();
          _mm512_mask_storeu_epi16(out + sub * 2, mask32(2 * min64(16, w - sub)), _mm512_permutex2var_epi16(v0, interleave, v1));
        }
      }
    }
  }
  for (int64_t p = 0; p < panels; p++)
    for (int64_t u = ksteps * w; u < kstepsPad * w; u += 16)
      _mm512_storeu_si512(dst + p * kstepsPad * 2 * w + 2 * u, _mm512_setzero_si512());
}

}  // namespace

void packAvx512Bf16Pairs(const void* src, int64_t si, int64_t sp, int64_t count, int64_t kc, int w, void* dst) {
  packBf16Pairs(src, si, sp, count, kc, w, dst, (kc + 1) / 2);
}

// AMX B operand: the pair layout with the depth padded to whole 32-deep blocks (16 k-steps), so a
// 16-column tile of one block is 16 rows of 64 bytes (row stride 2 * w bytes).
void packAmxBf16B(const void* src, int64_t si, int64_t sp, int64_t count, int64_t kc, int w, void* dst) {
  packBf16Pairs(src, si, sp, count, kc, w, dst, (kc + 31) / 32 * 16);
}

// AMX A operand: panel p, depth block d (32 values) is a [w][32] row-major block at
// dst + (p * blocks + d) * w * 32: index i's 32 depth values contiguous (one 64-byte tile row).
void packAmxBf16A(const void* srcv, int64_t si, int64_t sp, int64_t count, int64_t kc, int w, void* dstv) {
  const uint16_t* src = static_cast<const uint16_t*>(srcv);
  uint16_t* dst = static_cast<uint16_t*>(dstv);
  const int64_t blocks = (kc + 31) / 32;
  const int64_t panels = (count + w - 1) / w;
  if (sp == 1) {
    // Depth runs are contiguous: masked 64-byte row copies.
    for (int64_t p = 0; p < panels; p++) {
      const int64_t wn = min64(w, count - p * w);
      uint16_t* panel = dst + p * blocks * w * 32;
      for (int64_t i = 0; i < w; i++) {
        const uint16_t* row = src + (p * w + i) * si;
        if (i < wn && i + 4 < wn) _mm_prefetch(reinterpret_cast<const char*>(row + 4 * si), _MM_HINT_T0);
        for (int64_t d = 0; d < blocks; d++) {
          const __m512i v = i < wn ? _mm512_maskz_loadu_epi16(mask32(min64(32, kc - d * 32)), row + d * 32)
                                   : _mm512_setzero_si512();
          _mm512_store_si512(panel + (d * w + i) * 32, v);
        }
      }
    }
    return;
  }
  // Consecutive indices are contiguous (si == 1): for 32 depth rows of 16 indices, interleave row
  // pairs into 32-bit units (index, k-step), then transpose the 16 x 16 units so that each index's 16
  // pairs (32 depth values) form one output row.
  const __m512i lo = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8,
                                      39, 7, 38, 6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
  const __m512i hi = _mm512_set_epi16(63, 31, 62, 30, 61, 29, 60, 28, 59, 27, 58, 26, 57, 25, 56, 24,
                                      55, 23, 54, 22, 53, 21, 52, 20, 51, 19, 50, 18, 49, 17, 48, 16);
  for (int64_t p = 0; p < panels; p++) {
    uint16_t* panel = dst + p * blocks * w * 32;
    for (int sub = 0; sub < w; sub += 32) {
      const int64_t n = p * w + sub < count ? min64(32, count - p * w - sub) : 0;
      const __mmask32 m = mask32(n);
      for (int64_t d = 0; d < blocks; d++) {
        __m512 l[16], h[16];
#pragma GCC unroll 16
        for (int s = 0; s < 16; s++) {
          const int64_t q = d * 32 + 2 * s;
          const uint16_t* r = src + q * sp + p * w + sub;
          const __m512i v0 = q < kc ? _mm512_maskz_loadu_epi16(m, r) : _mm512_setzero_si512();
          const __m512i v1 = q + 1 < kc ? _mm512_maskz_loadu_epi16(m, r + sp) : _mm512_setzero_si512();
          l[s] = _mm512_castsi512_ps(_mm512_permutex2var_epi16(v0, lo, v1));
          h[s] = _mm512_castsi512_ps(_mm512_permutex2var_epi16(v0, hi, v1));
        }
        transpose16(l);
        transpose16(h);
        uint16_t* out = panel + (d * w + sub) * 32;
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) {
          _mm512_store_ps(reinterpret_cast<float*>(out + i * 32), l[i]);
          _mm512_store_ps(reinterpret_cast<float*>(out + (16 + i) * 32), h[i]);
        }
      }
    }
  }
}

double peakChunkAvx512(int64_t iters) {
  // 16 independent chains (FMA latency 4 x 2 pipes needs at least 8). acc -> acc * x + y converges
  // to y / (1 - x), so values stay normal.
  __m512 acc[16];
  for (int j = 0; j < 16; j++) acc[j] = _mm512_set1_ps(static_cast<float>(j));
  const __m512 x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(0.001f);
  for (int64_t it = 0; it < iters; it++) {
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++) acc[j] = _mm512_fmadd_ps(acc[j], x, y);
  }
  __m512 s = acc[0];
  for (int j = 1; j < 16; j++) s = _mm512_add_ps(s, acc[j]);
  volatile float sink = _mm512_reduce_add_ps(s);
  (void)sink;
  return static_cast<double>(iters) * 16 * 16 * 2;
}

const KernelSet* avx512Kernels(DType a) {
  static const KernelSet bf16ToF32 = [] {
    KernelSet k = kAvx512F32;
    k.name = "avx512-bf16->f32 8x48";
    k.packA = packGenericBf16ToF32;
    k.packB = packGenericBf16ToF32;
    return k;
  }();
  return a == DType::BF16 ? &bf16ToF32 : &kAvx512F32;
}

}  // namespace gemm
}  // namespace graft
#pragma GCC pop_options
