import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ingestOutcomes } from "../../src/campaigns/ingest.js";
import { openStore, type Store } from "../../src/store/db.js";
import { runCli } from "../helpers/cli.js";
import { countRows, storeTargets } from "../helpers/stores.js";

const columns = { idColumn: "customer_id", churnedColumn: "churned", observedAtColumn: "observed_at", observedAt: "" };
const now = new Date("2026-11-15T12:00:00Z");

function csv(lines: string[]): string {
  const file = join(mkdtempSync(join(tmpdir(), "churnops-ingest-")), "outcomes.csv");
  writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}

describe.each(storeTargets)("outcome ingestion on $name", (target) => {
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  it("refuses outcomes dated in the future, naming the row", async () => {
    store = await openStore(await target.fresh());
    const file = csv(["customer_id,churned,observed_at", "a,yes,2026-11-15", "b,no,2026-11-16", "c,yes,2027-01-01"]);
    const summary = await ingestOutcomes(store, { data: file }, columns, now);
    expect(summary).toMatchObject({ rows: 3, recorded: 1, skipped: 2 });
    expect(summary.skippedExamples).toEqual([
      "row 2: observed_at 2026-11-16 is in the future (today is 2026-11-15)",
      "row 3: observed_at 2027-01-01 is in the future (today is 2026-11-15)",
    ]);
    expect(await countRows(store, "outcomes")).toBe(1);
    await expect(ingestOutcomes(store, { data: file }, { ...columns, observedAtColumn: null, observedAt: "2026-12-01" }, now)).rejects.toThrow(
      "--observed-at 2026-12-01 is in the future (today is 2026-11-15)",
    );
  });

  it("names the id and outcome columns it looked for, and the flags that set them, before recording anything", async () => {
    const url = await target.fresh();
    const file = csv(["id,status,day", "a,yes,2026-11-01"]);
    const res = await runCli(["outcomes", "ingest", file], { CHURNOPS_DB_URL: url, CHURNOPS_HOME: mkdtempSync(join(tmpdir(), "churnops-ingest-")) });
    expect(res.code).toBe(2);
    expect(res.stderr).toBe(
      `churnops: ${file}: no customer id column "customer_id" (set it with --id-column NAME); no churned (yes/no) column "churned" (set it with --churned-column NAME); no day observed column "observed_at" (set it with --observed-at-column NAME, or --observed-at DATE for every row); its columns are id, status, day\n`,
    );
    store = await openStore(url);
    expect(await countRows(store, "outcomes")).toBe(0);
  });
});
