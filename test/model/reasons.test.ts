import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { BatchReasonWriter } from "../../src/model/batch-reasons.js";
import { type BundleJson, readBundle } from "../../src/model/bundle.js";
import { batchFromRows, type FeatureValue } from "../../src/model/features.js";
import { percentileOf, ReasonWriter } from "../../src/model/reasons.js";
import { ChurnModel, IDENTITY_TOLERANCE } from "../../src/model/runtime.js";

const fixture = inject("fixture");

function copyBundle(edit: (json: Record<string, unknown> & { golden: { contributions: number[][] }; explanations: { baseline: number } }) => void): string {
  const dir = join(mkdtempSync(join(tmpdir(), "churnops-reasons-")), "bundle");
  cpSync(fixture.bundleDir, dir, { recursive: true });
  const path = join(dir, "bundle.json");
  const json = JSON.parse(readFileSync(path, "utf8"));
  edit(json);
  writeFileSync(path, JSON.stringify(json));
  return dir;
}

/** 10,000 customers the model never saw, and Python onnxruntime's probabilities and contributions for them. */
let scoredOnce: ReturnType<typeof pythonScoredNow> | undefined;
function pythonScored(): ReturnType<typeof pythonScoredNow> {
  scoredOnce ??= pythonScoredNow();
  return scoredOnce;
}

function pythonScoredNow(): { rows: Record<string, FeatureValue>[]; probabilities: number[]; contributions: number[][] } {
  const script = `
import json, sys
import numpy as np
from pathlib import Path
from churnops_trainer.export import bundle_features, load_bundle, onnx_explained, onnx_session, rows_frame
from churnops_trainer.synthetic import SynthConfig, generate
bundle = Path(sys.argv[1])
doc = load_bundle(bundle)
features = bundle_features(doc)
raw = generate(SynthConfig(rows=10000, seed=123, recipe="churnops"))
raw.loc[raw.index % 13 == 0, "total_charges"] = np.nan
rows = [{c: (None if (isinstance(v, float) and v != v) else (v.item() if hasattr(v, "item") else v)) for c, v in r.items()} for r in raw[list(features.raw_columns)].to_dict(orient="records")]
p, c = onnx_explained(onnx_session((bundle / "model.onnx").read_bytes()), rows_frame(rows, features), features)
print(json.dumps({"rows": rows, "probabilities": p.tolist(), "contributions": c.tolist()}))
`;
  const out = execFileSync(fixture.python, ["-c", script, fixture.bundleDir], { encoding: "utf8", maxBuffer: 1 << 28 });
  return JSON.parse(out);
}

