import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { BundleJson } from "../../src/model/bundle.js";
import { batchFromRows } from "../../src/model/features.js";
import { ChurnModel } from "../../src/model/runtime.js";
import { ModelHolder } from "../../src/server/models.js";
import { admin, batchFor, copyBundle, customer, predict, setBundleVersion, startApp, type TestApp } from "./helpers.js";

function reload(t: TestApp) {
  return t.app.inject({ method: "POST", url: "/admin/reload", headers: admin });
}

async function servingVersion(t: TestApp): Promise<string> {
  const res = await predict(t.app, customer("v"));
  expect(res.statusCode).toBe(200);
  return (JSON.parse(res.body) as { model: { version: string } }).model.version;
}

describe("POST /admin/reload", () => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it("loads the bundle again and swaps in the new version", async () => {
    const dir = copyBundle("1");
    t = await startApp({ champion: dir });
    expect(await servingVersion(t)).toBe("1");
    setBundleVersion(dir, "2");
    const res = await reload(t);
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ champion: { name: "churn", version: "2", previous: { version: "1" } }, challenger: null });
    expect(await servingVersion(t)).toBe("2");
    const metrics = (await t.app.inject({ method: "GET", url: "/metrics" })).body;
    expect(metrics).toMatch(/churnops_model_reloads_total\{outcome="swapped"\} 1/);
    expect(metrics).toMatch(/churnops_model_info\{variant="champion",name="churn",version="2"\} 1/);
    expect(metrics).not.toMatch(/churnops_model_info\{[^}]*version="1"\}/);
  });

  it("refuses a bundle whose model.onnx was modified and keeps serving the old model", async () => {
    const dir = copyBundle("1");
    t = await startApp({ champion: dir });
    setBundleVersion(dir, "2");
    const onnx = readFileSync(join(dir, "model.onnx"));
    onnx[onnx.length - 10] = (onnx[onnx.length - 10] ?? 0) ^ 0xff;
    writeFileSync(join(dir, "model.onnx"), onnx);
    const res = await reload(t);
    expect(res.statusCode).toBe(409);
    const error = JSON.parse(res.body).error;
    expect(error.code).toBe("bundle_invalid");
    expect(error.message).toMatch(/sha256/);
    expect(await servingVersion(t)).toBe("1");
    expect((await t.app.inject({ method: "GET", url: "/readyz" })).statusCode).toBe(200);
    expect((await t.app.inject({ method: "GET", url: "/metrics" })).body).toMatch(/churnops_model_reloads_total\{outcome="refused"\} 1/);
  });

  it("refuses a bundle whose golden vectors this runtime does not reproduce", async () => {
    const dir = copyBundle("1");
    t = await startApp({ champion: dir });
    const path = join(dir, "bundle.json");
    const json = JSON.parse(readFileSync(path, "utf8")) as BundleJson;
    json.model_version = "2";
    json.golden.probabilities[0] = (json.golden.probabilities[0] ?? 0) + 0.01;
    writeFileSync(path, JSON.stringify(json));
    const res = await reload(t);
    expect(res.statusCode).toBe(409);
    expect(JSON.parse(res.body).error.message).toMatch(/golden row 0/);
    expect(await servingVersion(t)).toBe("1");
  });

  it("refuses a vanished bundle with a clear error and keeps serving", async () => {
    const dir = copyBundle("1");
    t = await startApp({ champion: dir });
    writeFileSync(join(dir, "bundle.json"), "{ not json");
    const res = await reload(t);
    expect(res.statusCode).toBe(409);
    expect(JSON.parse(res.body).error.message).toMatch(/not valid JSON/);
    expect(await servingVersion(t)).toBe("1");
  });

  it("keeps answering while reloads run, every answer from a whole model", async () => {
    const dir = copyBundle("1");
    t = await startApp({ champion: dir, server: { batch_limit: 1000 } });
    setBundleVersion(dir, "2");
    const app = t;
    const requests = Array.from({ length: 40 }, (_, i) => predict(app.app, customer(`p${i}`)));
    const reloads = [reload(app), reload(app)];
    const answers = await Promise.all(requests);
    for (const a of answers) {
      expect(a.statusCode).toBe(200);
      expect(["1", "2"]).toContain(JSON.parse(a.body).model.version);
    }
    for (const r of await Promise.all(reloads)) expect(r.statusCode).toBe(200);
    expect(await servingVersion(t)).toBe("2");
    expect((await app.app.inject({ method: "POST", url: "/v1/predict/batch", headers: admin, payload: { customers: batchFor(5) } })).statusCode).toBe(200);
  });
});

describe("model generations", () => {
  it("lets a request in flight finish on the old model and closes it only when the request is done", async () => {
    const oldModel = await ChurnModel.load(copyBundle("1"), { intraOpThreads: 1 });
    const newModel = await ChurnModel.load(copyBundle("2"), { intraOpThreads: 1 });
    const closeOld = vi.spyOn(oldModel, "close");
    const closeNew = vi.spyOn(newModel, "close");
    const holder = new ModelHolder({ champion: oldModel, challenger: null }, "reject");
    const inFlight = holder.acquire();
    holder.swap({ champion: newModel, challenger: null });
    expect(holder.champion.model.version).toBe("2");
    expect(inFlight.champion.model.version).toBe("1");
    expect(closeOld).not.toHaveBeenCalled();
    const batch = batchFromRows(oldModel.bundle, oldModel.bundle.golden.rows.slice(0, 3));
    expect(Array.from(await inFlight.champion.model.predict(batch))).toHaveLength(3);
    inFlight.release();
    inFlight.release();
    await vi.waitFor(() => expect(closeOld).toHaveBeenCalledTimes(1));
    const next = holder.acquire();
    next.release();
    expect(closeNew).not.toHaveBeenCalled();
    await holder.close();
    expect(closeNew).toHaveBeenCalledTimes(1);
  });
});
