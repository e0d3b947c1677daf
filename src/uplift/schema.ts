import type { Config } from "../config.js";
import { ChurnopsError } from "../errors.js";
import { readBundle } from "../model/bundle.js";
import { resolveBundle } from "../model/registry.js";
import type { ScoreRun } from "../store/runs.js";
import type { ModelSchema } from "./data.js";

/** The uplift model's registered name: `<model>-uplift` unless given. */
export function upliftModelName(config: Config, flag?: string): string {
  return flag ?? `${config.model_name}-uplift`;
}

/** The features and id column of the registered churn model version that scored a run (its bundle.json). */
export function registeredSchema(config: Config): ModelSchema {
  return async (run: ScoreRun) => {
    const bundle = await readBundle((await resolveBundle({ ...config, model_name: run.model_name }, run.model_version)).bundlePath);
    const id = bundle.json.schema.id_column;
    if (id === null)
      throw new ChurnopsError("bad_input", `model ${run.model_name} v${run.model_version} has no customer id column; uplift needs one to join members`, {
        field: "campaign",
      });
    return { idColumn: id, features: bundle.json.schema.features.map((f) => f.name) };
  };
}
