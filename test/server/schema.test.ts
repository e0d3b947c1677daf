import { describe, expect, it } from "vitest";
import { FLOAT32_MAX } from "../../src/data/validate.js";
import type { BundleJson } from "../../src/model/bundle.js";
import { batchRequestSchema, customerSchema } from "../../src/server/schema.js";
import { CustomerValidator, parseCustomerId } from "../../src/server/validation.js";
import { assignmentPoint, assignVariant } from "../../src/server/variants.js";

/** A bundle of another table than the fixture's: the API must serve its fields, not hand-written ones. */
const bundle = {
  model_name: "telco",
  model_version: "7",
  schema: {
    id_column: "customerID",
    target: { column: "Churn", positive: "Yes" },
    missing_token: "__missing__",
    features: [
      { name: "tenure", kind: "numeric", integer: true, required: true, min: 0, max: 72, lower_bound: 0, upper_bound: null },
      { name: "MonthlyCharges", kind: "numeric", integer: false, required: true, lower_bound: 0, upper_bound: 500 },
      { name: "TotalCharges", kind: "numeric", integer: false, required: false, lower_bound: null, upper_bound: null },
      { name: "Contract", kind: "categorical", required: true, categories: ["Month-to-month", "One year", "Two year"] },
      { name: "PaymentMethod", kind: "categorical", required: false, categories: ["Mailed check", "Credit card"] },
    ],
    derived: [],
    transformed_feature_names: [],
  },
  golden: {
    rows: [{ customerID: "7590-VHVEG", tenure: 1, MonthlyCharges: 29.85, TotalCharges: 29.85, Contract: "Month-to-month", PaymentMethod: null }],
    probabilities: [0.61],
  },
} as unknown as BundleJson;

