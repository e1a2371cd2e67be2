// AVX-512 quant kernels (see quant.h): int8 dot products with vpdpbusd (AVX512-VNNI), two blocks
// of 32 per 512-bit step, four weight rows per pass so each activation load serves four rows; float
// GEMV with FMA (and vdpbf16ps for bf16 where the CPU has avx512_bf16). Reached only when the binding
// has checked the CPU for these features.
// Headers first: their inline functions keep their own targets, not this file's.
#include <immintrin.h>

#include "quant.h"
#include "quant_scalar.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")

namespace graft {
namespace quant {
namespace {

#define QI static inline __attribute__((always_inline))

QI float hsum256i(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return float(_mm_cvtsi128_si32(s));
}

QI __m512 pairScale(float s0, float s1) { return _mm512_insertf32x8(_mm512_set1_ps(s0), _mm256_set1_ps(s1), 1); }

// Rows w0 + i * K (i < R) against activation row m: r[i] = dot. Groups of 8 blocks take the 8
// scales dw * dx of a row from one fp16 load; a pair of blocks' scales is then one permute.
template <int R>
QI void q8Dot(const QActs& x, int64_t m, const int8_t* w0, const uint16_t* d0, float* r) {
  const int64_t K = x.K, nb = K / kBlock;
  const int8_t* xq = x.q + m * K;
  const float* xd = x.d + m * nb;
  const __m512i pairIdx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  __m512 acc[R];
  for (int i = 0; i < R; i++) acc[i] = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8) {
    const __m256 dx = _mm256_loadu_ps(xd + b);
    __m512 sv[R];
    for (int i = 0; i < R; i++)
      sv[i] = _mm512_castps256_ps512(_mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(d0 + i * nb + b))), dx));
    for (int p = 0; p < 4; p++) {
      const __m512i xv = _mm512_loadu_si512(xq + (b + 2 * p) * kBlock);
      const __m512i idx = _mm512_add_epi32(pairIdx, _mm512_set1_epi32(2 * p));
      for (int i = 0; i < R; i++) {
        // The same place R rows on (the next call's rows): keeps DRAM requests in flight.
        _mm_prefetch(reinterpret_cast<const char*>(w0 + (i + R) * K + (b + 2 * p) * kBlock), _MM_HINT_T0);
        const __m512i wv = _mm512_loadu_si512(w0 + i * K + (b + 2 * p) * kBlock);
        // |w| (unsigned) times x carrying w's sign: vpdpbusd multiplies unsigned by signed bytes.
        const __m512i sx = _mm512_mask_sub_epi8(xv, _mm512_movepi8_mask(wv), _mm512_setzero_si512(), xv);
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(wv), sx);
        acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(idx, sv[i]), acc[i]);
      }
    }
  }
  for (; b + 2 <= nb; b += 2) {
    const __m512i xv = _mm512_loadu_si512(xq + b * kBlock);
    for (int i = 0; i < R; i++) {
      const __m512i wv = _mm512_loadu_si512(w0 + i * K + b * kBlock);
      const __m512i sx = _mm512_mask_sub_epi8(xv, _mm512_movepi8_mask(wv), _mm512_setzero_si512(), xv);
      const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(wv), sx);
      const __m512 sc = pairScale(_cvtsh_ss(d0[i * nb + b]) * xd[b], _cvtsh_ss(d0[i * nb + b + 1]) * xd[b + 1]);
      acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), sc, acc[i]);
    }
  }
  float tail[R];
  for (int i = 0; i < R; i++) tail[i] = 0.0f;
  if (b < nb) {
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + b * kBlock));
    for (int i = 0; i < R; i++) {
      const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w0 + i * K + b * kBlock));
      const __m256i sx = _mm256_mask_sub_epi8(xv, _mm256_movepi8_mask(wv), _mm256_setzero_si256(), xv);
      const __m256i dot = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(wv), sx);
      tail[i] = hsum256i(dot) * (_cvtsh_ss(d0[i * nb + b]) * xd[b]);
    }
  }
  for (int i = 0; i < R; i++) r[i] = _mm512_reduce_add_ps(acc[i]) + tail[i];
}

