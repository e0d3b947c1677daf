import { createHash } from "node:crypto";
import type { Variant } from "./models.js";

/** How the challenger takes part: not at all, answering a share of customers, or scoring in the shadow. */
export type RoutingMode = "champion_only" | "split" | "shadow";

export interface Routing {
  mode: RoutingMode;
  /** Share of customers the challenger answers in `split` mode. */
  share: number;
  salt: string;
}

/**
 * Where a customer falls in [0, 1): the first 52 bits of sha256(salt + ":" + id). Deterministic across
 * processes, restarts and languages, so a customer always sees the same variant for the same salt.
 */
export function assignmentPoint(customerId: string, salt: string): number {
  const digest = createHash("sha256").update(`${salt}:${customerId}`).digest();
  return (digest.readUInt32BE(0) * 2 ** 20 + (digest.readUInt32BE(4) >>> 12)) / 2 ** 52;
}

/** The variant that answers for a customer. */
export function assignVariant(customerId: string, routing: Routing): Variant {
  if (routing.mode !== "split" || routing.share <= 0) return "champion";
  return assignmentPoint(customerId, routing.salt) < routing.share ? "challenger" : "champion";
}
