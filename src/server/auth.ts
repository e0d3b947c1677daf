import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { ChurnopsError } from "../errors.js";

/** Shortest key accepted: a guessable key is no key. */
export const MIN_KEY_LENGTH = 16;

export interface Caller {
  /** A short, non-secret id of the key (a hash prefix), for logs and rate limits. */
  keyId: string;
  admin: boolean;
}

function digest(key: string): Buffer {
  return createHash("sha256").update(key, "utf8").digest();
}

/**
 * API keys, held only as sha256 digests. A presented key is hashed and compared with every known digest in
 * constant time (and without stopping at the first match), so timing says nothing about how close a guess was.
 */
export class ApiKeys {
  private readonly keys: { digest: Buffer; id: string }[];
  private readonly admin: Buffer | null;

  constructor(keys: readonly string[], adminKey: string | null) {
    for (const k of [...keys, ...(adminKey === null ? [] : [adminKey])]) {
      if (k.length < MIN_KEY_LENGTH) throw new ChurnopsError("bad_config", `API keys must be at least ${MIN_KEY_LENGTH} characters long`);
    }
    this.keys = keys.map((k) => ({ digest: digest(k), id: digest(k).toString("hex").slice(0, 12) }));
    this.admin = adminKey === null ? null : digest(adminKey);
  }

  /**
   * Keys from the environment: `CHURNOPS_API_KEYS` (comma-separated) and `CHURNOPS_ADMIN_KEY` (for
   * /admin routes; it may also score).
   */
  static fromEnv(env: NodeJS.ProcessEnv): ApiKeys {
    const keys = (env.CHURNOPS_API_KEYS ?? "")
      .split(",")
      .map((k) => k.trim())
      .filter((k) => k.length > 0);
    const admin = env.CHURNOPS_ADMIN_KEY?.trim() || null;
    return new ApiKeys(keys, admin);
  }

  /** Keys that may score (the admin key is not counted: it is not meant to be handed to callers). */
  get size(): number {
    return this.keys.length;
  }

  identify(presented: string): Caller | null {
    const d = digest(presented);
    let match: string | null = null;
    for (const k of this.keys) if (timingSafeEqual(d, k.digest)) match = k.id;
    const admin = this.admin !== null && timingSafeEqual(d, this.admin);
    if (admin) return { keyId: `admin-${d.toString("hex").slice(0, 6)}`, admin: true };
    return match === null ? null : { keyId: match, admin: false };
  }
}

/** The key a request presents: `Authorization: Bearer <key>` or `X-API-Key: <key>`. */
export function presentedKey(headers: IncomingHttpHeaders): string | null {
  const auth = headers.authorization;
  if (typeof auth === "string") {
    const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
    if (m?.[1] !== undefined) return m[1];
  }
  const header = headers["x-api-key"];
  return typeof header === "string" && header.length > 0 ? header : null;
}
