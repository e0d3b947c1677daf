import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { captureOutput } from "../capture.js";
import type { Config } from "../config.js";
import { PROJECT_ROOT } from "../config.js";
import { ChurnopsError } from "../errors.js";

export interface TrainerResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment the Python trainer sees: the same data folder and tracking store as this process. */
export function trainerEnv(config: Config): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CHURNOPS_HOME: config.home, PYTHONUNBUFFERED: "1" };
  if (config.mlflow_tracking_uri !== undefined) env.MLFLOW_TRACKING_URI = config.mlflow_tracking_uri;
  return env;
}

function requirePython(config: Config): void {
  if (!existsSync(config.python)) {
    throw new ChurnopsError("trainer_failed", `the Python trainer is not installed (${config.python} is missing): run \`make setup\``);
  }
}

/**
 * Run `python -m churnops_trainer <args>`. With `passthrough`, the trainer talks to the terminal directly
 * (train, synth); otherwise its stdout is captured (JSON results) and its stderr is kept for the error.
 */
export async function runTrainer(
  config: Config,
  args: readonly string[],
  options: { passthrough?: boolean; showProgress?: boolean } = {},
): Promise<TrainerResult> {
  requirePython(config);
  return new Promise((resolve, reject) => {
    const child = spawn(config.python, ["-m", "churnops_trainer", ...args], {
      cwd: PROJECT_ROOT,
      env: trainerEnv(config),
      stdio: options.passthrough === true ? ["inherit", "inherit", "inherit"] : ["ignore", "pipe", options.showProgress === true ? "inherit" : "pipe"],
    });
    const output = captureOutput(child);
    child.on("error", (err) => reject(new ChurnopsError("trainer_failed", `cannot start the trainer: ${err.message}`)));
    child.on("close", (code) => resolve({ code: code ?? 1, stdout: output.stdout(), stderr: output.stderr() }));
  });
}

/** The trainer's one-line error for the user: its last stderr line that is not a JSON log event. */
export function trainerErrorMessage(stderr: string): string {
  const lines = stderr
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i] as string;
    if (!line.startsWith("{")) return line.replace(/^error:\s*/i, "");
    try {
      const event = JSON.parse(line) as { level?: string; message?: string; msg?: string };
      if (event.level === "error" || event.level === "ERROR") return event.message ?? event.msg ?? line;
    } catch {
      return line;
    }
  }
  return "the trainer failed without a message";
}

/** Run the trainer and parse its single JSON result; a non-zero exit becomes a ChurnopsError with its message. */
export async function trainerJson<T>(config: Config, args: readonly string[], options: { showProgress?: boolean } = {}): Promise<T> {
  const res = await runTrainer(config, [...args, "--json"], options);
  if (res.code !== 0)
    throw new ChurnopsError(
      res.code === 2 ? "model_not_found" : "trainer_failed",
      res.stderr === "" ? `the trainer exited with code ${res.code} (see its messages above)` : trainerErrorMessage(res.stderr),
      { exitCode: res.code === 2 ? 2 : 1 },
    );
  try {
    return JSON.parse(res.stdout) as T;
  } catch {
    throw new ChurnopsError("trainer_failed", `the trainer printed something that is not JSON: ${res.stdout.slice(0, 200)}`);
  }
}

/**
 * `train` arguments for the synthetic customer table (`churnops synth`): its target, positive label and id, and
 * the generator's oracle column, which must never be a feature. Used by the demo, the tests and the benchmarks.
 */
export function syntheticTrainArgs(data: string): string[] {
  return ["train", "--data", data, "--target", "churned", "--positive", "1", "--id-col", "customer_id", "--drop", "true_churn_prob"];
}
