/**
 * The PeftModel of the methods that wrap layers of the base in place (LoRA, QLoRA, AdaLoRA, IA3,
 * bottleneck adapters): forward is the base's forward; the adapter's tensors are every parameter
 * of the wrapper layers outside their `base_layer`, keyed as PEFT keys them.
 */
import type { CausalLM, ForwardOptions, KVCache } from "../models/index.ts";
import { Module } from "../nn/index.ts";
import type { Tensor } from "../tensor/index.ts";
import { PEFT_PREFIX, checkAdapterKeys, writeAdapter } from "./adapterIO.ts";
import { replaceModule } from "./targets.ts";
import { PeftError, type PeftModel } from "./types.ts";

/** A layer that wraps a base layer and adds adapter parameters (PEFT's `BaseTunerLayer`). */
export interface AdapterLayer extends Module {
  readonly isAdapterLayer: true;
  readonly base_layer: Module;
  /** The plain layer with the adapter folded in (merge_and_unload); absent when the method cannot merge. */
  mergedLayer?(): Module;
}

export function isAdapterLayer(m: Module): m is AdapterLayer {
  return (m as unknown as { isAdapterLayer?: boolean }).isAdapterLayer === true;
}

export interface InjectedHooks {
  extraLoss?: () => Tensor | null;
  onOptimizerStep?: (step: number, totalSteps: number) => void;
  /** Adds to or rewrites adapter_config.json when saving (e.g. AdaLoRA's rank_pattern). */
  configForSave?: () => Record<string, unknown>;
  /** Rewrites the tensors written by save() (e.g. AdaLoRA drops its pruned ranks). */
  stateForSave?: (state: Map<string, Tensor>) => Map<string, Tensor>;
  /** False for methods whose adapter is not linear in the weights (bottleneck adapters). */
  mergeable?: boolean;
}

export class InjectedPeftModel extends Module implements PeftModel {
  private merged = false;
  constructor(
    readonly base: CausalLM,
    readonly method: string,
    readonly peftConfig: Record<string, unknown>,
    private readonly hooks: InjectedHooks = {},
  ) {
    super();
    this.module("base_model", base);
    this.train(base.training); // the new adapter layers follow the base's train/eval mode
    if (hooks.extraLoss) this.extraLoss = hooks.extraLoss;
    if (hooks.onOptimizerStep) this.onOptimizerStep = hooks.onOptimizerStep;
    if (hooks.mergeable === false) this.merge = undefined;
  }

  extraLoss?: () => Tensor | null;
  onOptimizerStep?: (step: number, totalSteps: number) => void;

  get config() {
    return this.base.config;
  }

  forward(inputIds: Tensor, opts?: ForwardOptions): Tensor {
    if (this.merged) throw new PeftError(`${this.method}: this adapter was merged into its base; use the model merge() returned`);
    return this.base.forward(inputIds, opts);
  }

  newCache(batch: number, maxLength?: number): KVCache {
    return this.base.newCache(batch, maxLength);
  }

  /** The wrapper layers by path in the base model. */
  adapterLayers(): [string, AdapterLayer][] {
    return [...this.base.namedModules()].filter((e): e is [string, AdapterLayer] => isAdapterLayer(e[1]));
  }

  /** Adapter tensors under PEFT's keys (`base_model.model.<path>.<name>`). */
  adapterState(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [path, layer] of this.adapterLayers()) {
      for (const [name, p] of layer.namedParameters(path)) if (!name.startsWith(`${path}.base_layer.`)) out.set(PEFT_PREFIX + name, p);
    }
    return out;
  }

  override trainableParameters(): Tensor[] {
    return [...this.adapterState().values()].filter((p) => p.requiresGrad);
  }

  /** Copies a saved adapter's tensors (PEFT keys) into the wrapper layers, strictly. */
  loadAdapterState(weights: Map<string, Tensor>): void {
    checkAdapterKeys(this.adapterState(), weights, this.method);
    for (const [path, layer] of this.adapterLayers()) {
      for (const [local] of layer.namedParameters()) {
        if (local.startsWith("base_layer.")) continue;
        const dot = local.lastIndexOf(".");
        const owner = dot < 0 ? layer : [...layer.namedModules()].find(([p]) => p === local.slice(0, dot))![1];
        const src = weights.get(`${PEFT_PREFIX}${path}.${local}`)!;
        const old = owner.getParameter(local.slice(dot + 1))!;
        owner.setParameter(local.slice(dot + 1), src.to(old.dtype));
      }
    }
  }

  save(dir: string): void {
    const config = { ...this.peftConfig, ...(this.hooks.configForSave?.() ?? {}) };
    const state = this.adapterState();
    writeAdapter(dir, config, this.hooks.stateForSave ? this.hooks.stateForSave(state) : state);
  }

  /**
   * Folds every wrapper into its base layer and puts the plain layer back (PEFT merge_and_unload):
   * returns the base model, which no longer has an adapter; this PeftModel cannot run afterwards.
   */
  merge?: () => CausalLM = () => {
    const layers = this.adapterLayers();
    const cannot = layers.filter(([, l]) => !l.mergedLayer);
    if (cannot.length) throw new PeftError(`${this.method}: the adapter cannot be merged into the base weights (${cannot[0]![0]})`);
    for (const [path, layer] of layers) replaceModule(this.base, path, layer.mergedLayer!());
    this.merged = true;
    return this.base;
  };
}