describe("request schema generated from the bundle", () => {
  it("lists the id column and every feature, requiring exactly the required ones", () => {
    const s = customerSchema(bundle, "reject");
    expect(Object.keys(s.properties as object)).toEqual(["customerID", "tenure", "MonthlyCharges", "TotalCharges", "Contract", "PaymentMethod"]);
    expect(s.required).toEqual(["customerID", "tenure", "MonthlyCharges", "Contract"]);
    expect(s.additionalProperties).toBe(false);
    expect(customerSchema(bundle, "ignore").additionalProperties).toBe(true);
  });

  it("types integers, bounds and categories from the bundle, and lets optional fields be null or blank", () => {
    const p = customerSchema(bundle, "reject").properties as Record<string, Record<string, unknown>>;
    expect(p.tenure).toMatchObject({ type: "integer", minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
    expect(p.MonthlyCharges).toMatchObject({ type: "number", minimum: 0, maximum: 500 });
    expect(p.TotalCharges?.anyOf).toMatchObject([{ type: "number", nullable: true, minimum: -FLOAT32_MAX, maximum: FLOAT32_MAX }, { type: "string" }]);
    const blank = new RegExp(String((p.TotalCharges?.anyOf as { pattern?: string }[] | undefined)?.[1]?.pattern));
    expect(["", " ", "\t\u00a0"].every((t) => blank.test(t))).toBe(true);
    expect(["0", " 1 ", "x"].some((t) => blank.test(t))).toBe(false);
    expect(p.Contract).toEqual({ type: "string", enum: ["Month-to-month", "One year", "Two year"] });
    expect(p.PaymentMethod?.anyOf).toMatchObject([{ type: "string", nullable: true, enum: ["Mailed check", "Credit card", null] }, { type: "string" }]);
  });

  it("gives /docs a real customer as the example: the bundle's first golden row", () => {
    const s = customerSchema(bundle, "reject");
    const golden = { customerID: "7590-VHVEG", tenure: 1, MonthlyCharges: 29.85, TotalCharges: 29.85, Contract: "Month-to-month", PaymentMethod: null };
    expect(s.example).toEqual(golden);
    expect(batchRequestSchema(s, 10).example).toEqual({ customers: [golden] });
    expect(JSON.stringify(s.example)).not.toContain("9007199254740991");
    // OpenAPI 3.0 has no type lists ("Unknown Type: number,null" in Swagger UI): optional fields are nullable.
    expect(JSON.stringify(s)).not.toMatch(/"type":\[/);
  });

  it("caps a batch at the configured limit", () => {
    const s = batchRequestSchema(customerSchema(bundle, "reject"), 250);
    expect((s.properties as Record<string, Record<string, unknown>>).customers).toMatchObject({ type: "array", minItems: 1, maxItems: 250 });
  });
});

describe("customer validation", () => {
  const validator = new CustomerValidator(bundle, "reject");
  const good = { customerID: "7590-VHVEG", tenure: 1, MonthlyCharges: 29.85, TotalCharges: null, Contract: "Month-to-month" };

  it("accepts a record that matches the generated schema, absent optional fields included", () => {
    expect(validator.check(good, "")).toEqual({
      ok: true,
      value: { tenure: 1, MonthlyCharges: 29.85, TotalCharges: null, Contract: "Month-to-month", PaymentMethod: null },
    });
  });

  it("reports every violation with its path: impossible value, unseen category, unknown field", () => {
    const r = validator.check({ ...good, tenure: -1, Contract: "weekly", colour: "red" }, "customers[4]");
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.violations.map((v) => [v.field, v.code])).toEqual([
        ["customers[4].tenure", "below_minimum"],
        ["customers[4].Contract", "unseen_category"],
        ["customers[4].colour", "unknown_field"],
      ]);
    }
  });

  it("ignores unknown fields when the policy says so", () => {
    expect(new CustomerValidator(bundle, "ignore").check({ ...good, colour: "red" }, "").ok).toBe(true);
  });

  it("refuses a finite double that float32 cannot hold", () => {
    const r = validator.check({ ...good, TotalCharges: 1e39 }, "");
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.violations[0]).toMatchObject({ field: "TotalCharges", code: "above_maximum" });
    expect(validator.check({ ...good, TotalCharges: FLOAT32_MAX }, "").ok).toBe(true);
  });

  it("refuses an integer beyond what JSON carries exactly, which would be rounded before any check", () => {
    const r = validator.check({ ...good, tenure: 2 ** 60 }, "");
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.violations[0]).toMatchObject({ field: "tenure", code: "above_maximum" });
    expect(validator.check({ ...good, tenure: Number.MAX_SAFE_INTEGER }, "").ok).toBe(true);
  });

  it("reads a customer id from text or a safe integer and refuses anything else", () => {
    expect(parseCustomerId("abc", "id")).toEqual({ ok: true, value: "abc" });
    expect(parseCustomerId(42, "id")).toEqual({ ok: true, value: "42" });
    for (const [bad, code] of [
      ["", "missing"],
      [null, "missing"],
      [undefined, "missing"],
      [1.5, "not_integer"],
      [2 ** 60, "above_maximum"],
      [true, "wrong_type"],
      [{ a: 1 }, "wrong_type"],
      ["x".repeat(129), "too_long"],
    ] as const) {
      const r = parseCustomerId(bad, "id");
      expect(r.ok, String(bad)).toBe(false);
      if (!r.ok) expect(r.violations[0]?.code).toBe(code);
    }
  });
});

describe("variant assignment", () => {
  const routing = { mode: "split" as const, share: 0.1, salt: "churnops" };

  it("gives a customer the same variant every time, and the same point in every process", () => {
    for (let i = 0; i < 200; i++) expect(assignVariant(`c${i}`, routing)).toBe(assignVariant(`c${i}`, routing));
    // sha256("churnops:c-42") starts with these bytes in every language: the assignment is reproducible elsewhere.
    expect(assignmentPoint("c-42", "churnops")).toBeCloseTo(assignmentPoint("c-42", "churnops"), 15);
    expect(assignmentPoint("c-42", "churnops")).not.toBe(assignmentPoint("c-42", "other-salt"));
  });

  it("sends close to the configured share of customers to the challenger", () => {
    for (const share of [0.05, 0.1, 0.5]) {
      const n = 20_000;
      let challenger = 0;
      for (let i = 0; i < n; i++) if (assignVariant(`customer-${i}`, { ...routing, share }) === "challenger") challenger++;
      // 4 binomial standard deviations: a real hash lands inside; a biased one (or a constant) does not.
      expect(Math.abs(challenger / n - share)).toBeLessThan(4 * Math.sqrt((share * (1 - share)) / n));
    }
  });

  it("never routes to the challenger outside split mode or at share 0", () => {
    for (let i = 0; i < 500; i++) {
      expect(assignVariant(`c${i}`, { ...routing, mode: "shadow" })).toBe("champion");
      expect(assignVariant(`c${i}`, { ...routing, share: 0 })).toBe("champion");
      expect(assignVariant(`c${i}`, { ...routing, share: 1 })).toBe("challenger");
    }
  });
});
