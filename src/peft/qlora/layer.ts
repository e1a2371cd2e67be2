/**
 * NF4Linear, the frozen 4-bit base layer QLoRA's LoRA wraps, lives in src/quant (so models can
 * quantize while they load, as `load_in_4bit`); re-exported here, where QLoRA users look for it.
 */
export { NF4Linear, type NF4LinearOptions } from "../../quant/NF4Linear.ts";
