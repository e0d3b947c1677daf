import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { openSource } from "../../src/data/source.js";
import { ChurnModel } from "../../src/model/runtime.js";
import { scoreBatch } from "../../src/scoring/batch.js";
import { predict, startApp } from "../server/helpers.js";

const fixture = inject("fixture");
const ORANGE = join(fixture.root, "..", "shared", "data", "orange-telecom-churn.csv");

/**
 * Real customer tables name their columns as people do (issue 15.1). The converter turns such names into valid
 * ONNX input names; the bundle keeps both, and every consumer takes rows under the original names.
 */
let dir: string;
let home: string;

function trainer(args: string[]): string {
  return execFileSync(fixture.python, ["-m", "churnops_trainer", ...args], {
    cwd: fixture.root,
    env: { ...process.env, CHURNOPS_HOME: home, MLFLOW_TRACKING_URI: "", CHURNOPS_LOG_LEVEL: "warn" },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
}

function train(data: string, target: string, positive: string): string {
  const result = JSON.parse(trainer(["train", "--data", data, "--target", target, "--positive", positive, "--no-register", "--json"])) as {
    bundle_path: string;
  };
  return result.bundle_path;
}

/** Python's ONNX probabilities for every row of `data` (the trainer's `predict`). */
function pythonScores(bundle: string, data: string): number[] {
  const out = join(dir, `python-${Math.random().toString(36).slice(2)}.csv`);
  trainer(["predict", "--bundle", bundle, "--data", data, "--out", out]);
  const [header, ...lines] = readFileSync(out, "utf8").trim().split(/\r?\n/);
  const column = (header ?? "").split(",").indexOf("p_onnx");
  return lines.map((line) => Number(line.split(",")[column]));
}

function csvCell(value: string | number): string {
  const text = String(value);
  return /[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/**
 * Spaces (double too), punctuation, non-ASCII, a leading digit, names equal but for case (DuckDB, which reads
 * the files, would call the second `plan_1`), names equal once made identifiers, the graph's output names.
 */
function nastyTable(n: number): string {
  let state = 7;
  const random = (): number => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
  const header = [
    "Monthly  Usage",
    "Monthly__Usage",
    "monthly usage",
    "Plan",
    "plan",
    "2nd line?",
    "Größe (cm)",
    "état",
    "a.b/c-d",
    "label",
    "probabilities",
    "Churn?",
  ];
  const rows = [header.map(csvCell).join(",")];
  for (let i = 0; i < n; i++) {
    const usage = Math.round(random() * 12000) / 100;
    const state_ = ["actif", "suspendu", "résilié"][Math.floor(random() * 3)] as string;
    const noise = Math.round((random() * 2 - 1) * 1000) / 1000;
    const risk = 0.01 * usage - 1 + (state_ === "suspendu" ? 1 : 0) + noise;
    const churn = random() < 1 / (1 + Math.exp(-risk)) ? "Yes" : "No";
    rows.push(
      [
        usage,
        Math.floor(random() * 50),
        noise,
        ["basic", "plus", "pro"][Math.floor(random() * 3)] as string,
        random() < 0.5 ? "a" : "b",
        random() < 0.5 ? "yes" : "no",
        Math.round(1500 + random() * 400) / 10,
        state_,
        Math.floor(random() * 5),
        random() < 0.5 ? "x" : "y",
        Math.round(random() * 1000) / 1000,
        churn,
      ]
        .map(csvCell)
        .join(","),
    );
  }
  return `${rows.join("\n")}\n`;
}

let orangeBundle: string;
let nastyBundle: string;
let nastyData: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "churnops-names-"));
  home = join(dir, "home");
  nastyData = join(dir, "nasty.csv");
  writeFileSync(nastyData, nastyTable(800));
  orangeBundle = train(ORANGE, "Churn", "True");
  nastyBundle = train(nastyData, "Churn?", "Yes");
}, 600_000);

describe("column names as people write them", () => {
  it.each([
    ["the Orange telecom table (spaces, no id column)", () => ({ bundle: orangeBundle, data: ORANGE, rows: 3333 })],
    ["a table of awkward names", () => ({ bundle: nastyBundle, data: nastyData, rows: 800 })],
  ])("trains, verifies and batch-scores %s under the original names, as Python scores it", async (_name, setup) => {
    const { bundle, data, rows } = setup();
    trainer(["verify", bundle]);
    const model = await ChurnModel.load(bundle);
    try {
      const features = model.bundle.schema.features;
      expect(features.some((f) => f.input_name !== undefined && f.input_name !== f.name)).toBe(true);
      const out = join(dir, `scores-${rows}.csv`);
      const summary = await scoreBatch({ source: { data }, model, kind: "daily", asOf: "2026-11-30", store: null, out, chunkSize: 1000, badRows: "fail" });
      expect(summary.rowsScored).toBe(rows);
      expect(summary.rowsQuarantined).toBe(0);
      const [header, ...lines] = readFileSync(out, "utf8").trim().split(/\r?\n/);
      const column = (header ?? "").split(",").indexOf("probability");
      const python = pythonScores(bundle, data);
      const worst = Math.max(...lines.map((line, i) => Math.abs(Number(line.split(",")[column]) - (python[i] as number))));
      expect(worst).toBeLessThanOrEqual(1e-6);
    } finally {
      await model.close();
    }
  });

  it("reads columns that differ only in case under the file's own names, from CSV and Parquet", async () => {
    const csv = join(dir, "case.csv");
    writeFileSync(csv, "Plan,plan,x y\nbasic,a,1\n");
    const parquet = join(dir, "case.parquet");
    const write = "import pyarrow as pa, pyarrow.parquet as pq, sys; pq.write_table(pa.table({'Plan': ['basic'], 'plan': ['a'], 'x y': ['1']}), sys.argv[1])";
    execFileSync(fixture.python, ["-c", write, parquet]);
    for (const data of [csv, parquet]) {
      const source = await openSource({ data });
      try {
        expect(source.columns).toEqual(["Plan", "plan", "x y"]);
        const chunks = [];
        for await (const chunk of source.chunks({ columns: ["plan", "Plan"], chunkSize: 10, skipRows: 0 })) chunks.push(chunk);
        expect(chunks[0]?.columns.get("plan")).toEqual(["a"]);
        expect(chunks[0]?.columns.get("Plan")).toEqual(["basic"]);
      } finally {
        await source.close();
      }
    }
  });

  it("answers /v1/predict for a customer given under the original names", async () => {
    const [header, first] = readFileSync(nastyData, "utf8").split("\n");
    const names = (header ?? "").split(",").map((h) => (h.startsWith('"') ? h.slice(1, -1) : h));
    const cells = (first ?? "").split(",");
    const features = JSON.parse(readFileSync(join(nastyBundle, "bundle.json"), "utf8")).schema.features as { name: string; kind: string }[];
    const body: Record<string, unknown> = { customer_id: "row-0" };
    for (const f of features) body[f.name] = f.kind === "numeric" ? Number(cells[names.indexOf(f.name)]) : cells[names.indexOf(f.name)];
    const t = await startApp({ champion: nastyBundle });
    try {
      const res = await predict(t.app, body);
      expect(res.statusCode, res.body).toBe(200);
      const probability = (JSON.parse(res.body) as { churn_probability: number }).churn_probability;
      expect(Math.abs(probability - (pythonScores(nastyBundle, nastyData)[0] as number))).toBeLessThanOrEqual(1e-6);
    } finally {
      await t.close();
    }
  });
});
