// Body shared by ops_isa_generic.cpp / ops_isa_avx2.cpp / ops_isa_avx512.cpp: the including file
// includes the std headers, sets `#pragma GCC target` and defines GRAFT_OPS_NS, then includes this.
// No include guard on purpose.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace graft {
namespace GRAFT_OPS_NS {
namespace {
#include "ops_simd.h"
#include "ops_k_elementwise.h"
#include "ops_k_nn.h"
#include "ops_k_attention.h"
#include "ops_k_decode.h"
}  // namespace

void fillKernels(OpsKernels& k) {
  k.castRow = castRow;
  k.fillRow = fillRow;
  k.unaryRow = unaryRow;
  k.unaryBackwardRow = unaryBackwardRow;
  k.binaryRow = binaryRow;
  k.whereRow = whereRow;
  k.reduce = reduceRows;
  k.softmaxRows = softmaxRows;
  k.softmaxBackwardRows = softmaxBackwardRows;
  k.crossEntropyRows = crossEntropyRows;
  k.crossEntropyBackwardRows = crossEntropyBackwardRows;
  k.rmsnormRows = rmsnormRows;
  k.rmsnormBackwardRows = rmsnormBackwardRows;
  k.layernormRows = layernormRows;
  k.layernormBackwardRows = layernormBackwardRows;
  k.ropeRows = ropeRows;
  k.adamw = adamwRange;
  k.attentionHeads = attentionHeads;
  k.attentionBackwardGroup = attentionBackwardGroup;
  k.decodeAttentionGroup = decodeAttentionGroup;
  k.swigluRange = swigluRange;
  k.swigluBackwardRange = swigluBackwardRange;
}

}  // namespace GRAFT_OPS_NS
}  // namespace graft

