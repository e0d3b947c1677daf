import { Command, CommanderError } from "commander";
import { isChurnopsError } from "../errors.js";
import { type CommandContext, createContext } from "./context.js";
import { passThrough, registerModels, TRAINER_PASSTHROUGH } from "./models.js";

type Register = (program: Command, getContext: () => CommandContext) => void;

/**
 * Where each command is defined, loaded only when that command runs: importing every command's dependencies (the
 * HTTP server, campaigns, monitoring, …) cost about a quarter of a second on every invocation. Listed in help order.
 */
const COMMANDS: ReadonlyArray<readonly [readonly string[], () => Promise<Register>]> = [
  [["score"], async () => (await import("./score.js")).registerScore],
  [["serve"], async () => (await import("./serve.js")).registerServe],
  [["runs", "quarantine"], async () => (await import("./runs.js")).registerRuns],
  [["models", "promote", "rollback"], async () => registerModels],
  [["report"], async () => (await import("./report.js")).registerReport],
  [["demo"], async () => (await import("./demo.js")).registerDemo],
  [["campaign"], async () => (await import("./campaign.js")).registerCampaign],
  [["uplift"], async () => (await import("./uplift.js")).registerUplift],
  [["outcomes"], async () => (await import("./outcomes.js")).registerOutcomes],
  [["monitor"], async () => (await import("./monitor.js")).registerMonitor],
  [["retrain"], async () => (await import("./retrain.js")).registerRetrain],
  [["dataset"], async () => (await import("./dataset.js")).registerDataset],
  [["daily"], async () => (await import("./daily.js")).registerDaily],
  [["daily-runs", "daily-summary"], async () => (await import("./daily.js")).registerDailyHistory],
  [["users"], async () => (await import("./users.js")).registerUsers],
  [["prune"], async () => (await import("./prune.js")).registerPrune],
];

/** The program with the named command only, or with every command when none is named (help, a typo). */
async function buildProgram(getContext: () => CommandContext, command: string | undefined): Promise<Command> {
  const program = new Command("churnops")
    .description("Customer-churn prediction and retention: train, score, campaign, serve, monitor.")
    .option("--config <file>", "TOML config file (default: ./churnops.toml when present)")
    .configureOutput({ outputError: (text, write) => write(`churnops: ${usageError(text)}\n`) })
    .exitOverride();
  for (const name of TRAINER_PASSTHROUGH) {
    program.command(name).description(`(Python trainer) run \`churnops ${name} --help\` for its flags`).allowUnknownOption().helpOption(false);
  }
  const named = COMMANDS.filter(([names]) => command !== undefined && names.includes(command));
  for (const [, load] of named.length > 0 ? named : COMMANDS) (await load())(program, getContext);
  return program;
}

/** Entry point: returns the process exit code; user errors print one clear line, never a stack trace. */
export async function main(argv: readonly string[]): Promise<number> {
  let context: CommandContext | undefined;
  const getContext = (): CommandContext => {
    context ??= createContext(configFlag(argv));
    return context;
  };
  try {
    const command = argv[2];
    if (command !== undefined && (TRAINER_PASSTHROUGH as readonly string[]).includes(command)) {
      return await passThrough(getContext(), command, argv.slice(3));
    }
    await (await buildProgram(getContext, commandName(argv))).parseAsync([...argv]);
    return context?.exitCode ?? 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (isChurnopsError(err)) {
      process.stderr.write(`churnops: ${err.message}\n`);
      return err.exitCode;
    }
    throw err;
  } finally {
    await context?.close();
  }
}

/**
 * Commander's usage error as one line: a typo'd command or option gets its suggestion and a pointer to the help,
 * not the whole help text (which hides the one line that matters).
 */
export function usageError(text: string): string {
  const [message = "", ...rest] = text
    .trim()
    .replace(/^error: /, "")
    .split("\n");
  const suggestion = /\(Did you mean (.+)\?\)/.exec(rest.join(" "))?.[1];
  return suggestion === undefined ? `${message} (see --help)` : `${message}: did you mean ${suggestion}?`;
}

function configFlag(argv: readonly string[]): string | undefined {
  const i = argv.indexOf("--config");
  return i >= 0 ? argv[i + 1] : undefined;
}

/** The command word: the first argument that is neither an option nor the value of `--config`. */
function commandName(argv: readonly string[]): string | undefined {
  for (let i = 2; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--config") i++;
    else if (!arg.startsWith("-")) return arg;
  }
  return undefined;
}
