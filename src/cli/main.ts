import { Command, CommanderError } from "commander";
import { isChurnopsError } from "../errors.js";
import { registerCampaign } from "./campaign.js";
import { type CommandContext, createContext } from "./context.js";
import { registerDaily, registerDailyHistory } from "./daily.js";
import { registerDemo } from "./demo.js";
import { passThrough, registerModels, TRAINER_PASSTHROUGH } from "./models.js";
import { registerMonitor } from "./monitor.js";
import { registerOutcomes } from "./outcomes.js";
import { registerReport } from "./report.js";
import { registerRetrain } from "./retrain.js";
import { registerRuns } from "./runs.js";
import { registerScore } from "./score.js";
import { registerServe } from "./serve.js";

function buildProgram(getContext: () => CommandContext): Command {
  const program = new Command("churnops")
    .description("Customer-churn prediction and retention: train, score, campaign, serve, monitor.")
    .option("--config <file>", "TOML config file (default: ./churnops.toml when present)")
    .showHelpAfterError()
    .exitOverride();
  for (const name of TRAINER_PASSTHROUGH) {
    program.command(name).description(`(Python trainer) run \`churnops ${name} --help\` for its flags`).allowUnknownOption().helpOption(false);
  }
  registerScore(program, getContext);
  registerServe(program, getContext);
  registerRuns(program, getContext);
  registerModels(program, getContext);
  registerReport(program, getContext);
  registerDemo(program, getContext);
  registerCampaign(program, getContext);
  registerOutcomes(program, getContext);
  registerMonitor(program, getContext);
  registerRetrain(program, getContext);
  registerDaily(program, getContext);
  registerDailyHistory(program, getContext);
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
    await buildProgram(getContext).parseAsync([...argv]);
    return 0;
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

function configFlag(argv: readonly string[]): string | undefined {
  const i = argv.indexOf("--config");
  return i >= 0 ? argv[i + 1] : undefined;
}
