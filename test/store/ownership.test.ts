import { readdirSync, readFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

/**
 * One owner of the store (issue 13): store SQL lives in src/store/ only. This test parses every other .ts file
 * under src/ (with the TypeScript parser, so comments, regular expressions and prose in strings are told apart from
 * code) and fails on
 * - a Kysely query builder call: `.selectFrom(`, `.insertInto(`, `.updateTable(`, `.deleteFrom(`, `.replaceInto(`,
 *   `.mergeInto(`, `.selectNoFrom(`;
 * - Kysely's `sql` template tag (`sql\`…\``, `sql<T>\`…\``) or its helpers (`sql.raw(`, `sql.ref(`, …);
 * - a reach into the store's connections: `store.db`, `store.sqlite`, `store.pg`;
 * - a string or template literal that is an SQL statement (upper-case keywords in statement shape: `SELECT … FROM`,
 *   `INSERT INTO`, `UPDATE x SET`, `DELETE FROM`, DDL, transaction control, `PRAGMA`, cursors, `COPY`), which is
 *   what a raw `.prepare(`, `.exec(`, `db.query(` or `client.query(` of SQL would be given. SQL text is not the
 *   store's where it runs elsewhere: in a file that runs DuckDB (it imports `@duckdb/node-api`: in-memory tables
 *   and Parquet/CSV files, filled from the store through src/store/ readers), or in NOT_THE_STORE below.
 */

const ROOT = join(import.meta.dirname, "..", "..");
const SRC = join(ROOT, "src");

/**
 * Files outside src/store/ that may hold SQL, each with the reason. Not the store: the customer data source reads
 * the user's own SQLite or PostgreSQL table or `--query` (read-only), which is input, like a Parquet file.
 */
const NOT_THE_STORE: Record<string, string> = {
  "src/data/source.ts": "reads the customer input table or query (--data sqlite://… / postgresql://…), not the store",
};

const KYSELY_BUILDERS = new Set(["selectFrom", "insertInto", "updateTable", "deleteFrom", "replaceInto", "mergeInto", "selectNoFrom"]);
const SQL_TAG_HELPERS = new Set(["raw", "ref", "id", "table", "lit", "val", "join", "literal"]);
const STORE_CONNECTIONS = new Set(["db", "sqlite", "pg"]);
const SQL_STATEMENT = [
  /\bSELECT\b[\s\S]*\bFROM\b/,
  /\bINSERT\s+(OR\s+\w+\s+)?INTO\b/,
  /\bUPDATE\s+\S+\s+SET\b/,
  /\bDELETE\s+FROM\b/,
  /\b(CREATE|DROP|ALTER)\s+(UNIQUE\s+)?(TABLE|INDEX|VIEW|SCHEMA|TRIGGER)\b/,
  /\bWITH\s+\w+\s+AS\s*\(/,
  /^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|PRAGMA|VACUUM|ANALYZE|TRUNCATE|DECLARE|FETCH|COPY|LISTEN|NOTIFY)\b/,
];

interface SqlFinding {
  line: number;
  /** Query builder or `sql` tag, a store connection, or SQL text (which some files may run elsewhere). */
  kind: "kysely" | "connection" | "text";
  what: string;
}

/** Where a TypeScript source holds SQL (see above); [] for none. */
function sqlIn(fileName: string, text: string): SqlFinding[] {
  const file = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: SqlFinding[] = [];
  const at = (node: ts.Node, kind: SqlFinding["kind"], what: string) =>
    found.push({ line: file.getLineAndCharacterOfPosition(node.getStart(file)).line + 1, kind, what });
  const isSqlTag = (e: ts.Expression) => ts.isIdentifier(e) && e.text === "sql";
  const isStore = (e: ts.Expression) => (ts.isIdentifier(e) && e.text === "store") || (ts.isPropertyAccessExpression(e) && e.name.text === "store");
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression)) {
      const name = node.expression.name.text;
      if (KYSELY_BUILDERS.has(name)) at(node, "kysely", `.${name}(`);
      else if (SQL_TAG_HELPERS.has(name) && isSqlTag(node.expression.expression)) at(node, "kysely", `sql.${name}(`);
    }
    if (ts.isTaggedTemplateExpression(node) && isSqlTag(node.tag)) at(node, "kysely", "sql`…`");
    if (ts.isPropertyAccessExpression(node) && STORE_CONNECTIONS.has(node.name.text) && isStore(node.expression))
      at(node, "connection", `store.${node.name.text}`);
    let literal: string | null = null;
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) literal = node.text;
    else if (ts.isTemplateExpression(node)) literal = [node.head.text, ...node.templateSpans.map((s) => s.literal.text)].join(" ? ");
    if (literal !== null && !(ts.isTaggedTemplateExpression(node.parent) && isSqlTag(node.parent.tag)) && SQL_STATEMENT.some((re) => re.test(literal))) {
      at(node, "text", `SQL text ${JSON.stringify(literal.slice(0, 60))}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

/** Whether SQL text in this file runs on DuckDB (see above). */
function runsDuckDb(text: string): boolean {
  return /\bfrom\s+["']@duckdb\/node-(api|bindings)["']/.test(text);
}

/** The findings that are store SQL outside the store: all but SQL text that runs elsewhere. */
function storeSqlIn(path: string, text = readFileSync(join(ROOT, path), "utf8")): SqlFinding[] {
  const textElsewhere = path in NOT_THE_STORE || runsDuckDb(text);
  return sqlIn(path, text).filter((f) => f.kind !== "text" || !textElsewhere);
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return tsFiles(path);
    return e.isFile() && e.name.endsWith(".ts") ? [path] : [];
  });
}

const outsideStore = tsFiles(SRC)
  .map((path) => relative(ROOT, path).split(sep).join("/"))
  .filter((path) => !path.startsWith("src/store/"))
  .sort();

describe("store ownership", () => {
  it("finds store SQL in no .ts file under src/ outside src/store/", () => {
    expect(outsideStore.length).toBeGreaterThan(50);
    const offenders = outsideStore.flatMap((path) => storeSqlIn(path).map((f) => `${path}:${f.line} ${f.what}`));
    expect(offenders).toEqual([]);
  });

  it("lets SQL text stand outside src/store/ only where it runs on something else", () => {
    for (const path of Object.keys(NOT_THE_STORE)) {
      expect(outsideStore).toContain(path);
      expect(sqlIn(path, readFileSync(join(ROOT, path), "utf8")).length, `${path} holds no SQL any more`).toBeGreaterThan(0);
    }
    // A DuckDB file is let off SQL text only: a query builder, the sql tag or a store connection still counts.
    const duckDbFile = `import { DuckDBInstance } from "@duckdb/node-api";\nawait conn.run("CREATE TABLE t (a INTEGER)");\n`;
    expect(runsDuckDb(duckDbFile)).toBe(true);
    expect(sqlIn("x.ts", duckDbFile).map((f) => f.kind)).toEqual(["text"]);
    expect(storeSqlIn("x.ts", duckDbFile)).toEqual([]);
    const reach = `${duckDbFile}await store.sqlite.prepare("SELECT n FROM scores").get();\nawait sql\`SELECT 1\`.execute(db);\n`;
    expect(storeSqlIn("x.ts", reach).map((f) => f.what)).toEqual(["store.sqlite", "sql`…`"]);
    expect(storeSqlIn("x.ts", "await this.db.prepare(`SELECT a FROM t`).all();")).toHaveLength(1);
  });

  it("flags every form of SQL it looks for", () => {
    const flagged = (code: string) => sqlIn("x.ts", code).map((f) => f.what);
    // The duplicate lookup src/scoring/batch.ts held before it became scoredCustomerIds (src/store/runs.ts).
    const batchBefore = `for (let i = 0; i < ids.length; i += 1000) {
  const rows = await store.db.selectFrom("scores").select("customer_id").where("run_id", "=", runId)
    .where(scoresOfRun(runId)).where("customer_id", "in", ids.slice(i, i + 1000)).execute();
  for (const r of rows) seen.set(r.customer_id, -1);
}`;
    expect(flagged(batchBefore)).toEqual([".selectFrom(", "store.db"]);
    expect(flagged(`await db.insertInto("audit").values(row).execute();`)).toEqual([".insertInto("]);
    expect(flagged(`await store.db.updateTable("score_runs").set({ status }).execute();`)).toEqual([".updateTable(", "store.db"]);
    expect(flagged(`await trx.deleteFrom("scores").where("run_id", "=", id).execute();`)).toEqual([".deleteFrom("]);
    expect(flagged("const n = await sql`SELECT count(*) FROM scores`.execute(db);")).toEqual(["sql`…`"]);
    expect(flagged("const r = await sql<{ n: number }>`SELECT 1`.execute(db);")).toEqual(["sql`…`"]);
    expect(flagged("const t = sql.raw(name);")).toEqual(["sql.raw("]);
    expect(flagged(`db.prepare("SELECT run_id FROM score_runs WHERE status = ?").all("running");`)).toHaveLength(1);
    expect(flagged(`db.prepare(\`INSERT INTO scores (run_id) VALUES (\${id})\`).run();`)).toHaveLength(1);
    expect(flagged(`db.exec("CREATE TABLE t (a INTEGER)");`)).toHaveLength(1);
    expect(flagged(`await client.query("UPDATE score_runs SET status = 'failed' WHERE run_id = $1", [id]);`)).toHaveLength(1);
    expect(flagged(`await pool.query('DELETE FROM outbox WHERE id = $1', [id]);`)).toHaveLength(1);
    expect(flagged(`await client.query("BEGIN READ ONLY");`)).toHaveLength(1);
    expect(flagged("await this.store.pg.query(text);")).toEqual(["store.pg"]);
    expect(flagged(`const q = "WITH last AS (SELECT 1) SELECT * FROM last";`)).toHaveLength(1);
  });

  it("does not flag code that only looks like SQL", () => {
    const clean = [
      `const m = /^Bearer\\s+(.+)$/i.exec(auth.trim());`,
      `const url = "sqlite://" + path; // SELECT nothing FROM here: a comment`,
      `/* INSERT INTO scores is done by the store */ const x = 1;`,
      `throw new Error("select a run from the list, then update the settings");`,
      `const selectFrom = (list: string[]) => list[0]; selectFrom(["a"]);`,
      `const sqlite = "SQLite"; const tag = html\`<select>\${options}</select>\`;`,
      `const stmt = parser.prepare(template); await queue.query({ topic: "runs" }); const d = this.db.name;`,
      `const where = store.url; const dialect = options.store.dialect;`,
      `const label = "Delete from campaign"; const help = "Update the model, then set the threshold";`,
    ];
    for (const code of clean) expect(sqlIn("x.ts", code), code).toEqual([]);
  });
});
