/** `graft pull <repo>`: download a model from the Hugging Face hub (or HF_ENDPOINT mirror). */
import { parseArgs } from "node:util";
import { pull } from "../../hub/pull.ts";
import { formatBytes, pullProgressBar } from "../../hub/progressBar.ts";
import type { Command } from "../Command.ts";

export const pullCommand: Command = {
  name: "pull",
  description: "download a model repo from the Hugging Face hub (HF_ENDPOINT for a mirror) into the HF cache or a local dir",
  usage: [
    "graft pull <org/name> [options]",
    "",
    "  --revision <rev>     branch, tag or commit (default main)",
    "  --local-dir <dir>    download into this directory instead of the HF cache",
    "  --include <glob>     only files matching (repeatable, e.g. '*.json' '*.safetensors')",
    "  --exclude <glob>     skip files matching (repeatable)",
    "  --token <token>      access token (default HF_TOKEN or $HF_HOME/token)",
    "  --quiet              no progress bar",
    "",
    "Environment: HF_ENDPOINT (mirror), HF_HOME, HF_HUB_CACHE, HF_TOKEN.",
  ].join("\n"),
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        revision: { type: "string" },
        "local-dir": { type: "string" },
        include: { type: "string", multiple: true },
        exclude: { type: "string", multiple: true },
        token: { type: "string" },
        quiet: { type: "boolean" },
      },
    });
    if (positionals.length !== 1) {
      console.error(`usage: ${this.usage.split("\n")[0]}`);
      return 2;
    }
    const showBar = !values.quiet && process.stderr.isTTY === true;
    const bar = showBar ? pullProgressBar() : null;
    try {
      const res = await pull({
        repo: positionals[0]!,
        ...(values.revision !== undefined ? { revision: values.revision } : {}),
        ...(values["local-dir"] !== undefined ? { localDir: values["local-dir"] } : {}),
        ...(values.include ? { include: values.include } : {}),
        ...(values.exclude ? { exclude: values.exclude } : {}),
        ...(values.token !== undefined ? { token: values.token } : {}),
        ...(bar ? { onProgress: bar.onProgress } : {}),
      });
      bar?.stop();
      const fetched = res.files.filter((f) => !f.cached);
      const bytes = fetched.reduce((s, f) => s + f.size, 0);
      if (!values.quiet) {
        console.error(`${res.repo}@${res.commit.slice(0, 10)}: ${res.files.length} files, ${fetched.length} downloaded (${formatBytes(bytes)}), ${res.files.length - fetched.length} already present`);
      }
      console.log(res.dir);
      return 0;
    } catch (e) {
      bar?.stop();
      throw e;
    }
  },
};
