// AVX2 quant kernels (see quant.h): int8 dot products with vpmaddubsw (unsigned x signed byte pairs
// to int16, never saturating here: |w| <= 128, |x| <= 127 and q4 nibbles <= 15) one block of 32 per
// 256-bit step, four weight rows per pass; float GEMV with FMA.
// Headers first: their inline functions keep their own targets, not this file's.
#include <immintrin.h>

#include "quant.h"
#include "quant_scalar.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace graft {
namespace quant {
namespace {

#define QI static inline __attribute__((always_inline))

QI float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Sums of 4 adjacent u8 x s8 products into 8 int32 lanes.
QI __m256i dot4(__m256i u, __m256i s) { return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)); }

template <int R>
QI void q8Dot(const QActs& x, int64_t m, const int8_t* w0, const uint16_t* d0, float* r) {
  const int64_t K = x.K, nb = K / kBlock;
  const int8_t* xq = x.q + m * K;
  const float* xd = x.d + m * nb;
  __m256 acc[R];
  for (int i = 0; i < R; i++) acc[i] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; b++) {
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + b * kBlock));
    for (int i = 0; i < R; i++) {
      const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w0 + i * K + b * kBlock));
      const __m256i dot = dot4(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv));
      acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(_cvtsh_ss(d0[i * nb + b]) * xd[b]), acc[i]);
    }
  }
  for (int i = 0; i < R; i++) r[i] = hsum8(acc[i]);
}

template <int R>
QI void q4Dot(const QActs& x, int64_t m, const uint8_t* w0, const uint16_t* d0, float* r) {
  const int64_t K = x.K, nb = K / kBlock, rowBytes = K / 2;
  const int8_t* xq = x.q + m * K;
  const float* xd = x.d + m * nb;
  const int32_t* xs = x.s + m * nb;
  const __m128i low4 = _mm_set1_epi8(0x0f);
  __m256 acc[R];
  float corr[R];
  for (int i = 0; i < R; i++) {
    acc[i] = _mm256_setzero_ps();
    corr[i] = 0.0f;
  }
  for (int64_t b = 0; b < nb; b++) {
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + b * kBlock));
    for (int i = 0; i < R; i++) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w0 + i * rowBytes + b * 16));
      const __m256i q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), low4), _mm_and_si128(v, low4));
      const float s = _cvtsh_ss(d0[i * nb + b]) * xd[b];
      acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot4(q, xv)), _mm256_set1_ps(s), acc[i]);
      corr[i] += s * float(xs[b]);
    }
  }
  for (int i = 0; i < R; i++) r[i] = hsum8(acc[i]) - 8.0f * corr[i];
}

void q8Avx2(const QActs& x, const uint8_t* wq, const uint16_t* wd, int64_t n0, int64_t n1, void* y, int64_t ldy,
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

void q4Avx2(const QActs& x, const uint8_t* wq, const uint16_t* wd, int64_t n0, int64_t n1, void* y, int64_t ldy,
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

QI __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
QI __m256 load8(const uint16_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
}
QI float toF(float v) { return v; }
QI float toF(uint16_t v) { return qBf16ToF32(v); }

template <int M, int R, typename T>
QI void gemvTile(const T* x, int64_t ldx, const T* w, int64_t ldw, int64_t K, int64_t n, void* y, int64_t ldy, bool yBf16,
                 float alpha) {
  __m256 acc[M][R];
  for (int m = 0; m < M; m++)
    for (int i = 0; i < R; i++) acc[m][i] = _mm256_setzero_ps();
  const int64_t K8 = K & ~int64_t(7);
  for (int64_t k = 0; k < K8; k += 8) {
    __m256 xr[M];
    for (int m = 0; m < M; m++) xr[m] = load8(x + m * ldx + k);
    for (int i = 0; i < R; i++) {
      const __m256 wr = load8(w + (n + i) * ldw + k);
      for (int m = 0; m < M; m++) acc[m][i] = _mm256_fmadd_ps(xr[m], wr, acc[m][i]);
    }
  }
  for (int m = 0; m < M; m++)
    for (int i = 0; i < R; i++) {
      float s = hsum8(acc[m][i]);
      for (int64_t k = K8; k < K; k++) s += toF(x[m * ldx + k]) * toF(w[(n + i) * ldw + k]);
      qStore(y, m * ldy + n + i, yBf16, alpha * s);
    }
}

template <int M, typename T>
void gemvRows(const T* x, int64_t ldx, const T* w, int64_t ldw, int64_t K, int64_t n0, int64_t n1, void* y, int64_t ldy,
              bool yBf16, float alpha) {
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) gemvTile<M, 4>(x, ldx, w, ldw, K, n, y, ldy, yBf16, alpha);
  for (; n < n1; n++) gemvTile<M, 1>(x, ldx, w, ldw, K, n, y, ldy, yBf16, alpha);
}

template <typename T>
void gemvAvx2(const void* xv, int64_t ldx, const void* wv, int64_t ldw, int64_t M, int64_t K, int64_t n0, int64_t n1,
              void* y, int64_t ldy, bool yBf16, float alpha) {
  const T* w = static_cast<const T*>(wv);
  for (int64_t m0 = 0; m0 < M; m0 += 4) {
    const T* x = static_cast<const T*>(xv) + m0 * ldx;
    char* ym = static_cast<char*>(y) + m0 * ldy * (yBf16 ? 2 : 4);
    switch (M - m0 >= 4 ? 4 : M - m0) {
      case 1: gemvRows<1>(x, ldx, w, ldw, K, n0, n1, ym, ldy, yBf16, alpha); break;
      case 2: gemvRows<2>(x, ldx, w, ldw, K, n0, n1, ym, ldy, yBf16, alpha); break;
      case 3: gemvRows<3>(x, ldx, w, ldw, K, n0, n1, ym, ldy, yBf16, alpha); break;
      default: gemvRows<4>(x, ldx, w, ldw, K, n0, n1, ym, ldy, yBf16, alpha); break;
    }
  }
}

uint64_t streamAvx2(const uint8_t* p, int64_t n) {
  __m256i a = _mm256_setzero_si256(), b = a;
  for (int64_t i = 0; i < n; i += 64) {
    a = _mm256_add_epi64(a, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    b = _mm256_add_epi64(b, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
  }
  a = _mm256_xor_si256(a, b);
  return uint64_t(_mm256_extract_epi64(a, 0)) ^ uint64_t(_mm256_extract_epi64(a, 3));
}

float dotAvx2(const float* a, const float* b, int64_t K) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0;
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 8), _mm256_loadu_ps(b + k + 8), s1);
  }
  float s = hsum8(_mm256_add_ps(s0, s1));
  for (; k < K; k++) s += a[k] * b[k];
  return s;
}

}  // namespace

void fillAvx2(Kernels& k) {
  k.name = "avx2";
  k.stream = streamAvx2;
  k.dot = dotAvx2;
  k.q8 = q8Avx2;
  k.q4 = q4Avx2;
  k.gemvF32 = gemvAvx2<float>;
  k.gemvBf16 = gemvAvx2<uint16_t>;
}

}  // namespace quant
}  // namespace graft

#pragma GCC pop_options
