/** A CLI command: one file each under commands/, registered in main.ts. */
export interface Command {
  name: string;
  description: string;
  usage: string;
  /** Runs with the arguments after the command name; resolves to the process exit code. */
  run(argv: string[]): Promise<number>;
}
