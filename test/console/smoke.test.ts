import { afterAll, beforeAll, expect, it } from "vitest";
import { openStore, type Store } from "../../src/store/db.js";
import { seedRun } from "../campaigns/seed.js";
import { storeTargets } from "../helpers/stores.js";
import { addUsers, Client, type ConsoleServer, startConsole } from "./helpers.js";

let store: Store;
let server: ConsoleServer;
beforeAll(async () => {
  store = await openStore(await (storeTargets[0] as (typeof storeTargets)[0]).fresh());
  await seedRun(store, { n: 300, asOf: "2026-11-01" });
  await seedRun(store, { n: 300, asOf: "2026-11-02", seed: 2 });
  await addUsers(store);
  server = await startConsole(store);
});
afterAll(async () => {
  await server.close();
  await store.close();
});

it("smoke", async () => {
  const c = new Client(server.base);
  const r = await c.signIn("viewer");
  expect(r.status).toBe(303);
  for (const p of ["/", "/risk", "/runs", "/audit", "/customers/c00001", "/risk?band=high&min_p=0.7", "/risk.csv?band=high"]) {
    const res = await c.get(p);
    const text = await res.text();
    if (res.status !== 200) console.log(p, res.status, text.slice(0, 2000));
    expect(res.status).toBe(200);
  }
});
