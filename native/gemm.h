// GEMM internals shared by the driver (gemm.cpp), the per-ISA kernel files (gemm_generic.cpp,
// gemm_avx2.cpp, gemm_avx512.cpp, gemm_bf16_avx512.cpp) and the N-API binding (gemm_binding.cpp).
//
// The design is the classic GotoBLAS/BLIS one. C[m, n] = alpha * op(A)[m, k] * op(B)[k, n] + beta * C:
//   jc loop over NC columns of C ─ pc loop over KC of the depth: pack B[pc:+KC, jc:+NC] into NR-wide
//   micro-panels ─ ic loop over MC rows: pack A[ic:+MC, pc:+KC] into MR-tall micro-panels ─ jr/ir
//   loops call the microkernel on an MR x NR tile of C held in registers.
// Packing absorbs transposes, leading dimensions and dtype conversion, so a microkernel only ever
// sees two contiguous, aligned, zero-padded panels.
//
// Threads (gemm.cpp): a batch that divides well goes whole matrices per thread; otherwise each
// (jc, pc) B block is packed by all threads into one shared buffer and the threads take near-equal
// chunks of C's rows from a counter, each packing its own A block (so nothing is packed twice);
// with too few rows for that, the columns are split and each thread packs its own B panels.
//
// Packed layout. A "k-step" is kpack consecutive depth values (1 for float32 kernels, 2 for the
// avx512_bf16 kernel, whose vdpbf16ps multiplies pairs, 32 for the AMX kernel, whose tiles take
// 32-deep blocks; its own layouts are described at packAmxBf16A / packAmxBf16B). A micro-panel of width W (MR for A, NR for B)
// and depth kc stores, for each k-step s in [0, ceil(kc / kpack)), W groups of kpack values:
//   panel[(s * W + w) * kpack + q] = X(index w, depth s * kpack + q)   (zero past kc or past the edge)
//
// This header is included by files compiled with AVX-512 / AVX2 target pragmas, so it must only
// declare things (no inline functions or templates that the linker could merge across ISAs).
#pragma once
#include <cstddef>
#include <cstdint>

#include "cpu.h"