template <int R>
QI void q4Dot(const QActs& x, int64_t m, const uint8_t* w0, const uint16_t* d0, float* r) {
  const int64_t K = x.K, nb = K / kBlock, rowBytes = K / 2;
  const int8_t* xq = x.q + m * K;
  const int8_t* x4 = x.q4 + m * K;
  const float* xd = x.d + m * nb;
  const int32_t* xs = x.s + m * nb;
  __m512 acc[R];
  __m256 corr[R];
  for (int i = 0; i < R; i++) {
    acc[i] = _mm512_setzero_ps();
    corr[i] = _mm256_setzero_ps();
  }
  // Groups of 8 blocks: the 8 scales dw * dx of a row come from one fp16 load, the -8 offset's
  // correction sum(scale * block sum of x) is one FMA, and a quad's scales are one permute. A quad of
  // blocks is one 64-byte load of weights; with x in q4 order its low nibbles (elements 0-15 of each
  // block) meet x's first 64 bytes and its high nibbles (elements 16-31) the next 64, so int32 lanes
  // 4j .. 4j + 3 of both dots belong to block b + j.
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  const __m512i quadIdx = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8) {
    const __m256 dx = _mm256_loadu_ps(xd + b);
    const __m256 sx = _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xs + b)));
    __m512 sv[R];
    for (int i = 0; i < R; i++) {
      const __m256 s8 = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(d0 + i * nb + b))), dx);
      corr[i] = _mm256_fmadd_ps(s8, sx, corr[i]);
      sv[i] = _mm512_castps256_ps512(s8);
    }
    for (int p = 0; p < 2; p++) {
      const __m512i xlo = _mm512_loadu_si512(x4 + (b + 4 * p) * kBlock);
      const __m512i xhi = _mm512_loadu_si512(x4 + (b + 4 * p) * kBlock + 64);
      const __m512i idx = _mm512_add_epi32(quadIdx, _mm512_set1_epi32(4 * p));
      for (int i = 0; i < R; i++) {
        _mm_prefetch(reinterpret_cast<const char*>(w0 + (i + R) * rowBytes + (b + 4 * p) * 16), _MM_HINT_T0);
        const __m512i v = _mm512_loadu_si512(w0 + i * rowBytes + (b + 4 * p) * 16);
        const __m512i lo = _mm512_and_si512(v, low4);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, xlo), hi, xhi);
        acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(idx, sv[i]), acc[i]);
      }
    }
  }
  // The last nb % 8 blocks, a block at a time (x in natural order).
  float tail[R];
  for (int i = 0; i < R; i++) tail[i] = 0.0f;
  for (; b < nb; b++) {
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + b * kBlock));
    for (int i = 0; i < R; i++) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w0 + i * rowBytes + b * 16));
      const __m128i lo = _mm_and_si128(v, _mm_set1_epi8(0x0f));
      const __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(0x0f));
      const __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
      const __m256i dot = _mm256_dpbusd_epi32(_mm256_setzero_si256(), q, xv);
      tail[i] += (hsum256i(dot) - 8.0f * float(xs[b])) * (_cvtsh_ss(d0[i * nb + b]) * xd[b]);
    }
  }
  for (int i = 0; i < R; i++) r[i] = _mm512_reduce_add_ps(acc[i]) - 8.0f * _mm512_reduce_add_ps(_mm512_zextps256_ps512(corr[i])) + tail[i];
}

void q8Avx512(const QActs& x, const uint8_t* wq, const uint16_t* wd, int64_t n0, int64_t n1, void* y, int64_t ldy,
              bool yBf16) {
  const int64_t K = x.K, nb = K / kBlock;
  const int8_t* w = reinterpret_cast<const int8_t*>(wq);
  float r[4];
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4)
    for (int64_t m = 0; m < x.M; m++) {
      q8Dot<4>(x, m, w + n * K, wd + n * nb, r);
      for (int i = 0; i < 4; i++) qStore(y, m * ldy + n + i, yBf16, r[i]);
    }
  for (; n < n1; n++)
    for (int64_t m = 0; m < x.M; m++) {
      q8Dot<1>(x, m, w + n * K, wd + n * nb, r);
      qStore(y, m * ldy + n, yBf16, r[0]);
    }
}

void q4Avx512(const QActs& x, const uint8_t* wq, const uint16_t* wd, int64_t n0, int64_t n1, void* y, int64_t ldy,
              bool yBf16) {
  const int64_t K = x.K, nb = K / kBlock;
  float r[4];
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4)
    for (int64_t m = 0; m < x.M; m++) {
      q4Dot<4>(x, m, wq + n * (K / 2), wd + n * nb, r);
      for (int i = 0; i < 4; i++) qStore(y, m * ldy + n + i, yBf16, r[i]);
    }
  for (; n < n1; n++)
    for (int64_t m = 0; m < x.M; m++) {
      q4Dot<1>(x, m, wq + n * (K / 2), wd + n * nb, r);
      qStore(y, m * ldy + n, yBf16, r[0]);
    }
}

// 16 floats of row p from k (masked past K).
QI __m512 loadF32(const float* p, int64_t k, int64_t K) {
  if (k + 16 <= K) return _mm512_loadu_ps(p + k);
  return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << (K - k)) - 1), p + k);
}
QI __m512 loadBf16(const uint16_t* p, int64_t k, int64_t K) {
  __m256i h;
  if (k + 16 <= K) h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + k));
  else h = _mm256_maskz_loadu_epi16(static_cast<__mmask16>((1u << (K - k)) - 1), p + k);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// M activation rows x R weight rows, 16 values of K per step.
