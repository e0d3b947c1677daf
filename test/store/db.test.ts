import { afterEach, describe, expect, it } from "vitest";
import { openStore, type Store } from "../../src/store/db.js";
import { storeTargets } from "../helpers/stores.js";

// (A store one migration behind is brought up to date on open: test/store/migrations.test.ts.)
describe.each(storeTargets)("opening the $name store", (target) => {
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    store = undefined;
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
