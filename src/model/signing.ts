import { createHmac, timingSafeEqual } from "node:crypto";

/** The environment variable holding the HMAC-SHA256 key for bundle digests and the registry cache. */
export const KEY_ENV = "CHURNOPS_BUNDLE_KEY";

/** The signing key, read when needed (never stored in the config, never logged); null when none is set. */
export function signingKey(env: NodeJS.ProcessEnv = process.env): Buffer | null {
  const key = env[KEY_ENV];
  return key === undefined || key === "" ? null : Buffer.from(key, "utf8");
}

export function sign(key: Buffer, message: string): string {
  return createHmac("sha256", key).update(message, "utf8").digest("hex");
}

/** Whether `signature` is the HMAC of `message` under `key`, compared in constant time. */
export function signatureMatches(key: Buffer, message: string, signature: string | null | undefined): boolean {
  if (typeof signature !== "string" || !/^[0-9a-f]{64}$/.test(signature)) return false;
  return timingSafeEqual(Buffer.from(sign(key, message), "hex"), Buffer.from(signature, "hex"));
}
