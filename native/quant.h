// Quantized matmul and small-M float GEMV kernels (the decode path): declarations shared by the
// per-ISA files (quant_generic.cpp, quant_avx2.cpp, quant_avx512.cpp) and quant_binding.cpp.
//
// Weight layouts (ggml's Q8_0 / Q4_0 blocks of 32 along K, split into two arrays):
//   q8_0: qs int8 [N, K] row-major, scales fp16 [N, K/32]; w[n, k] = qs[n, k] * d[n, k/32]
//   q4_0: qs uint8 [N, K/2]: block b of row n is the 16 bytes at n*K/2 + b*16, byte j holding
//         element j in its low nibble and element j+16 in its high nibble; w = (nibble - 8) * d.
// Activations are quantized per row and block of 32 to int8 as llama.cpp does for Q8_0 x Q8_0:
//   d = amax / 127 (float), q = round-half-even(x * (1 / d)) (0 when d = 0),
// with the block's sum of q kept for q4_0's -8 offset. A block's product is the exact integer dot
// times dx * dw, accumulated in float32.
//
// This header is included by files compiled with target pragmas: declarations only.
#pragma once
#include <cstdint>

namespace graft {
namespace quant {

enum class QType : int { Q8_0 = 0, Q4_0 = 1 };
constexpr int64_t kBlock = 32;

// One quantized activation matrix x [M, K]: q int8 [M, K], d float [M, K/32], s int32 [M, K/32].
// q4 (for q4_0 weights only, else null): q with each quad of blocks (b .. b+3), b % 4 == 0, stored as
// [b 0:16, b+1 0:16, b+2 0:16, b+3 0:16, b 16:32, b+1 16:32, b+2 16:32, b+3 16:32] (the order the
// AVX-512 kernel unpacks a 64-byte load of nibbles in); the blocks after the last quad stay as they are.
struct QActs {
  const int8_t* q;
  const float* d;
  const int32_t* s;
  int64_t M, K;
  const int8_t* q4;
};

// y[m, n] for m in [0, M), n in [n0, n1) (row stride ldy, float32 or bf16 when yBf16).
using QDotFn = void (*)(const QActs& x, const uint8_t* wq, const uint16_t* wd, int64_t n0, int64_t n1, void* y,
                        int64_t ldy, bool yBf16);

// Float GEMV for small M: y[m, n] = alpha * sum_k x[m, k] * w[n, k], m < M, n in [n0, n1).
// x [M, K] (row stride ldx), w [N, K] (row stride ldw), both float32 or both bf16 (wBf16);
// y float32 or bf16 (row stride ldy). beta is 0 (y is overwritten).
using GemvFn = void (*)(const void* x, int64_t ldx, const void* w, int64_t ldw, int64_t M, int64_t K, int64_t n0,
                        int64_t n1, void* y, int64_t ldy, bool yBf16, float alpha);

// Sums a buffer as uint64 words (n a multiple of 64 bytes): the bandwidth probe's streaming read.
using StreamFn = uint64_t (*)(const uint8_t* p, int64_t n);

// NF4 (bitsandbytes layout, src/quant/nf4.ts): element i of a flattened weight has code
// packed[i / 2] >> 4 (i even) or & 0xf (i odd) and value codebook[code] * absmax[i / blockSize].
// Decodes elements [start, start + count) into out (float32).
using Nf4DecodeFn = void (*)(const uint8_t* packed, const float* absmax, int64_t blockSize, int64_t start, int64_t count,
                             float* out);
// sum_k a[k] * b[k] over float32 rows.
using DotFn = float (*)(const float* a, const float* b, int64_t K);

extern const float kNf4Codebook[16];

struct Kernels {
  const char* name;
  StreamFn stream;
  Nf4DecodeFn nf4Decode;
  DotFn dot;
  QDotFn q8;
  QDotFn q4;
  GemvFn gemvF32;
  GemvFn gemvBf16;
};

// The kernel set in use (the best this CPU runs, unless quantUseKernels picked another): what the
// qmatmul / gemv bindings run, for other bindings (decode.cpp) that must compute the same numbers.
const Kernels& activeKernels();
// x [M, K] (float32, or bf16 when bf16) -> the int8 activations of QActs (q4 null unless for q4_0 weights).
void quantizeActivations(const void* x, bool bf16, int64_t M, int64_t K, int8_t* q, float* d, int32_t* s, int8_t* q4);

void fillGeneric(Kernels& k);
void fillAvx2(Kernels& k);
void fillAvx512(Kernels& k);      // avx512f/bw/vl + vnni (int8) ; float gemv with fma
void fillAvx512Bf16(Kernels& k);  // overrides gemvBf16 with vdpbf16ps

}  // namespace quant
}  // namespace graft