template <int M, int R, bool BF16>
QI void gemvTile(const void* xv, int64_t ldx, const void* wv, int64_t ldw, int64_t K, int64_t n, void* y, int64_t ldy,
                 bool yBf16, float alpha) {
  __m512 acc[M][R];
  for (int m = 0; m < M; m++)
    for (int i = 0; i < R; i++) acc[m][i] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; k += 16) {
    __m512 xr[M];
    for (int m = 0; m < M; m++)
      xr[m] = BF16 ? loadBf16(static_cast<const uint16_t*>(xv) + m * ldx, k, K)
                   : loadF32(static_cast<const float*>(xv) + m * ldx, k, K);
    for (int i = 0; i < R; i++) {
      _mm_prefetch(static_cast<const char*>(wv) + ((n + i + R) * ldw + k) * (BF16 ? 2 : 4), _MM_HINT_T0);
      const __m512 wr = BF16 ? loadBf16(static_cast<const uint16_t*>(wv) + (n + i) * ldw, k, K)
                             : loadF32(static_cast<const float*>(wv) + (n + i) * ldw, k, K);
      for (int m = 0; m < M; m++) acc[m][i] = _mm512_fmadd_ps(xr[m], wr, acc[m][i]);
    }
  }
  for (int m = 0; m < M; m++)
    for (int i = 0; i < R; i++) qStore(y, m * ldy + n + i, yBf16, alpha * _mm512_reduce_add_ps(acc[m][i]));
}

template <int M, bool BF16>
void gemvRows(const void* x, int64_t ldx, const void* w, int64_t ldw, int64_t K, int64_t n0, int64_t n1, void* y,
              int64_t ldy, bool yBf16, float alpha) {
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) gemvTile<M, 4, BF16>(x, ldx, w, ldw, K, n, y, ldy, yBf16, alpha);
  for (; n < n1; n++) gemvTile<M, 1, BF16>(x, ldx, w, ldw, K, n, y, ldy, yBf16, alpha);
}

template <bool BF16>
void gemvAvx512(const void* x, int64_t ldx, const void* w, int64_t ldw, int64_t M, int64_t K, int64_t n0, int64_t n1,
                void* y, int64_t ldy, bool yBf16, float alpha) {
  const size_t es = BF16 ? 2 : 4;
  for (int64_t m0 = 0; m0 < M; m0 += 4) {
    const void* xm = static_cast<const char*>(x) + m0 * ldx * es;
    char* ym = static_cast<char*>(y) + m0 * ldy * (yBf16 ? 2 : 4);
    switch (M - m0 >= 4 ? 4 : M - m0) {
      case 1: gemvRows<1, BF16>(xm, ldx, w, ldw, K, n0, n1, ym, ldy, yBf16, alpha); break;
      case 2: gemvRows<2, BF16>(xm, ldx, w, ldw, K, n0, n1, ym, ldy, yBf16, alpha); break;
      case 3: gemvRows<3, BF16>(xm, ldx, w, ldw, K, n0, n1, ym, ldy, yBf16, alpha); break;
      default: gemvRows<4, BF16>(xm, ldx, w, ldw, K, n0, n1, ym, ldy, yBf16, alpha); break;
    }
  }
}

// 16 codes at a time: 8 bytes -> [hi0, lo0, hi1, lo1, ...] -> codebook lookup by vpermps.
void nf4DecodeAvx512(const uint8_t* packed, const float* absmax, int64_t blockSize, int64_t start, int64_t count,
                     float* out) {
  const __m512 book = _mm512_loadu_ps(kNf4Codebook);
  const __m128i low4 = _mm_set1_epi8(0x0f);
  int64_t j = 0;
  if (start % 16 == 0 && blockSize % 16 == 0) {
    for (; j + 16 <= count; j += 16) {
      const int64_t i = start + j;
      const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(packed + (i >> 1)));
      const __m128i codes = _mm_unpacklo_epi8(_mm_and_si128(_mm_srli_epi16(b, 4), low4), _mm_and_si128(b, low4));
      const __m512 v = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(codes), book);
      _mm512_storeu_ps(out + j, _mm512_mul_ps(v, _mm512_set1_ps(absmax[i / blockSize])));
    }
  }
  for (; j < count; j++) {
    const int64_t i = start + j;
    const uint8_t byte = packed[i >> 1];
    out[j] = kNf4Codebook[(i & 1) ? (byte & 0x0f) : (byte >> 4)] * absmax[i / blockSize];
  }
}

