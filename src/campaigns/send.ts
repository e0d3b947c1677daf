import { join } from "node:path";
import type { DeliveryConfig } from "../config.js";
import { ChurnopsError } from "../errors.js";
import type { Logger } from "../log.js";
import { newOwner, ownerIsGone } from "../owner.js";
import { armCounts, requireCampaign } from "../store/campaigns.js";
import type { Store } from "../store/db.js";
import { deadLetterErrors, fileTargetsInFlight, leaseOwners, type MessageState, messageStateCounts, releaseLeases } from "../store/outbox.js";
import { type ExportResult, exportMessages, fileTarget, finishFileExport } from "./export.js";
import { checkWebhookUrl, sendWebhook } from "./webhook.js";

export type Adapter = { kind: "webhook"; url: string } | { kind: "export"; path: string };

export interface SendRequest {
  campaign: string;
  adapter: Adapter;
  delivery: DeliveryConfig;
  env?: NodeJS.ProcessEnv;
  log?: Logger | undefined;
  onDelivered?: (() => void) | undefined;
}

export interface SendSummary {
  campaign: string;
  adapter: "webhook" | "export";
  target: string;
  /** Messages this invocation saw accepted (webhook 2xx) or wrote to the file. */
  delivered: number;
  failedAttempts: number;
  dead: number;
  /** Leases of senders that died on this host, handed back to the queue. */
  releasedLeases: number;
  /** Interrupted file exports this invocation completed. */
  recoveredExports: ExportResult[];
  treated: number;
  control: number;
  states: Record<MessageState, number>;
  /** The campaign's dead letters by last error: what a person has to fix before `campaign retry-dead`. */
  failures: { error: string; messages: number }[];
}

/**
 * Which adapter a send uses: the flags, else the config. The export file defaults to
 * `<export_dir>/<campaign>.<jsonl|csv>`, so repeated sends (and the daily job) always finish the same file.
 */
export function chooseAdapter(
  campaign: string,
  flags: { webhook?: string | undefined; export?: string | undefined; adapter?: "webhook" | "export" | undefined },
  delivery: DeliveryConfig,
  home: string,
  env: NodeJS.ProcessEnv = process.env,
): Adapter {
  if (flags.webhook !== undefined && flags.export !== undefined)
    throw new ChurnopsError("bad_input", "give --webhook URL or --export FILE, not both", { field: "webhook" });
  if (flags.webhook !== undefined) return { kind: "webhook", url: checkWebhookUrl(flags.webhook) };
  if (flags.export !== undefined) return { kind: "export", path: flags.export };
  const kind = flags.adapter ?? delivery.adapter;
  if (kind === "webhook") {
    const url = env.CHURNOPS_WEBHOOK_URL ?? delivery.webhook_url;
    if (url === undefined)
      throw new ChurnopsError("bad_config", "the webhook adapter needs a URL: --webhook URL, CHURNOPS_WEBHOOK_URL, or campaigns.delivery.webhook_url", {
        field: "webhook",
      });
    return { kind: "webhook", url: checkWebhookUrl(url) };
  }
  return { kind: "export", path: join(delivery.export_dir ?? join(home, "exports"), `${campaign}.${delivery.export_format}`) };
}

/** The auth header from the environment variable the config names; none when it is unset. */
export function authHeaders(delivery: DeliveryConfig, env: NodeJS.ProcessEnv): Record<string, string> {
  const token = env[delivery.token_env];
  if (token === undefined || token === "") return {};
  return { [delivery.auth_header]: delivery.auth_scheme === "" ? token : `${delivery.auth_scheme} ${token}` };
}

/**
 * Send what a campaign has pending through one adapter. Before that, work left by crashed senders on this
 * host is recovered: their leases go back to the queue, and file exports they left half-done are finished.
 *
 * Exactly once, end to end: a message is leased before it is sent and marked delivered in its own transaction
 * after the receiver's 2xx. A crash between the two leaves it leased; the next run sends it again with the same
 * Idempotency-Key, and the receiver, which deduplicates by that key, accepts it once. At-least-once sending plus
 * an idempotent receiver gives exactly-once acceptance. Control members have no message at all.
 */
export async function sendCampaign(store: Store, request: SendRequest): Promise<SendSummary> {
  const campaign = await requireCampaign(store, request.campaign);
  const owner = newOwner();
  const delivery = request.delivery;
  const leaseUntil = (): Date => new Date(Date.now() + delivery.lease_seconds * 1000);
  let releasedLeases = 0;
  for (const holder of await leaseOwners(store, campaign.name)) {
    if (ownerIsGone(holder)) releasedLeases += await releaseLeases(store, campaign.name, holder);
  }
  const recoveredExports: ExportResult[] = [];
  const nowIso = new Date().toISOString();
  for (const inFlight of await fileTargetsInFlight(store, campaign.name)) {
    const abandoned = inFlight.leaseExpiresAt < nowIso || inFlight.owners.every(ownerIsGone);
    const ours = request.adapter.kind === "export" && inFlight.target === fileTarget(request.adapter.path);
    if (abandoned && !ours) recoveredExports.push(await finishFileExport(store, campaign.name, inFlight.target));
  }
  if (releasedLeases > 0 || recoveredExports.length > 0)
    request.log?.info(
      { event: "campaign.recovered", campaign: campaign.name, released_leases: releasedLeases, exports: recoveredExports.map((e) => e.target) },
      "recovered work of an interrupted sender",
    );

  let result: { target: string; delivered: number; failedAttempts: number; dead: number };
  if (request.adapter.kind === "export") {
    const exported = await exportMessages(store, campaign.name, request.adapter.path, owner, leaseUntil());
    result = { target: exported.target, delivered: exported.delivered, failedAttempts: 0, dead: 0 };
  } else {
    result = await sendWebhook(store, campaign.name, {
      url: request.adapter.url,
      headers: authHeaders(delivery, request.env ?? process.env),
      timeoutMs: delivery.timeout_ms,
      maxAttempts: delivery.max_attempts,
      backoffMs: delivery.backoff_ms,
      maxBackoffMs: delivery.max_backoff_ms,
      concurrency: delivery.concurrency,
      leaseSeconds: delivery.lease_seconds,
      owner,
      // The sender logs every failed attempt; the summary's `failures` is what a person acts on, so those lines
      // are shown only at debug level (the store keeps each message's last error for `campaign status`).
      log: request.log === undefined || request.log.isLevelEnabled("debug") ? request.log : request.log.child({}, { level: "error" }),
      onDelivered: request.onDelivered,
    });
  }
  const arms = await armCounts(store, campaign.name);
  return {
    campaign: campaign.name,
    adapter: request.adapter.kind,
    target: result.target,
    delivered: result.delivered,
    failedAttempts: result.failedAttempts,
    dead: result.dead,
    releasedLeases,
    recoveredExports,
    treated: arms.treated,
    control: arms.control,
    states: await messageStateCounts(store, campaign.name),
    failures: await deadLetterErrors(store, campaign.name),
  };
}
