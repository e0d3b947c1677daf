import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import type { BundleJson } from "../../src/model/bundle.js";
import { ChurnModel } from "../../src/model/runtime.js";
import { runCli } from "../helpers/cli.js";

/** Hostile or careless edits to a copy of the fixture bundle; every one is `bundle_invalid`, never a crash. */
const fixture = inject("fixture");

function edited(edit: (json: BundleJson, dir: string) => void): string {
  const dir = join(mkdtempSync(join(tmpdir(), "churnops-contract-")), "bundle");
  cpSync(fixture.bundleDir, dir, { recursive: true });
  const json = JSON.parse(readFileSync(join(dir, "bundle.json"), "utf8")) as BundleJson;
  edit(json, dir);
  writeFileSync(join(dir, "bundle.json"), JSON.stringify(json));
  return dir;
}

const categorical = (json: BundleJson) => {
  const f = json.schema.features.find((x) => x.kind === "categorical");
  if (f === undefined || f.kind !== "categorical") throw new Error("fixture has no categorical feature");
  return f;
};

const cases: [string, (json: BundleJson, dir: string) => void, RegExp][] = [
  ["a category the graph never saw", (j) => categorical(j).categories.push("fax"), /categories of \w+ that the graph never saw: fax/],
  [
    "a feature's kind swapped",
    (j) => {
      const f = categorical(j);
      Object.assign(f, { kind: "numeric", integer: false, categories: undefined });
    },
    /is numeric in bundle.json but the graph takes a string tensor/,
  ],
  ["a duplicate feature", (j) => j.schema.features.push({ ...(j.schema.features[0] as BundleJson["schema"]["features"][number]) }), /listed twice/],
  ["a missing feature", (j) => j.schema.features.pop(), /the graph takes input\(s\) \w+ that bundle.json does not list/],
  [
    "a feature the graph lacks",
    (j) => j.schema.features.push({ name: "shoe_size", kind: "numeric", integer: false, required: true }),
    /no input for feature\(s\) shoe_size/,
  ],
  ["a wrong probability output", (j) => Object.assign(j.onnx, { probability_output: "label" }), /no float output named label/],
  ["onnx.file outside the folder", (j) => Object.assign(j.onnx, { file: "../../etc/passwd" }), /onnx.file must name a file inside the bundle folder/],
  ["onnx.file a device", (j) => Object.assign(j.onnx, { file: "/dev/zero" }), /onnx.file must name a file inside the bundle folder/],
  [
    "onnx.file a directory",
    (j, dir) => {
      mkdirSync(join(dir, "sub"));
      Object.assign(j.onnx, { file: "sub" });
    },
    /sub is not a regular file/,
  ],
  [
    "one golden row",
    (j) => {
      j.golden.rows = j.golden.rows.slice(0, 1);
      j.golden.probabilities = j.golden.probabilities.slice(0, 1);
    },
    /golden has 1 rows; the contract asks for at least 200/,
  ],
  ["a threshold of 1", (j) => Object.assign(j.thresholds, { operating: 1 }), /thresholds.operating/],
  ["bands out of order", (j) => j.bands.reverse(), /bands must be ordered/],
  [
    "two bands with one name",
    (j) => {
      for (const b of j.bands) b.name = "risky";
    },
    /band names must be unique/,
  ],
];

describe("a malformed bundle is refused with bundle_invalid", () => {
  it.each(cases)("refuses %s", async (_name, edit, reason) => {
    const dir = edited(edit);
    await expect(ChurnModel.load(dir)).rejects.toMatchObject({ code: "bundle_invalid", message: expect.stringMatching(reason) });
  });

  it("the CLI exits 2 with the reason and no stack trace", async () => {
    const dir = edited((j) => Object.assign(j.onnx, { file: "../../etc/passwd" }));
    const res = await runCli(["score", "--data", fixture.dataPath, "--model", dir, "--no-store", "--out", join(dir, "..", "s.csv")], {
      CHURNOPS_HOME: join(dir, "..", "home"),
    });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/onnx.file must name a file inside the bundle folder/);
    expect(res.stderr).not.toMatch(/internal error|\n\s+at /);
  });

  it("the Python verify refuses what the TypeScript runtime refuses (one golden row)", async () => {
    const dir = edited((j) => {
      j.golden.rows = j.golden.rows.slice(0, 1);
      j.golden.probabilities = j.golden.probabilities.slice(0, 1);
    });
    const res = await runCli(["verify", dir], { CHURNOPS_HOME: join(dir, "..", "home") });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/at least 200 rows/);
  });
});
