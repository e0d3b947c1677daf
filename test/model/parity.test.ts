import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { openSource } from "../../src/data/source.js";
import { FeatureBatchBuilder, type FeatureValue } from "../../src/model/features.js";
import { ChurnModel } from "../../src/model/runtime.js";

const fixture = inject("fixture");

/**
 * The cross-language contract (docs/bundle.md): the same rows through onnxruntime-node (here), Python
 * onnxruntime and the native scikit-learn/LightGBM pipeline (the trainer's `predict --native`).
 */
describe("parity across languages", () => {
  it("scores 10,000 rows the same in TypeScript and Python (≤1e-6) and as the native pipeline (≤1e-4, no flipped decision)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "churnops-parity-"));
    const data = join(dir, "rows.parquet");
    const out = join(dir, "python.csv");
    const env = { ...process.env, CHURNOPS_HOME: fixture.home };
    execFileSync(fixture.python, ["-m", "churnops_trainer", "synth", "--rows", "10000", "--seed", "99", "--out", data], { env, stdio: "ignore" });
    execFileSync(fixture.python, ["-m", "churnops_trainer", "predict", "--bundle", fixture.bundleDir, "--data", data, "--out", out, "--native"], {
      env,
      stdio: ["ignore", "ignore", "inherit"],
    });

    const model = await ChurnModel.load(fixture.bundleDir);
    const names = model.bundle.schema.features.map((f) => f.name);
    const builder = new FeatureBatchBuilder(model.bundle.schema.features, model.bundle.schema.missing_token);
    const source = await openSource({ data });
    for await (const chunk of source.chunks({ columns: names, chunkSize: 100_000, skipRows: 0 })) {
      for (let i = 0; i < chunk.size; i++) builder.push(Object.fromEntries(names.map((n) => [n, chunk.columns.get(n)?.[i] as FeatureValue])));
    }
    await source.close();
    const ts = await model.predict(builder.build());

    const [header, ...lines] = readFileSync(out, "utf8").trim().split(/\r?\n/);
    const cols = (header ?? "").split(",");
    const iOnnx = cols.indexOf("p_onnx");
    const iNative = cols.indexOf("p_native");
    expect(lines).toHaveLength(10_000);
    expect(iOnnx).toBeGreaterThan(-1);
    expect(iNative).toBeGreaterThan(-1);
    let maxPy = 0;
    let maxNative = 0;
    let flipped = 0;
    const t = model.threshold;
    lines.forEach((line, i) => {
      const cells = line.split(",");
      const pOnnx = Number(cells[iOnnx]);
      const pNative = Number(cells[iNative]);
      const p = ts[i] as number;
      maxPy = Math.max(maxPy, Math.abs(p - pOnnx));
      maxNative = Math.max(maxNative, Math.abs(p - pNative));
      if (p >= t !== pNative >= t) flipped++;
    });
    expect(maxPy).toBeLessThanOrEqual(1e-6);
    expect(maxNative).toBeLessThanOrEqual(1e-4);
    expect(flipped).toBe(0);
    await model.close();
  });
});