describe("contributions in the TypeScript runtime", () => {
  let model: ChurnModel;
  beforeAll(async () => {
    model = await ChurnModel.load(fixture.bundleDir);
  });
  afterAll(async () => {
    await model?.close();
  });

  it("loads a bundle with contributions, one per raw feature", () => {
    expect(model.explains).toBe(true);
    const e = model.bundle.explanations;
    if (!e.available) throw new Error("fixture has no contributions");
    expect(e.features.map((f) => f.name)).toEqual(model.bundle.schema.features.map((f) => f.name));
  });

  it("gives baseline + Σ contributions = logit(p) to 1e-5 on 10,000 rows, and Python's contributions to 1e-6", async () => {
    const python = pythonScored();
    const got = await model.explain(batchFromRows(model.bundle, python.rows));
    const e = model.bundle.explanations;
    if (!e.available) throw new Error("fixture has no contributions");
    let worstIdentity = 0;
    let worstParity = 0;
    for (let i = 0; i < python.rows.length; i++) {
      let sum = e.baseline;
      for (let j = 0; j < got.width; j++) {
        const c = got.contributions[i * got.width + j] as number;
        sum += c;
        worstParity = Math.max(worstParity, Math.abs(c - (python.contributions[i]?.[j] as number)));
      }
      const p = got.exact[i] as number;
      worstIdentity = Math.max(worstIdentity, Math.abs(sum - Math.log(p / (1 - p))));
      worstParity = Math.max(worstParity, Math.abs(p - (python.probabilities[i] as number)));
    }
    expect(python.rows.length).toBe(10_000);
    expect(worstIdentity).toBeLessThanOrEqual(IDENTITY_TOLERANCE);
    expect(worstParity).toBeLessThanOrEqual(1e-6);
  });

  it("changes a feature's contribution only when that feature's value changes (invariance)", async () => {
    const rows = pythonScored().rows.slice(0, 300);
    const base = await model.explain(batchFromRows(model.bundle, rows));
    const width = base.width;
    const e = model.bundle.explanations;
    if (!e.available) throw new Error("fixture has no contributions");
    for (const [j, feature] of e.features.entries()) {
      if (feature.kind === "derived") continue;
      // Each row takes the next row's value of this one feature; every other contribution must stay put.
      const moved = rows.map((r, i) => ({ ...r, [feature.name]: rows[(i + 1) % rows.length]?.[feature.name] ?? null }));
      const got = await model.explain(batchFromRows(model.bundle, moved));
      for (let i = 0; i < rows.length; i++) {
        for (let k = 0; k < width; k++) {
          const derivedFromIt =
            e.features[k]?.ratio !== undefined && [e.features[k]?.ratio?.numerator, e.features[k]?.ratio?.denominator].includes(feature.name);
          if (k === j || derivedFromIt) continue;
          expect(got.contributions[i * width + k], `row ${i}: ${e.features[k]?.name} after changing ${feature.name}`).toBe(base.contributions[i * width + k]);
        }
      }
    }
  });

  it("builds a batch's reason codes and stored JSON exactly as each row's explanation says", async () => {
    const rows = pythonScored().rows.slice(0, 3000);
    const batch = batchFromRows(model.bundle, rows);
    const explained = await model.explain(batch);
    const batchWriter = new BatchReasonWriter(model.bundle, "ja");
    const reasons = batchWriter.reasons(batch, explained.contributions, 3, true);
    const one = new ReasonWriter(model.bundle, "ja");
    for (let i = 0; i < rows.length; i++) {
      // Values as fed to the graph: numbers in float32 (docs/bundle.md, "Reasons").
      const fed = Object.fromEntries(Object.entries(rows[i] as Record<string, FeatureValue>).map(([k, v]) => [k, typeof v === "number" ? Math.fround(v) : v]));
      const e = one.explain(explained.contributions, i, fed, 3);
      // The format stored in scores.reasons since migration 016: {feature, label, value, contribution, text}.
      const expected = e.reasons.map((r) => ({ feature: r.feature, label: r.label, value: r.value, contribution: r.contribution, text: r.text }));
      expect(reasons.json?.[i]).toBe(JSON.stringify(expected));
      for (let rank = 0; rank < 3; rank++) {
        const r = e.reasons[rank];
        const f = reasons.featureCodes[i * 3 + rank] as number;
        const t = reasons.textCodes[i * 3 + rank] as number;
        expect(f === 0 ? null : one.features[f - 1]?.name).toBe(r?.feature ?? null);
        expect(t === 0 ? null : batchWriter.writer.codes[t - 1]).toBe(r?.text ?? null);
      }
    }
    expect(reasons.newTexts).toEqual(batchWriter.writer.codes);
  });

  it("refuses a bundle whose golden contribution was changed by 2e-6", async () => {
    const dir = copyBundle((json) => {
      (json.golden.contributions[7] as number[])[1] = ((json.golden.contributions[7] as number[])[1] as number) + 2e-6;
    });
    await expect(ChurnModel.load(dir)).rejects.toThrow(/golden row 7's contribution of \w+ .*refusing the bundle/);
  });

  it("refuses a bundle whose baseline no longer adds up to the logit", async () => {
    const dir = copyBundle((json) => {
      json.explanations.baseline += 1e-4;
    });
    await expect(ChurnModel.load(dir)).rejects.toThrow(/baseline \+ contributions .* refusing the bundle/);
  });

  it("refuses a bundle that claims contributions but carries no golden ones", async () => {
    const dir = copyBundle((json) => {
      (json.golden as { contributions?: unknown }).contributions = undefined;
    });
    await expect(readBundle(dir)).rejects.toThrow(/golden\.contributions must hold/);
  });

  it("scores a bundle without contributions and says so plainly", async () => {
    const dir = copyBundle((json) => {
      json.explanations = { available: false, reason: "the chosen model's trees test several features at once" } as never;
      (json.golden as { contributions?: unknown }).contributions = undefined;
    });
    const plain = await ChurnModel.load(dir);
    try {
      expect(plain.explains).toBe(false);
      expect(plain.explanationsUnavailable).toMatch(/several features/);
      await expect(plain.explain(batchFromRows(plain.bundle, plain.bundle.golden.rows))).rejects.toThrow(/has no contributions: the chosen model/);
    } finally {
      await plain.close();
    }
  });
});

describe("reason texts", () => {
  let bundle: BundleJson;
  beforeAll(async () => {
    bundle = (await readBundle(fixture.bundleDir)).json;
  });

  it("lists at most N positive contributions, largest first", () => {
    const writer = new ReasonWriter(bundle);
    const width = writer.features.length;
    const row = Array.from({ length: width }, (_, j) => (j % 2 === 0 ? 0.1 * (j + 1) : -1));
    const top = writer.topIndexes(row, 0, 3);
    expect(top.length).toBeLessThanOrEqual(3);
    for (const j of top) expect(row[j]).toBeGreaterThan(0);
    expect(top.map((j) => row[j])).toEqual([...top.map((j) => row[j] as number)].sort((a, b) => b - a));
    expect(writer.topIndexes(new Array(width).fill(-0.5), 0, 4)).toEqual([]);
  });

  it("says a category's share and a number's percentile, in English and Japanese", () => {
    const en = new ReasonWriter(bundle, "en");
    const ja = new ReasonWriter(bundle, "ja");
    const names = en.features.map((f) => f.name);
    const contract = names.indexOf("contract_type");
    const profile = bundle.reference.features.contract_type;
    const share = profile?.kind === "categorical" ? (profile.freqs["month-to-month"] ?? 0) : 0;
    expect(en.text(contract, "month-to-month", true)).toBe(`contract_type: month-to-month — ${Math.round(share * 100)}% of customers; raises risk the most`);
    expect(ja.text(contract, "month-to-month", false)).toBe(`contract_type: month-to-month — 顧客の${Math.round(share * 100)}%。リスクを高めています`);
    const tenure = names.indexOf("tenure_months");
    const low = en.features[tenure]?.percentiles?.[3] as number;
    expect(en.text(tenure, low, false)).toMatch(/^tenure_months: \S+ — lower than 9\d% of customers; raises risk$/);
    expect(en.text(tenure, null, false)).toBe("tenure_months: not recorded — not recorded; raises risk");
  });

  it("says the dataset spec's label, in the reason's language, and the column's name in a bundle without labels", () => {
    const labelled = structuredClone(bundle);
    if (!labelled.explanations.available) throw new Error("fixture has no contributions");
    for (const f of labelled.explanations.features) {
      if (f.name === "contract_type") Object.assign(f, { label: "Contract type", labels: { en: "Contract type", ja: "契約形態" } });
      if (f.name === "tenure_months") Object.assign(f, { label: "Tenure (months)" });
    }
    const en = new ReasonWriter(labelled, "en");
    const ja = new ReasonWriter(labelled, "ja");
    const names = en.features.map((f) => f.name);
    const contract = names.indexOf("contract_type");
    const tenure = names.indexOf("tenure_months");
    expect(en.text(contract, "month-to-month", true)).toMatch(/^Contract type: month-to-month — /);
    expect(ja.text(contract, "month-to-month", true)).toMatch(/^契約形態: month-to-month — /);
    // One label for every language when the spec gave just one.
    expect(ja.text(tenure, null, false)).toMatch(/^Tenure \(months\): 未記録/);
    expect(en.labelOf(tenure)).toBe("Tenure (months)");
    // A bundle from before labels: the column's name, as before.
    expect(new ReasonWriter(bundle, "ja").labelOf(contract)).toBe("contract_type");
  });

  it("gives the same sentence through the run-wide codes as built directly, for any value", () => {
    const writer = new ReasonWriter(bundle);
    const fresh = new ReasonWriter(bundle);
    let seed = 7;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let n = 0; n < 20_000; n++) {
      for (let j = 0; j < writer.features.length; j++) {
        if (writer.features[j]?.kind === "categorical") continue;
        const value = Math.fround(random() * 10 ** Math.floor(random() * 6));
        const first = n % 2 === 0;
        expect(writer.codes[writer.textCode(j, value, first)]).toBe(fresh.text(j, value, first));
      }
    }
  });

  it("places a value among the training percentiles, ties at their middle", () => {
    const grid = Array.from({ length: 101 }, (_, i) => i);
    expect(percentileOf(grid, 50)).toBeCloseTo(0.5);
    expect(percentileOf(grid, 25.5)).toBeCloseTo(0.255);
    expect(percentileOf(grid, -1)).toBe(0);
    expect(percentileOf(grid, 200)).toBe(1);
    expect(percentileOf([...new Array(51).fill(0), ...new Array(50).fill(1)], 0)).toBeCloseTo(0.25);
  });
});
