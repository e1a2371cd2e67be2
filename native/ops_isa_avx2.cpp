// The ops kernels compiled for the avx2 instruction set (see ops_kernels.h).
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ops_kernels.h"

#pragma GCC target("avx2,fma,f16c")
#define GRAFT_OPS_NS ops_avx2
#define GRAFT_VEC_BYTES 32
#include "ops_isa_impl.h"
