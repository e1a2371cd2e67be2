// The ops kernels compiled for the generic instruction set (see ops_kernels.h).
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ops_kernels.h"

// Baseline x86-64 (SSE2): no target pragma.
#define GRAFT_OPS_NS ops_generic
#define GRAFT_VEC_BYTES 16
#include "ops_isa_impl.h"