float dotAvx512(const float* a, const float* b, int64_t K) {
  __m512 s0 = _mm512_setzero_ps(), s1 = s0;
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + k), _mm512_loadu_ps(b + k), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + k + 16), _mm512_loadu_ps(b + k + 16), s1);
  }
  for (; k < K; k += 16) s0 = _mm512_fmadd_ps(loadF32(a, k, K), loadF32(b, k, K), s0);
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

uint64_t streamAvx512(const uint8_t* p, int64_t n) {
  __m512i a = _mm512_setzero_si512(), b = a;
  for (int64_t i = 0; i < n; i += 128) {
    a = _mm512_add_epi64(a, _mm512_loadu_si512(p + i));
    b = _mm512_add_epi64(b, _mm512_loadu_si512(p + i + 64));
  }
  return uint64_t(_mm512_reduce_add_epi64(_mm512_xor_si512(a, b)));
}

}  // namespace

void fillAvx512(Kernels& k) {
  k.name = "avx512vnni";
  k.stream = streamAvx512;
  k.nf4Decode = nf4DecodeAvx512;
  k.dot = dotAvx512;
  k.q8 = q8Avx512;
  k.q4 = q4Avx512;
  k.gemvF32 = gemvAvx512<false>;
  k.gemvBf16 = gemvAvx512<true>;
}

}  // namespace quant
}  // namespace graft

#pragma GCC pop_options

// bf16 GEMV with vdpbf16ps: 32 bf16 products per instruction (pairs summed in float32).
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c")

namespace graft {
namespace quant {
namespace {

QI __m512bh loadPairs(const uint16_t* p, int64_t k, int64_t K) {
  if (k + 32 <= K) return (__m512bh)_mm512_loadu_si512(p + k);
  const __mmask32 mask = K - k >= 32 ? ~0u : static_cast<__mmask32>((1ull << (K - k)) - 1);
  return (__m512bh)_mm512_maskz_loadu_epi16(mask, p + k);
}

template <int M, int R>
QI void dpTile(const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw, int64_t K, int64_t n, void* y,
               int64_t ldy, bool yBf16, float alpha) {
  __m512 acc[M][R];
  for (int m = 0; m < M; m++)
    for (int i = 0; i < R; i++) acc[m][i] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; k += 32) {
    __m512bh xr[M];
    for (int m = 0; m < M; m++) xr[m] = loadPairs(x + m * ldx, k, K);
    for (int i = 0; i < R; i++) {
      _mm_prefetch(reinterpret_cast<const char*>(w + (n + i + R) * ldw + k), _MM_HINT_T0);
      const __m512bh wr = loadPairs(w + (n + i) * ldw, k, K);
      for (int m = 0; m < M; m++) acc[m][i] = _mm512_dpbf16_ps(acc[m][i], xr[m], wr);
    }
  }
  for (int m = 0; m < M; m++)
    for (int i = 0; i < R; i++) qStore(y, m * ldy + n + i, yBf16, alpha * _mm512_reduce_add_ps(acc[m][i]));
}

template <int M>
void dpRows(const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw, int64_t K, int64_t n0, int64_t n1, void* y,
            int64_t ldy, bool yBf16, float alpha) {
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) dpTile<M, 4>(x, ldx, w, ldw, K, n, y, ldy, yBf16, alpha);
  for (; n < n1; n++) dpTile<M, 1>(x, ldx, w, ldw, K, n, y, ldy, yBf16, alpha);
}

void gemvDpBf16(const void* xv, int64_t ldx, const void* wv, int64_t ldw, int64_t M, int64_t K, int64_t n0, int64_t n1,
                void* y, int64_t ldy, bool yBf16, float alpha) {
  const uint16_t* w = static_cast<const uint16_t*>(wv);
  for (int64_t m0 = 0; m0 < M; m0 += 4) {
    const uint16_t* x = static_cast<const uint16_t*>(xv) + m0 * ldx;
    char* ym = static_cast<char*>(y) + m0 * ldy * (yBf16 ? 2 : 4);
    switch (M - m0 >= 4 ? 4 : M - m0) {
      case 1: dpRows<1>(x, ldx, w, ldw, K, n0, n1, ym, ldy, yBf16, alpha); break;
      case 2: dpRows<2>(x, ldx, w, ldw, K, n0, n1, ym, ldy, yBf16, alpha); break;
      case 3: dpRows<3>(x, ldx, w, ldw, K, n0, n1, ym, ldy, yBf16, alpha); break;
      default: dpRows<4>(x, ldx, w, ldw, K, n0, n1, ym, ldy, yBf16, alpha); break;
    }
  }
}

}  // namespace

void fillAvx512Bf16(Kernels& k) {
  fillAvx512(k);
  k.name = "avx512vnni+bf16";
  k.gemvBf16 = gemvDpBf16;
}

}  // namespace quant
}  // namespace graft

#pragma GCC pop_options
