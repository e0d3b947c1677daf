import type { z } from "zod";
import { ChurnopsError } from "../errors.js";

/**
 * Form fields, query parameters and path parameters read with zod: the first problem becomes a ChurnopsError
 * naming its field (a 400 page or JSON error), never a 500.
 */
export function parseInput<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = String(issue?.path[0] ?? "form");
  const message = issue?.message ?? "invalid";
  throw new ChurnopsError("bad_input", message.startsWith(`${field}:`) ? message : `${field}: ${message}`, { field });
}

/** A form posts empty fields as ""; they mean "not given". */
export function givenFields(body: unknown): Record<string, string> {
  if (typeof body !== "object" || body === null) return {};
  return Object.fromEntries(
    Object.entries(body as Record<string, unknown>)
      .filter((e): e is [string, string] => typeof e[1] === "string" && e[1].trim() !== "")
      .map(([k, v]) => [k, v.trim()]),
  );
}
