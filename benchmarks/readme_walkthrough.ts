// Runs the README's "Your first hour" commands in order, as a person would on a terminal, after `make demo`.
// Each command runs under script(1) (a pseudo-terminal, so the CLI writes its human output and log lines) and must
// exit 0 with no stack trace and no JSON line. Prints one JSON object; exits 1 when any command failed.
//   make demo && npx tsx benchmarks/readme_walkthrough.ts
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "..");

/** The commands of the fenced bash block after the `<!-- walkthrough -->` marker, one per line. */
export function walkthroughCommands(readme: string): string[] {
  const after = readme.split("<!-- walkthrough -->")[1];
  const block = after === undefined ? undefined : /```bash\n([\s\S]*?)```/.exec(after)?.[1];
  return (block ?? "").split("\n").filter((line) => line.startsWith("npx churnops"));
}

/** What is wrong with one command's terminal output, or null. */
export function problemOf(code: number | null, terminal: string): string | null {
  if (code !== 0) return `exit ${code}`;
  if (/^\s+at .+:\d+:\d+\)?$/m.test(terminal)) return "stack trace";
  if (/^\s*\{"/m.test(terminal)) return "JSON line on a terminal";
  return null;
}

function main(): number {
  if (!existsSync(join(ROOT, ".churnops", "demo"))) {
    process.stderr.write("readme_walkthrough: run `make demo` first (no .churnops/demo here)\n");
    return 2;
  }
  const commands = walkthroughCommands(readFileSync(join(ROOT, "README.md"), "utf8"));
  if (commands.length === 0) {
    process.stderr.write("readme_walkthrough: no commands after <!-- walkthrough --> in README.md\n");
    return 2;
  }
  const results: { command: string; seconds: number; problem: string | null; output_tail?: string }[] = [];
  for (const command of commands) {
    const started = performance.now();
    // -e: script exits with the command's code; /dev/null: no typescript file.
    const run = spawnSync("script", ["-qec", command, "/dev/null"], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    const seconds = Math.round((performance.now() - started) / 100) / 10;
    // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal colour codes are control characters
    const terminal = `${run.stdout}${run.stderr}`.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").replaceAll("\r", "");
    const problem = problemOf(run.status, terminal);
    process.stderr.write(`${(problem ?? "ok").padEnd(24)} ${String(seconds).padStart(6)} s  ${command}\n`);
    results.push({ command, seconds, problem, ...(problem === null ? {} : { output_tail: terminal.trim().split("\n").slice(-5).join("\n") }) });
  }
  const failed = results.filter((r) => r.problem !== null);
  process.stdout.write(`${JSON.stringify({ commands: results.length, failed, seconds: results.map((r) => r.seconds) }, null, 2)}\n`);
  return failed.length === 0 ? 0 : 1;
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = main();
