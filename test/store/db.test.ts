import { afterEach, describe, expect, it } from "vitest";
import { openStore, type Store } from "../../src/store/db.js";
import { migrations } from "../../src/store/migrations/index.js";
import { storeTargets } from "../helpers/stores.js";

const latest = Object.keys(migrations).at(-1) as string;

describe.each(storeTargets)("opening the $name store", (target) => {
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  it("runs a migration the store has not had, though every earlier one is recorded", async () => {
    const url = await target.fresh();
    store = await openStore(url);
    // As if the store was made by the build before the latest migration.
    await migrations[latest]?.down?.(store.db);
    await store.db
      .deleteFrom("kysely_migration" as never)
      .where("name" as never, "=", latest as never)
      .execute();
    await store.close();
    store = await openStore(url);
    const names = await store.db
      .selectFrom("kysely_migration" as never)
      .select("name" as never)
      .execute();
    expect((names as { name: string }[]).map((r) => r.name)).toEqual(Object.keys(migrations));
    // The latest migration's table is back (015 creates performance_estimates).
    await expect(store.db.selectFrom("performance_estimates").selectAll().execute()).resolves.toEqual([]);
  });

  it("refuses a store migrated by a newer build instead of taking it for current", async () => {
    const url = await target.fresh();
    store = await openStore(url);
    await store.db
      .insertInto("kysely_migration" as never)
      .values({ name: "999_from_the_future", timestamp: new Date().toISOString() } as never)
      .execute();
    await store.close();
    store = undefined;
    await expect(openStore(url)).rejects.toThrow(/cannot open store .*999_from_the_future/);
  });
});
