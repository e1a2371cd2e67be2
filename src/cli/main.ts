/** The graft CLI entry: registers commands and dispatches; each command lives in commands/. */
import "../backend/index.ts";
import type { Command } from "./Command.ts";
import { exampleCommand } from "./commands/example.ts";
import { infoCommand } from "./commands/info.ts";
import { pullCommand } from "./commands/pull.ts";
import { generateCommand } from "./commands/generate.ts";
import { chatCommand } from "./commands/chat.ts";
import { serveCommand } from "./commands/serve.ts";
import { prepareCommand } from "./commands/prepare.ts";
import { pretrainCommand } from "./commands/pretrain.ts";
import { trainCommand } from "./commands/train.ts";
import { evalCommand } from "./commands/eval.ts";
import { exportCommand } from "./commands/export.ts";

// In the order of the workflow: download, data, training, evaluation, inference, export.
const commands: Command[] = [
  pullCommand,
  prepareCommand,
  pretrainCommand,
  trainCommand,
  evalCommand,
  generateCommand,
  chatCommand,
  serveCommand,
  exportCommand,
  exampleCommand,
  infoCommand,
];

function help(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    "graft — pretrain, fine-tune, evaluate and chat with language models in TypeScript",
    "",
    "usage: graft <command> [options]",
    "",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.description}`),
    "",
    "Run `graft <command> --help` for a command's options.",
  ].join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    console.log(help());
    return 0;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    console.error(`graft: unknown command "${name}"\n\n${help()}`);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(`${cmd.usage}\n\n${cmd.description}`);
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    const err = e as Error;
    console.error(`graft ${name}: ${err.message}`);
    if (process.env["GRAFT_DEBUG"]) console.error(err.stack);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
