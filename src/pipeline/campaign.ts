import { type PlanRequest, type PlanResult, planCampaign } from "../campaigns/plan.js";
import { chooseAdapter, type SendSummary, sendCampaign } from "../campaigns/send.js";
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import type { Store } from "../store/db.js";

/** Where the step sends: the flags `chooseAdapter` takes (none = the config's adapter). */
export interface StepDelivery {
  adapter?: "webhook" | "export" | undefined;
  export?: string | undefined;
}

/**
 * One campaign, planned and sent: the step the daily job runs for each configured campaign and the demo runs once.
 * Both halves are idempotent (a named plan, the outbox), so running the step again finishes what is left.
 */
export async function planAndSend(
  store: Store,
  config: Config,
  request: PlanRequest,
  delivery: StepDelivery,
  options: { env?: NodeJS.ProcessEnv | undefined; log?: Logger | undefined } = {},
): Promise<{ plan: PlanResult; send: SendSummary }> {
  const plan = await planCampaign(store, request);
  const adapter = chooseAdapter(request.name, delivery, config.campaigns.delivery, config.home, options.env);
  const send = await sendCampaign(store, { campaign: request.name, adapter, delivery: config.campaigns.delivery, env: options.env, log: options.log });
  return { plan, send };
}
