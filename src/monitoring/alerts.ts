import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import type { Store } from "../store/db.js";
import { type AlertRow, insertAlert, recordAlertDelivery, undeliveredAlerts } from "../store/monitoring.js";

/**
 * Alerts: a rule fired for a subject with a severity. Each goes to the log, the store and (when a URL is set) a
 * Slack-compatible webhook. The store's key — rule, subject, severity and day — makes one alert per condition
 * per day: the tenth drifted batch of a day adds nothing, an escalation from warn to alert is new.
 */
export type AlertSeverity = "warn" | "alert";

/** Rules that can fire; `retrainIfNeeded` reacts to the drift and performance ones. */
export const ALERT_RULES = ["drift.feature", "drift.score", "drift.quarantine", "performance.recall", "performance.estimated_recall"] as const;
export type AlertRule = (typeof ALERT_RULES)[number];

export interface AlertInput {
  rule: AlertRule;
  severity: AlertSeverity;
  /** What the condition is about: a feature, `score`, a model version and month. */
  subject: string;
  message: string;
  details: Record<string, unknown>;
  modelName: string | null;
  modelVersion: string | null;
  runId: string | null;
}

export interface AlertSink {
  log: Logger;
  /** Slack-compatible incoming-webhook URL; null = log and store only. */
  webhookUrl: string | null;
  timeoutMs: number;
  /** Deliveries per alert before it is left undelivered for good. */
  maxAttempts: number;
  fetch?: typeof fetch;
}

export interface RaisedAlert {
  key: string;
  rule: AlertRule;
  severity: AlertSeverity;
  subject: string;
  message: string;
  /** False when the same condition was already recorded that day (nothing was sent again). */
  new: boolean;
}

export function alertKey(alert: Pick<AlertInput, "rule" | "subject" | "severity">, day: string): string {
  return `${alert.rule}|${alert.subject}|${alert.severity}|${day}`;
}

/** The sink the config and environment describe: the webhook URL comes from the variable the config names. */
export function alertSink(config: Config, log: Logger, env: NodeJS.ProcessEnv = process.env): AlertSink {
  const url = env[config.monitoring.alerts.webhook_url_env];
  return { log, webhookUrl: url === undefined || url === "" ? null : url, timeoutMs: config.monitoring.alerts.timeout_ms, maxAttempts: 5 };
}

/** An incoming-webhook body Slack (and Mattermost, Teams' Slack mode, …) accept: `text` plus one section block. */
export function slackPayload(alert: Pick<AlertRow, "severity" | "rule" | "subject" | "message" | "model_name" | "model_version" | "run_id" | "day">): {
  text: string;
  blocks: { type: "section"; text: { type: "mrkdwn"; text: string } }[];
} {
  const icon = alert.severity === "alert" ? ":rotating_light:" : ":warning:";
  const model = alert.model_name === null ? "" : ` · model ${alert.model_name} v${alert.model_version ?? "?"}`;
  const run = alert.run_id === null ? "" : ` · run ${alert.run_id}`;
  const text = `${icon} churnops ${alert.severity.toUpperCase()} ${alert.rule} (${alert.subject}): ${alert.message}`;
  return {
    text,
    blocks: [{ type: "section", text: { type: "mrkdwn", text: `${text}\n_${alert.day}${model}${run}_` } }],
  };
}

async function deliver(row: AlertRow, sink: AlertSink, store: Store): Promise<boolean> {
  if (sink.webhookUrl === null) return false;
  const doFetch = sink.fetch ?? fetch;
  let error: string | null = null;
  try {
    const res = await doFetch(sink.webhookUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(slackPayload(row)),
      signal: AbortSignal.timeout(sink.timeoutMs),
    });
    if (!res.ok) error = `webhook answered HTTP ${res.status}`;
  } catch (err) {
    error = `webhook unreachable: ${(err as Error).message}`;
  }
  await recordAlertDelivery(store, row.key, { ok: error === null, error, at: new Date().toISOString() });
  if (error !== null) sink.log.warn({ event: "alert.delivery_failed", key: row.key, error }, "alert not delivered; will retry with the next alert");
  return error === null;
}

/**
 * Record, log and send alerts. A condition already recorded today is neither logged as new nor sent again.
 * Alerts whose earlier delivery failed are retried here too.
 */
export async function raiseAlerts(store: Store, alerts: readonly AlertInput[], sink: AlertSink, now: Date = new Date()): Promise<RaisedAlert[]> {
  const day = now.toISOString().slice(0, 10);
  const raised: RaisedAlert[] = [];
  for (const a of alerts) {
    const key = alertKey(a, day);
    const isNew = await insertAlert(store, {
      key,
      rule: a.rule,
      severity: a.severity,
      subject: a.subject,
      day,
      message: a.message,
      details: JSON.stringify(a.details),
      model_name: a.modelName,
      model_version: a.modelVersion,
      run_id: a.runId,
      created_at: now.toISOString(),
    });
    const fields = { event: "alert", key, rule: a.rule, severity: a.severity, subject: a.subject, new: isNew, run_id: a.runId };
    if (!isNew) sink.log.debug(fields, "alert already raised today");
    else if (a.severity === "alert") sink.log.error(fields, a.message);
    else sink.log.warn(fields, a.message);
    raised.push({ key, rule: a.rule, severity: a.severity, subject: a.subject, message: a.message, new: isNew });
  }
  if (sink.webhookUrl !== null) for (const row of await undeliveredAlerts(store, sink.maxAttempts)) await deliver(row, sink, store);
  return raised;
}
