/**
 * The quant layer's error (bad input to quantization or quantized inference; the message names the
 * module / argument). Defined beside the NF4 packing in nf4.ts; re-exported here so the Q8_0/Q4_0
 * code and NF4 throw one class.
 */
export { QuantError } from "./nf4.ts";
