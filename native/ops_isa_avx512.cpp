// The ops kernels compiled for the avx512 instruction set (see ops_kernels.h).
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ops_kernels.h"

#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")
#define GRAFT_OPS_NS ops_avx512
#define GRAFT_VEC_BYTES 64
#include "ops_isa_impl.h"
