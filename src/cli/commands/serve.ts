/** `graft serve <model-dir>`: an OpenAI-compatible HTTP server (/v1/chat/completions, /v1/models). */
import * as path from "node:path";
import { parseArgs } from "node:util";
import { GraftError } from "../../core/errors.ts";
import { validateSamplingOptions } from "../../generation/index.ts";
import { AdapterSet } from "../../peft/index.ts";
import { startServer } from "../../serve/index.ts";
import type { Command } from "../Command.ts";
import { loadForInference, samplingFlags, samplingFromFlags, samplingUsage } from "./generate.ts";

export const serveCommand: Command = {
  name: "serve",
  description: "serve a model over an OpenAI-compatible HTTP API (chat completions, streaming)",
  usage: [
    "graft serve <model-dir> [options]",
    "",
    "  --port <n>                   port (default 11435; 0 = any free port)",
    "  --host <addr>                address to listen on (default 127.0.0.1)",
    "  --name <id>                  model id in /v1/models and responses (default: the directory name)",
    "  --adapter [<name>=]<dir>     load a PEFT adapter (repeatable); a request picks one with \"adapter\": \"<name>\"",
    "                               (default name: the directory name); requests without it use the base model",
    "",
    "Defaults for requests that leave a field out (a request's own fields win):",
    ...samplingUsage,
  ].join("\n"),
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { port: { type: "string", default: "11435" }, host: { type: "string", default: "127.0.0.1" }, name: { type: "string" }, adapter: { type: "string", multiple: true }, ...samplingFlags },
    });
    if (positionals.length !== 1) {
      console.error(`usage: ${this.usage.split("\n")[0]}`);
      return 2;
    }
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new GraftError(`--port must be an integer in [0, 65535], got "${values.port}"`);
    const flags = samplingFromFlags(values);
    validateSamplingOptions(flags);
    const dir = positionals[0]!;
    if (values.quantize !== undefined && values.adapter?.length) throw new GraftError("--quantize cannot be combined with --adapter: merge the adapter into the model first");
    const { model, tokenizer, defaults } = loadForInference(dir, values.dtype, values.quantize);
    const name = values.name ?? path.basename(path.resolve(dir));
    let adapters: AdapterSet | undefined;
    for (const spec of values.adapter ?? []) {
      const eq = spec.indexOf("=");
      const adapterDir = eq > 0 ? spec.slice(eq + 1) : spec;
      const adapterName = eq > 0 ? spec.slice(0, eq) : path.basename(path.resolve(adapterDir));
      adapters ??= new AdapterSet(model);
      const pm = adapters.load(adapterName, adapterDir);
      console.error(`graft serve: adapter "${adapterName}" (${pm.method}) from ${adapterDir}`);
    }
    const server = await startServer({
      ...(adapters ? { adapters } : {}),
      model,
      tokenizer,
      port,
      host: values.host,
      modelName: name,
      defaults: { ...defaults, ...flags },
      log: (line) => console.error(`${new Date().toISOString()} ${line}`),
    });
    console.error(`graft serve: ${name} at ${server.url}/v1 (OpenAI-compatible; POST /v1/chat/completions). Ctrl-C stops.`);
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
        resolve();
      };
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
    });
    await server.close();
    return 0;
  },
};
