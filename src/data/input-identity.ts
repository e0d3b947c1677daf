import { statSync } from "node:fs";
import type { SourceSpec } from "./source.js";

/**
 * What a run read, recorded with the run so that a resume or a re-run can tell the same input from another.
 * `location` is the source's own description (a path, or a URL with its password already removed). A file
 * is also known by its size and modification time; a database table has neither that means anything (the
 * store may be the same SQLite file), so there the resume fingerprint of the ids read (see batch.ts) decides.
 */
export interface InputIdentity {
  kind: "file" | "sqlite" | "postgresql";
  location: string;
  /** The table, or the query, read from a database; null for a file. */
  relation: string | null;
  size: number | null;
  /** ISO-8601, to the millisecond. */
  modified: string | null;
}

export function inputIdentity(spec: SourceSpec, description: string): InputIdentity {
  const relation = spec.table ?? (spec.query === undefined ? null : `query: ${spec.query}`);
  if (spec.data.startsWith("postgres://") || spec.data.startsWith("postgresql://"))
    return { kind: "postgresql", location: description, relation, size: null, modified: null };
  if (spec.data.startsWith("sqlite:")) return { kind: "sqlite", location: description, relation, size: null, modified: null };
  // The source has opened this file already, so it exists.
  const stat = statSync(description);
  return { kind: "file", location: description, relation: null, size: stat.size, modified: stat.mtime.toISOString() };
}

/** The stored form (JSON with keys in a fixed order, so equal identities are equal text). */
export function identityText(identity: InputIdentity): string {
  const { kind, location, relation, size, modified } = identity;
  return JSON.stringify({ kind, location, relation, size, modified });
}

/** One line for messages: the location, and what else told it apart. */
export function describeIdentity(text: string | null): string {
  if (text === null) return "an input not recorded (the run predates input records)";
  const id = JSON.parse(text) as InputIdentity;
  if (id.kind === "file") return `${id.location} (${id.size} bytes, modified ${id.modified})`;
  return id.relation === null ? id.location : `${id.location} [${id.relation}]`;
}
