/** `graft info`: the backend, CPU kernels and thread count graft will use. */
import { parseArgs } from "node:util";
import { defaultBackendName, listBackends } from "../../backend/index.ts";
import { loadAddon } from "../../backend/native/addon.ts";
import type { Command } from "../Command.ts";

export const infoCommand: Command = {
  name: "info",
  description: "show the compute backend, CPU kernels and threads",
  usage: "graft info [--json]",
  async run(argv) {
    const { values } = parseArgs({ args: argv, options: { json: { type: "boolean" } } });
    let native: { isa: string; threads: number } | { error: string };
    try {
      native = loadAddon().info();
    } catch (e) {
      native = { error: (e as Error).message };
    }
    const info = { version: process.env["npm_package_version"] ?? "0.1.0", backend: defaultBackendName(), backends: listBackends(), native, node: process.version };
    if (values.json) console.log(JSON.stringify(info, null, 2));
    else {
      console.log(`backend   ${info.backend} (available: ${info.backends.join(", ")})`);
      if ("isa" in native) console.log(`kernels   ${native.isa}, ${native.threads} threads`);
      else console.log(`kernels   unavailable: ${native.error}`);
      console.log(`node      ${info.node}`);
    }
    return 0;
  },
};
