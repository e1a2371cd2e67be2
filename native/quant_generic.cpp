// Portable scalar quant kernels (see quant.h): the fallback on CPUs without AVX2.
#include "quant.h"
#include "quant_scalar.h"

namespace graft {
namespace quant {

const float kNf4Codebook[16] = {-1.0f,
                                -0.6961928009986877f,
                                -0.5250730514526367f,
                                -0.39491748809814453f,
                                -0.28444138169288635f,
                                -0.18477343022823334f,
                                -0.09105003625154495f,
                                0.0f,
                                0.07958029955625534f,
                                0.16093020141124725f,
                                0.24611230194568634f,
                                0.33791524171829224f,
                                0.44070982933044434f,
                                0.5626170039176941f,
                                0.7229568362236023f,
                                1.0f};

namespace {

void nf4DecodeGeneric(const uint8_t* packed, const float* absmax, int64_t blockSize, int64_t start, int64_t count,
                      float* out) {
  for (int64_t j = 0; j < count; j++) {
    const int64_t i = start + j;
    const uint8_t byte = packed[i >> 1];
    const int code = (i & 1) ? (byte & 0x0f) : (byte >> 4);
    out[j] = kNf4Codebook[code] * absmax[i / blockSize];
  }
}

float dotGeneric(const float* a, const float* b, int64_t K) {
  float s = 0.0f;
  for (int64_t k = 0; k < K; k++) s += a[k] * b[k];
  return s;
}

void q8Generic(const QActs& x, const uint8_t* wq, const uint16_t* wd, int64_t n0, int64_t n1, void* y, int64_t ldy,
               bool yBf16) {
  const int64_t nb = x.K / kBlock;
  for (int64_t n = n0; n < n1; n++) {
    const int8_t* w = reinterpret_cast<const int8_t*>(wq) + n * x.K;
    const uint16_t* d = wd + n * nb;
    for (int64_t m = 0; m < x.M; m++) {
      const int8_t* q = x.q + m * x.K;
      float acc = 0.0f;
      for (int64_t b = 0; b < nb; b++) {
        int32_t s = 0;
        for (int j = 0; j < kBlock; j++) s += int32_t(w[b * kBlock + j]) * int32_t(q[b * kBlock + j]);
        acc += float(s) * (qF16ToF32(d[b]) * x.d[m * nb + b]);
      }
      qStore(y, m * ldy + n, yBf16, acc);
    }
  }
}

void q4Generic(const QActs& x, const uint8_t* wq, const uint16_t* wd, int64_t n0, int64_t n1, void* y, int64_t ldy,
               bool yBf16) {
  const int64_t nb = x.K / kBlock;
  for (int64_t n = n0; n < n1; n++) {
    const uint8_t* w = wq + n * (x.K / 2);
    const uint16_t* d = wd + n * nb;
    for (int64_t m = 0; m < x.M; m++) {
      const int8_t* q = x.q + m * x.K;
      float acc = 0.0f;
      for (int64_t b = 0; b < nb; b++) {
        int32_t s = 0;
        for (int j = 0; j < 16; j++) {
          const uint8_t v = w[b * 16 + j];
          s += int32_t(v & 0x0f) * int32_t(q[b * kBlock + j]) + int32_t(v >> 4) * int32_t(q[b * kBlock + 16 + j]);
        }
        s -= 8 * x.s[m * nb + b];
        acc += float(s) * (qF16ToF32(d[b]) * x.d[m * nb + b]);
      }
      qStore(y, m * ldy + n, yBf16, acc);
    }
  }
}

template <bool BF16>
void gemvGeneric(const void* xv, int64_t ldx, const void* wv, int64_t ldw, int64_t M, int64_t K, int64_t n0, int64_t n1,
                 void* y, int64_t ldy, bool yBf16, float alpha) {
  for (int64_t n = n0; n < n1; n++) {
    for (int64_t m = 0; m < M; m++) {
      float acc = 0.0f;
      if (BF16) {
        const uint16_t* x = static_cast<const uint16_t*>(xv) + m * ldx;
        const uint16_t* w = static_cast<const uint16_t*>(wv) + n * ldw;
        for (int64_t k = 0; k < K; k++) acc += qBf16ToF32(x[k]) * qBf16ToF32(w[k]);
      } else {
        const float* x = static_cast<const float*>(xv) + m * ldx;
        const float* w = static_cast<const float*>(wv) + n * ldw;
        for (int64_t k = 0; k < K; k++) acc += x[k] * w[k];
      }
      qStore(y, m * ldy + n, yBf16, alpha * acc);
    }
  }
}

uint64_t streamGeneric(const uint8_t* p, int64_t n) {
  const uint64_t* w = reinterpret_cast<const uint64_t*>(p);
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (int64_t i = 0; i < n / 8; i += 4) {
    s0 += w[i];
    s1 += w[i + 1];
    s2 += w[i + 2];
    s3 += w[i + 3];
  }
  return s0 ^ s1 ^ s2 ^ s3;
}

}  // namespace

void fillGeneric(Kernels& k) {
  k.name = "generic";
  k.stream = streamGeneric;
  k.nf4Decode = nf4DecodeGeneric;
  k.dot = dotGeneric;
  k.q8 = q8Generic;
  k.q4 = q4Generic;
  k.gemvF32 = gemvGeneric<false>;
  k.gemvBf16 = gemvGeneric<true>;
}

}  // namespace quant
}  // namespace graft
