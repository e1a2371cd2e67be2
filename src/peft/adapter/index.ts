/** Houlsby et al. 2019 bottleneck adapters after attention and after the MLP. */
import { registerPeftMethod } from "../registry.ts";
import { adapterConfig } from "./config.ts";
import { applyAdapter, loadAdapter } from "./tuner.ts";

export { type AdapterConfig, adapterConfig, ADAPTER_DEFAULT_TARGETS } from "./config.ts";
export { BottleneckAdapter } from "./layer.ts";
export { applyAdapter, loadAdapter } from "./tuner.ts";

registerPeftMethod({
  name: "adapter",
  peftTypes: ["BOTTLENECK_ADAPTER"],
  apply: (model, options) => applyAdapter(model, adapterConfig(options)),
  load: (model, config, weights) => loadAdapter(model, config, weights),
});
