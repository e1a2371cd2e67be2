/** nn: modules, layers, losses and initialisers. */
export { Module, Parameter, StateDictError } from "./Module.ts";
export * from "./layers.ts";
export * from "./losses.ts";
export * as init from "./init.ts";
