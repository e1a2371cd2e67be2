/**
 * Several adapters over one base, switched per request (for `graft serve`): layer-wrapping
 * adapters (LoRA, IA3, AdaLoRA, bottleneck) keep their wrappers aside and are installed into the
 * shared base only while active (the wrappers hold the base's own layers, so switching moves
 * references, never weights); prompt-learning adapters leave the base alone and are used as they are.
 * Not for concurrent use: activate and run one generation at a time (the server's queue does).
 */
import type { CausalLM } from "../models/index.ts";
import { loadPeft } from "./adapterIO.ts";
import { type AdapterLayer, InjectedPeftModel } from "./InjectedPeftModel.ts";
import { replaceModule } from "./targets.ts";
import { PeftError, type PeftModel } from "./types.ts";

interface Entry {
  model: PeftModel;
  /** Wrapper layers by path (injected methods), installed only while active. */
  layers: [string, AdapterLayer][];
}

export class AdapterSet {
  private readonly entries = new Map<string, Entry>();
  private active: string | null = null;

  constructor(readonly base: CausalLM) {}

  names(): string[] {
    return [...this.entries.keys()];
  }

  get activeName(): string | null {
    return this.active;
  }

  /** Loads a PEFT-layout adapter directory under `name` (left inactive). */
  load(name: string, dir: string): PeftModel {
    if (this.entries.has(name)) throw new PeftError(`adapter "${name}" is already loaded`);
    const previous = this.active;
    this.activate(null);
    const model = loadPeft(this.base, dir);
    model.eval();
    const layers = model instanceof InjectedPeftModel ? model.adapterLayers() : [];
    for (const [path, l] of layers) replaceModule(this.base, path, l.base_layer);
    this.entries.set(name, { model, layers });
    this.activate(previous);
    return model;
  }

  /** Makes `name` the active adapter (null: the bare base) and returns the model to run. */
  activate(name: string | null): CausalLM {
    if (name !== null && !this.entries.has(name)) {
      throw new PeftError(`unknown adapter "${name}"; loaded: ${this.names().join(", ") || "(none)"}`);
    }
    if (this.active !== name) {
      const cur = this.active === null ? null : this.entries.get(this.active)!;
      for (const [path, l] of cur?.layers ?? []) replaceModule(this.base, path, l.base_layer);
      const next = name === null ? null : this.entries.get(name)!;
      for (const [path, l] of next?.layers ?? []) replaceModule(this.base, path, l);
      this.active = name;
    }
    return name === null ? this.base : this.entries.get(name)!.model;
  }
}
