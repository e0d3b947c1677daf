import { describe, expect, it } from "vitest";
import { RowValidator } from "../../src/data/validate.js";
import type { BundleJson } from "../../src/model/bundle.js";

/** The input-schema part of a bundle, as the trainer writes it (docs/bundle.md). */
const schema = {
  id_column: "customer_id",
  target: { column: "churned", positive: "1" },
  missing_token: "__missing__",
  features: [
    { name: "tenure_months", kind: "numeric", integer: true, required: true, lower_bound: 0, upper_bound: null },
    { name: "monthly_charges", kind: "numeric", integer: false, required: true, lower_bound: 0, upper_bound: null },
    { name: "total_charges", kind: "numeric", integer: false, required: false, lower_bound: 0, upper_bound: null },
    { name: "contract_type", kind: "categorical", required: true, categories: ["month-to-month", "one_year", "two_year"] },
  ],
  derived: [],
  transformed_feature_names: [],
} as const;
const bundle = { schema } as unknown as BundleJson;
const validator = new RowValidator(bundle);
const good = { customer_id: "c1", tenure_months: 12, monthly_charges: 70.5, total_charges: 846, contract_type: "one_year" };

describe("row validation against the bundle schema", () => {
  it("accepts a complete, valid record and keeps its values", () => {
    const r = validator.checkRecord(good, { textNumbers: false });
    expect(r).toEqual({ ok: true, row: { tenure_months: 12, monthly_charges: 70.5, total_charges: 846, contract_type: "one_year" } });
  });

  it("rejects a negative tenure as below the minimum, naming the field", () => {
    const r = validator.checkRecord({ ...good, tenure_months: -1 }, { textNumbers: false });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.violations).toHaveLength(1);
      expect(r.violations[0]).toMatchObject({ field: "tenure_months", code: "below_minimum" });
      expect(r.violations[0]?.message).toContain("expected an integer >= 0");
    }
  });

  it("rejects an unseen category instead of scoring it as all-zeros", () => {
    const r = validator.checkRecord({ ...good, contract_type: "weekly" }, { textNumbers: false });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.violations[0]).toMatchObject({ field: "contract_type", code: "unseen_category" });
      expect(r.violations[0]?.expected).toContain('"month-to-month"');
    }
  });

  it("rejects NaN and Infinity as not finite, and a fractional tenure as not an integer", () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const r = validator.checkRecord({ ...good, monthly_charges: bad }, { textNumbers: false });
      expect(r.ok ? null : r.violations[0]?.code).toBe("not_finite");
    }
    const r = validator.checkRecord({ ...good, tenure_months: 1.5 }, { textNumbers: false });
    expect(r.ok ? null : r.violations[0]?.code).toBe("not_integer");
  });

  it("requires JSON numbers from API clients but parses numbers written as text in files", () => {
    const strict = validator.checkRecord({ ...good, tenure_months: "12" }, { textNumbers: false });
    expect(strict.ok ? null : strict.violations[0]?.code).toBe("wrong_type");
    const lenient = validator.checkRecord({ ...good, tenure_months: " 12 " }, { textNumbers: true });
    expect(lenient.ok && lenient.row.tenure_months).toBe(12);
    const garbage = validator.checkRecord({ ...good, tenure_months: "12 months" }, { textNumbers: true });
    expect(garbage.ok ? null : garbage.violations[0]?.code).toBe("wrong_type");
  });

  it("treats a blank optional value as missing and a blank required value as a violation", () => {
    const optional = validator.checkRecord({ ...good, total_charges: " " }, { textNumbers: true });
    expect(optional.ok && optional.row.total_charges).toBeNull();
    const required = validator.checkRecord({ ...good, monthly_charges: null }, { textNumbers: false });
    expect(required.ok ? null : required.violations[0]?.code).toBe("missing");
  });

  it("reports every violation of a record, not only the first", () => {
    const r = validator.checkRecord({ customer_id: "x", tenure_months: -3, contract_type: "weekly" }, { textNumbers: false });
    expect(r.ok ? [] : r.violations.map((v) => v.field).sort()).toEqual(["contract_type", "monthly_charges", "tenure_months"]);
  });

  it("splits a chunk into a scorable batch and quarantined rows without losing any row", () => {
    const columns = new Map<string, unknown[]>([
      ["tenure_months", [1, -1, 30, 4]],
      ["monthly_charges", [20, 30, null, 50]],
      ["total_charges", [20, 30, 40, null]],
      ["contract_type", ["one_year", "two_year", "two_year", "weekly"]],
    ]);
    const r = validator.checkChunk(columns, 4, { textNumbers: false });
    expect(r.goodRows).toEqual([0]);
    expect(r.badRows.map((b) => b.index)).toEqual([1, 2, 3]);
    expect(r.batch.size).toBe(1);
    expect(Array.from(r.batch.columns.get("tenure_months") as Float32Array)).toEqual([1]);
  });

  it("feeds a missing optional number as NaN and a missing optional category as the missing token", () => {
    const optionalCat = new RowValidator({
      schema: { ...schema, features: [{ name: "plan", kind: "categorical", required: false, categories: ["a"] }, schema.features[2]] },
    } as unknown as BundleJson);
    const r = optionalCat.checkChunk(
      new Map<string, unknown[]>([
        ["plan", [null]],
        ["total_charges", [null]],
      ]),
      1,
      { textNumbers: false },
    );
    expect(r.batch.columns.get("plan")).toEqual(["__missing__"]);
    expect(Number.isNaN((r.batch.columns.get("total_charges") as Float32Array)[0])).toBe(true);
  });
});
