import { ChurnopsError } from "../errors.js";
import { discardBody, readLimited } from "../http-limit.js";
import type { Logger } from "../log.js";
import { redactUrl } from "../redact.js";
import type { Store } from "../store/db.js";
import { claimMessages, type MessageRow, markDelivered, recordFailure, renewLease } from "../store/outbox.js";

export interface WebhookOptions {
  url: string;
  /** Extra headers, e.g. the auth header built from the environment. */
  headers: Record<string, string>;
  timeoutMs: number;
  /** Attempts per message before it becomes a dead letter. */
  maxAttempts: number;
  backoffMs: number;
  maxBackoffMs: number;
  concurrency: number;
  leaseSeconds: number;
  owner: string;
  log?: Logger | undefined;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
  onDelivered?: (() => void) | undefined;
}

export interface WebhookResult {
  target: string;
  delivered: number;
  failedAttempts: number;
  dead: number;
  /** Messages whose lease was taken over by another sender mid-way (it finishes them). */
  lost: number;
}

interface Attempt {
  ok: boolean;
  status: number | null;
  error: string;
  /** A rejection that a retry cannot fix (4xx other than 408, 409, 425, 429). */
  permanent: boolean;
  retryAfterMs: number | null;
}

const RETRYABLE_4XX = new Set([408, 409, 425, 429]);

/** How much of a receiver's error answer is read (the stored error keeps 300 characters of it). */
export const RESPONSE_LIMIT_BYTES = 16 * 1024;

/**
 * A webhook URL fit to send to and to store as the target: http(s), and no user info (a credential in the URL
 * would be stored with every message and printed; the token belongs in the environment, see docs/security.md).
 */
export function checkWebhookUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ChurnopsError("bad_input", `--webhook ${redactUrl(url)}: not a URL`, { field: "webhook" });
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:")
    throw new ChurnopsError("bad_input", `--webhook ${redactUrl(url)}: expected http(s)://`, { field: "webhook" });
  if (parsed.username !== "" || parsed.password !== "") {
    throw new ChurnopsError(
      "bad_input",
      `--webhook ${redactUrl(url)}: the URL carries user info; give the credential in the environment variable campaigns.delivery.token_env names (sent as the auth header), not in the URL`,
      { field: "webhook" },
    );
  }
  return url;
}

/** Text a receiver answered, without the credential it may echo (the header values we sent, and URL secrets). */
function withoutSecrets(text: string, headers: Readonly<Record<string, string>>): string {
  let out = text;
  for (const value of Object.values(headers)) {
    // The whole value ("Bearer abc…") and each long part of it: a receiver may echo just the token.
    for (const secret of [value, ...value.split(/\s+/)].filter((v) => v.length >= 8)) out = out.replaceAll(secret, "***");
  }
  return redactUrl(out);
}

/**
 * The wait before retry number `attempt` (1-based): exponential, capped, with "equal jitter" (half fixed, half
 * random) so that many senders retrying after one outage spread out instead of hitting the receiver together.
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return cap / 2 + random() * (cap / 2);
}

function retryAfter(header: string | null): number | null {
  if (header === null) return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}

async function post(message: MessageRow, options: WebhookOptions): Promise<Attempt> {
  try {
    const res = await fetch(options.url, {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": message.idempotency_key, ...options.headers },
      body: message.payload,
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    if (res.ok) {
      await discardBody(res);
      return { ok: true, status: res.status, error: "", permanent: false, retryAfterMs: null };
    }
    const body = withoutSecrets((await readLimited(res, RESPONSE_LIMIT_BYTES).catch(() => ({ text: "" }))).text, options.headers);
    const permanent = res.status >= 400 && res.status < 500 && !RETRYABLE_4XX.has(res.status);
    return {
      ok: false,
      status: res.status,
      error: `HTTP ${res.status}${body ? `: ${body.slice(0, 300)}` : ""}`,
      permanent,
      retryAfterMs: retryAfter(res.headers.get("retry-after")),
    };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const error = e.name === "TimeoutError" ? `no answer within ${options.timeoutMs} ms` : `${e.cause?.code ?? e.name}: ${e.cause?.message ?? e.message}`;
    return { ok: false, status: null, error, permanent: false, retryAfterMs: null };
  }
}

/**
 * Deliver one leased message: POST with its Idempotency-Key until a 2xx, a permanent rejection, or the attempt
 * budget is spent (then it is a dead letter with the last error). The lease is renewed before every attempt; a
 * sender that lost its lease stops, so two live senders never post the same message at once.
 */
async function deliver(store: Store, message: MessageRow, options: WebhookOptions, result: WebhookResult): Promise<void> {
  const random = options.random ?? Math.random;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let attempts = message.attempts;
  for (;;) {
    if (!(await renewLease(store, message.campaign, message.customer_id, options.owner, new Date(Date.now() + options.leaseSeconds * 1000)))) {
      result.lost++;
      return;
    }
    const attempt = await post(message, options);
    attempts++;
    if (attempt.ok) {
      // Its own transaction, after the 2xx: a crash before this line means a resend, which the receiver dedups.
      await markDelivered(store, message.campaign, message.customer_id, attempt.status ?? 200, new Date());
      result.delivered++;
      options.onDelivered?.();
      return;
    }
    const dead = attempt.permanent || attempts >= options.maxAttempts;
    await recordFailure(store, message.campaign, message.customer_id, options.owner, { error: attempt.error, status: attempt.status, dead });
    result.failedAttempts++;
    options.log?.warn(
      { event: "campaign.send_failed", campaign: message.campaign, customer_id: message.customer_id, attempt: attempts, dead, error: attempt.error },
      dead ? "message moved to the dead letters" : "delivery failed; will retry",
    );
    if (dead) {
      result.dead++;
      return;
    }
    const wait = Math.min(options.maxBackoffMs, Math.max(backoffDelay(attempts, options.backoffMs, options.maxBackoffMs, random), attempt.retryAfterMs ?? 0));
    await sleep(wait);
  }
}

/** Send every claimable message of a campaign to the webhook, `concurrency` at a time, lease batch by lease batch. */
export async function sendWebhook(store: Store, campaign: string, options: WebhookOptions): Promise<WebhookResult> {
  // The target is stored with every message and printed: no credential in it (user info refused, secrets redacted).
  const result: WebhookResult = { target: `webhook:${redactUrl(checkWebhookUrl(options.url))}`, delivered: 0, failedAttempts: 0, dead: 0, lost: 0 };
  for (;;) {
    const now = new Date();
    const batch = await claimMessages(
      store,
      campaign,
      options.owner,
      result.target,
      now,
      new Date(now.getTime() + options.leaseSeconds * 1000),
      options.concurrency * 8,
    );
    if (batch.length === 0) return result;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < batch.length) {
        const message = batch[next++] as MessageRow;
        await deliver(store, message, options, result);
      }
    };
    await Promise.all(Array.from({ length: Math.min(options.concurrency, batch.length) }, worker));
  }
}
