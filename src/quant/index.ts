/** Quantization: NF4 (bitsandbytes layout, for QLoRA bases) and Q8_0 / Q4_0 for inference. */
export * from "./nf4.ts";
export * from "./QuantizedWeight.ts";
export { qmatmul } from "./qmatmul.ts";
export { QuantizedLinear } from "./QuantizedLinear.ts";
export { quantizeModel, type QuantizeOptions, type QuantizeReport } from "./quantizeModel.ts";
export { dequantizeNF4Tensor, nf4Absmax, nf4Matmul } from "./nf4Matmul.ts";
export { NF4Linear, type NF4LinearOptions, isNF4Target } from "./NF4Linear.ts";
