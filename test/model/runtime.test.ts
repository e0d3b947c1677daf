import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { bandOf, sha256Hex } from "../../src/model/bundle.js";
import { batchFromRows } from "../../src/model/features.js";
import { ChurnModel } from "../../src/model/runtime.js";

const fixture = inject("fixture");

function copyBundle(): string {
  const dir = join(mkdtempSync(join(tmpdir(), "churnops-bundle-")), "bundle");
  cpSync(fixture.bundleDir, dir, { recursive: true });
  return dir;
}

interface EditableBundle {
  golden: { probabilities: number[] };
  thresholds?: unknown;
}

function editJson(dir: string, edit: (json: EditableBundle) => void): void {
  const path = join(dir, "bundle.json");
  const json = JSON.parse(readFileSync(path, "utf8")) as EditableBundle;
  edit(json);
  writeFileSync(path, JSON.stringify(json));
}

describe("loading a model bundle", () => {
  it("accepts the trainer's bundle after checking every golden vector to 1e-6", async () => {
    const model = await ChurnModel.load(fixture.bundleDir);
    expect(model.golden.rows).toBeGreaterThanOrEqual(200);
    expect(model.golden.maxAbsDiff).toBeLessThanOrEqual(1e-6);
    expect(model.version).toBe(fixture.version);
    await model.close();
  });

  it("refuses a model.onnx whose sha256 differs from bundle.json", async () => {
    const dir = copyBundle();
    const onnx = readFileSync(join(dir, "model.onnx"));
    onnx[onnx.length - 1] = (onnx[onnx.length - 1] ?? 0) ^ 0xff;
    writeFileSync(join(dir, "model.onnx"), onnx);
    await expect(ChurnModel.load(dir)).rejects.toThrow(/sha256 .* refusing a modified model/);
  });

  it("refuses a bundle whose golden probability differs by more than 1e-6", async () => {
    const dir = copyBundle();
    editJson(dir, (json) => {
      json.golden.probabilities[7] = (json.golden.probabilities[7] ?? 0) + 2e-6;
    });
    await expect(ChurnModel.load(dir)).rejects.toThrow(/golden row 7 scores .* refusing the bundle/);
  });

  it("refuses a graph swapped in with a matching sha256 but different behaviour", async () => {
    const dir = copyBundle();
    editJson(dir, (json) => {
      json.golden.probabilities = json.golden.probabilities.map((p) => 1 - p);
    });
    await expect(ChurnModel.load(dir)).rejects.toThrow(/golden row 0/);
  });

  it("refuses a bundle.json that is missing a required field, naming it", async () => {
    const dir = copyBundle();
    editJson(dir, (json) => {
      delete json.thresholds;
    });
    await expect(ChurnModel.load(dir)).rejects.toThrow(/field thresholds/);
  });

  it("says clearly when the directory holds no bundle", async () => {
    await expect(ChurnModel.load(mkdtempSync(join(tmpdir(), "empty-")))).rejects.toThrow(/no model bundle at/);
  });
});

describe("scoring with a loaded model", () => {
  it("maps probabilities to bands by the bundle's thresholds, highest band first", async () => {
    const model = await ChurnModel.load(fixture.bundleDir);
    const bands = model.bundle.bands;
    const top = bands[0];
    const bottom = bands[bands.length - 1];
    expect(bandOf(bands, 1)).toBe(top?.name);
    expect(bandOf(bands, 0)).toBe(bottom?.name);
    if (top !== undefined) expect(bandOf(bands, top.min)).toBe(top.name);
    await model.close();
  });

  it("scores a batch in one call the same (to 1e-6) as scoring its rows one by one", async () => {
    const model = await ChurnModel.load(fixture.bundleDir);
    const rows = model.bundle.golden.rows.slice(0, 50);
    const together = await model.predict(batchFromRows(model.bundle, rows));
    for (let i = 0; i < rows.length; i++) {
      const alone = await model.predict(batchFromRows(model.bundle, [rows[i] as Record<string, string | number | null>]));
      // Batched float32 arithmetic may round differently in the last bits; the contract's tolerance is 1e-6.
      expect(Math.abs((alone[0] as number) - (together[i] as number))).toBeLessThanOrEqual(1e-6);
    }
    await model.close();
  });

  it("scores the same in an inference worker thread as in the calling thread", async () => {
    const inThread = await ChurnModel.load(fixture.bundleDir);
    const inWorker = await ChurnModel.load(fixture.bundleDir, { inferenceWorker: true, intraOpThreads: 1 });
    const rows = inThread.bundle.golden.rows;
    const a = await inThread.predict(batchFromRows(inThread.bundle, rows));
    const b = await inWorker.predict(batchFromRows(inWorker.bundle, rows));
    // A different thread count may round the last float32 bits differently; the contract's tolerance is 1e-6.
    expect(b).toHaveLength(a.length);
    expect(Math.max(...Array.from(a, (p, i) => Math.abs(p - (b[i] as number))))).toBeLessThanOrEqual(1e-6);
    await inThread.close();
    await inWorker.close();
  });

  it("does not let the customer id change the score (invariance)", async () => {
    const model = await ChurnModel.load(fixture.bundleDir);
    const row = model.bundle.golden.rows[0] as Record<string, string | number | null>;
    const [a] = await model.predict(batchFromRows(model.bundle, [{ ...row, customer_id: "A-1" }]));
    const [b] = await model.predict(batchFromRows(model.bundle, [{ ...row, customer_id: "Z-999" }]));
    expect(a).toBe(b);
    await model.close();
  });
});

describe("sha256Hex", () => {
  it("matches the known digest of a fixed input", () => {
    expect(sha256Hex(new TextEncoder().encode("abc"))).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });
});