namespace graft {
namespace gemm {

enum class DType : int { F32 = 0, BF16 = 1 };

// What GEMM dispatches on: the CPU's ISA level (cpu.h), plus AMX-BF16 tiles above avx512bf16 (an
// accelerator of the bf16 path only, enabled when the CPU has it and the kernel grants the process
// tile data; GRAFT_ISA set to any level below "amx" disables it).
enum class Level : int { Generic = 0, Avx2 = 1, Avx512 = 2, Avx512Bf16 = 3, Amx = 4 };
const char* levelName(Level level);

// Packs `count` indices starting at `src` (the element at index 0, depth 0) into ceil(count / w)
// micro-panels of width w and depth kc, as described above. Element (index i, depth p) of the
// source lives at src[i * si + p * sp] (in source elements; either si or sp is 1).
using PackFn = void (*)(const void* src, int64_t si, int64_t sp, int64_t count, int64_t kc, int w, void* dst);

// C[0:MR, 0:NR] = alpha * Apanel * Bpanel + beta * C, over ksteps k-steps; beta == 0 never reads C.
using MicroFn = void (*)(int64_t ksteps, const void* a, const void* b, float* c, int64_t ldc, float alpha, float beta);

// One ISA's kernel for one operand dtype, with its cache blocking.
struct KernelSet {
  const char* name;
  int mr, nr;           // microkernel tile
  int kpack;            // depth values per k-step (1, or 2 for bf16 pairs)
  int packedBytes;      // bytes per packed element (4 float32, 2 bfloat16)
  int64_t mc, kc, nc;   // cache blocking (mc multiple of mr, nc multiple of nr, kc multiple of kpack)
  PackFn packA;         // packs A: index = row of C, depth = k
  PackFn packB;         // packs B: index = column of C, depth = k
  MicroFn micro;
  void (*done)();       // optional: called on every thread that ran micro, once its share is done
  // Optional (AMX): the microkernel with A read in place, rows `ldaBytes` apart, instead of a packed
  // panel (blocks of 32 depth values; alpha = 1, beta 0 or 1), and the transposing store of a float32
  // block S [rows, cols] into C: C[j * ldc + i] = alpha * S[i * lds + j] + beta * C[j * ldc + i]
  // (beta = 0 never reads C; `cd` is C's dtype). Together they run C = A B^T with few rows of A as
  // C^T = B A^T, the large B read in place (see gemm.cpp, computeTransposed).
  void (*microDirect)(int64_t blocks, const void* a, int64_t ldaBytes, const void* b, float* c, int64_t ldc, bool accumulate);
  void (*storeT)(const float* s, int64_t lds, int64_t rows, int64_t cols, void* c, int64_t ldc, DType cd, float alpha, float beta);
  // Optional: storeT without the transpose, C[i * ldc + j] from S[i * lds + j] (the bf16 rounding of C).
  void (*storeRows)(const float* s, int64_t lds, int64_t rows, int64_t cols, void* c, int64_t ldc, DType cd, float alpha, float beta);
};

// Kernel sets per ISA; a == DType::BF16 means the operands are bfloat16 bits (uint16_t).
// Each returns nullptr when it has no kernel for that dtype.
const KernelSet* genericKernels(DType a);
const KernelSet* avx2Kernels(DType a);
const KernelSet* avx512Kernels(DType a);      // float32 kernel; bf16 operands converted in packing
const KernelSet* avx512Bf16Kernels(DType a);  // vdpbf16ps kernel for bf16 operands
const KernelSet* amxKernels(DType a);         // AMX tdpbf16ps kernel for bf16 operands

// Whether this CPU and OS can run AMX-BF16 (CPUID, XCR0, and arch_prctl(ARCH_REQ_XCOMP_PERM) for
// tile data, requested once per process); in gemm_amx.cpp, callable from any code.
bool amxUsable();

// Generic packers (plain C++), also used by the AVX2 set and for bf16 -> float32 conversion.
void packGenericF32(const void* src, int64_t si, int64_t sp, int64_t count, int64_t kc, int w, void* dst);
void packGenericBf16ToF32(const void* src, int64_t si, int64_t sp, int64_t count, int64_t kc, int w, void* dst);

// bf16 pair packers (kpack = 2) for the avx512_bf16 kernel; AVX-512BW only, in gemm_avx512.cpp.
void packAvx512Bf16Pairs(const void* src, int64_t si, int64_t sp, int64_t count, int64_t kc, int w, void* dst);

// AMX packers (AVX-512BW code, in gemm_avx512.cpp); the depth is zero-padded to whole 32-value blocks.
//   A (w = MR): panel p, block d is [w][32] row-major at dst + (p * blocks + d) * w * 32 elements,
//     so 16 rows of a block are one tile of 16 x 64 bytes (row stride 64).
//   B (w = NR): the pair layout above with ceil(kc / 32) * 16 k-steps per panel, so 16 columns of one
//     32-deep block are one VNNI tile of 16 x 64 bytes (row stride 2 * w * 2 bytes).
void packAmxBf16A(const void* src, int64_t si, int64_t sp, int64_t count, int64_t kc, int w, void* dst);
void packAmxBf16B(const void* src, int64_t si, int64_t sp, int64_t count, int64_t kc, int w, void* dst);

// FMA peak loops for peakFlops(): each runs `iters` iterations of unrolled, independent FMA (or
// vdpbf16ps) chains on the calling thread and returns the flops executed. Timing is the caller's.
double peakChunkAvx512(int64_t iters);
double peakChunkAvx512Bf16(int64_t iters);
double peakChunkAvx2(int64_t iters);
double peakChunkAmx(int64_t iters);  // tdpbf16ps on tiles; needs amxUsable()

// A full problem. Pointers are already advanced to matrix 0 (the offsets applied); strides and
// leading dimensions are in elements of each array.
struct Problem {
  const void* a;
  const void* b;
  void* c;
  DType ab, cd;
  int64_t batch, m, n, k;
  bool transA, transB;
  int64_t lda, ldb, ldc;
  int64_t strideA, strideB, strideC;
  float alpha, beta;
};

// The kernel set run() uses for operands of dtype `ab` at `level`.
const KernelSet& kernelsFor(Level level, DType ab);

// Runs the problem on the thread pool with the best kernels for `level`.
void run(const Problem& p, Level level);

// The level the binding uses: detectIsa() (plus Amx where amxUsable() and GRAFT_ISA allows it),
// optionally capped further for tests (gemmIsa()).
Level activeLevel();
void capLevel(Level cap);

}  // namespace gemm
}  // namespace graft
