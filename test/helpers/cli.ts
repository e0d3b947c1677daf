import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { captureOutput } from "../../src/capture.js";

const ROOT = join(import.meta.dirname, "..", "..");
const ENTRY = join(ROOT, "test", "helpers", "cli-entry.ts");

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Start the real `churnops` CLI (from source, through tsx) as a child process, in the repository unless `cwd` says otherwise. */
export function startCli(args: readonly string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, ["--import", "tsx", ENTRY, ...args], {
    cwd,
    env: { ...process.env, CHURNOPS_LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output = captureOutput(child);
  const done = new Promise<CliResult>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal, stdout: output.stdout(), stderr: output.stderr() })),
  );
  return { child, done };
}

export async function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT): Promise<CliResult> {
  return startCli(args, env, cwd).done;
}
