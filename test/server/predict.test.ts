import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { batchFor, customer, type ErrorJson, predict, predictBatch, startApp, type TestApp } from "./helpers.js";

let t: TestApp;
beforeAll(async () => {
  t = await startApp({ server: { batch_limit: 50, body_limit_bytes: 64 * 1024 } });
});
afterAll(async () => {
  await t?.close();
});

function errorOf(body: string): ErrorJson["error"] {
  return (JSON.parse(body) as ErrorJson).error;
}

async function rejected(body: unknown): Promise<ErrorJson["error"]> {
  const res = await predict(t.app, body);
  expect(res.statusCode, res.body).toBe(422);
  return errorOf(res.body);
}

describe("POST /v1/predict", () => {
  it("scores one customer with probability, band, decision, model and variant", async () => {
    const res = await predict(t.app, customer("c-1"));
    expect(res.statusCode).toBe(200);
    const body = JSON.parse(res.body) as Record<string, unknown>;
    expect(body).toMatchObject({ customer_id: "c-1", model: { name: "churn", version: expect.any(String) }, variant: "champion" });
    const p = body.churn_probability as number;
    expect(p).toBeGreaterThan(0);
    expect(p).toBeLessThan(1);
    expect(["high", "medium", "low"]).toContain(body.risk_band);
    expect(typeof body.decision).toBe("boolean");
    expect(res.headers["x-request-id"]).toMatch(/.+/);
  });

  it("gives the same probability as batch scoring of the same row, and does not depend on the customer id", async () => {
    const a = JSON.parse((await predict(t.app, customer("a"))).body) as { churn_probability: number };
    const b = JSON.parse((await predict(t.app, customer(12345))).body) as { churn_probability: number; customer_id: string };
    expect(b.churn_probability).toBe(a.churn_probability);
    expect(b.customer_id).toBe("12345");
  });

  it("answers a riskier customer with a higher probability (more tickets, shorter tenure)", async () => {
    const calm = JSON.parse((await predict(t.app, customer("x", { tenure_months: 70, num_support_tickets: 0, contract_type: "two_year" }))).body);
    const risky = JSON.parse((await predict(t.app, customer("y", { tenure_months: 1, num_support_tickets: 8, contract_type: "month-to-month" }))).body);
    expect(risky.churn_probability).toBeGreaterThan(calm.churn_probability);
  });

  it("accepts an optional field given as null or left out", async () => {
    expect((await predict(t.app, customer("n", { total_charges: null }))).statusCode).toBe(200);
    const { total_charges: _, ...without } = customer("n");
    expect((await predict(t.app, without)).statusCode).toBe(200);
  });

  it("echoes a well-formed X-Request-Id and replaces a malformed one", async () => {
    const ok = await predict(t.app, customer(), { authorization: "Bearer test-key-0123456789abcdef", "x-request-id": "crm-42.a" });
    expect(ok.headers["x-request-id"]).toBe("crm-42.a");
    const bad = await predict(t.app, customer(), { authorization: "Bearer test-key-0123456789abcdef", "x-request-id": "has spaces\tand tabs" });
    expect(bad.headers["x-request-id"]).not.toBe("has spaces\tand tabs");
  });
});

describe("validation answers 422 with the field and what was expected", () => {
  it("rejects a negative tenure with 422", async () => {
    const e = await rejected(customer("c", { tenure_months: -1 }));
    expect(e).toMatchObject({ code: "validation_failed", field: "tenure_months" });
    expect(e.violations?.[0]).toMatchObject({ field: "tenure_months", code: "below_minimum", expected: "an integer >= 0" });
  });

  it("rejects an unseen contract type instead of scoring it", async () => {
    const e = await rejected(customer("c", { contract_type: "weekly" }));
    expect(e.violations?.[0]).toMatchObject({ field: "contract_type", code: "unseen_category" });
    expect(e.violations?.[0]?.expected).toContain('"month-to-month"');
  });

  it("rejects a missing required field, and null for it", async () => {
    const { tenure_months: _, ...missing } = customer();
    expect((await rejected(missing)).violations?.[0]).toMatchObject({ field: "tenure_months", code: "missing" });
    expect((await rejected(customer("c", { monthly_charges: null }))).violations?.[0]).toMatchObject({ field: "monthly_charges", code: "missing" });
  });

  it("rejects a wrong type: a number as text, a category as a number, an object", async () => {
    expect((await rejected(customer("c", { monthly_charges: "70.5" }))).violations?.[0]).toMatchObject({ field: "monthly_charges", code: "wrong_type" });
    expect((await rejected(customer("c", { contract_type: 1 }))).violations?.[0]).toMatchObject({ field: "contract_type", code: "wrong_type" });
    expect((await rejected(customer("c", { tenure_months: { v: 1 } }))).violations?.[0]).toMatchObject({ field: "tenure_months", code: "wrong_type" });
  });

  it("rejects a fractional value of an integer feature", async () => {
    expect((await rejected(customer("c", { tenure_months: 1.5 }))).violations?.[0]).toMatchObject({ field: "tenure_months", code: "not_integer" });
  });

  it("rejects a number float32 cannot hold (the graph would see Infinity)", async () => {
    expect((await rejected(customer("c", { total_charges: 1e300 }))).violations?.[0]).toMatchObject({ field: "total_charges", code: "above_maximum" });
  });

  it("rejects an unknown field by default", async () => {
    const e = await rejected(customer("c", { favourite_colour: "red" }));
    expect(e.violations?.[0]).toMatchObject({ field: "favourite_colour", code: "unknown_field" });
  });

  it("rejects a missing or malformed customer id", async () => {
    const { customer_id: _, ...noId } = customer();
    expect((await rejected(noId)).violations?.[0]).toMatchObject({ field: "customer_id", code: "missing" });
    expect((await rejected(customer(1.25))).violations?.[0]).toMatchObject({ field: "customer_id", code: "not_integer" });
  });

  it("lists every violation of a record, not just the first", async () => {
    const e = await rejected(customer("c", { tenure_months: -3, contract_type: "weekly", num_logins_30d: "many", extra: 1 }));
    expect(e.violations?.map((v) => v.field).sort()).toEqual(["contract_type", "extra", "num_logins_30d", "tenure_months"]);
    expect(e.message).toMatch(/^4 fields cannot be scored/);
  });

  it("rejects a body that is not one customer's object", async () => {
    for (const body of [[customer()], "text", 5, null]) {
      const e = await rejected(body);
      expect(e.violations?.[0]).toMatchObject({ code: "wrong_type" });
    }
  });
});

describe("client mistakes are 4xx, never 500", () => {
  it("answers malformed JSON with 400", async () => {
    for (const payload of ["{", '{"customer_id": "c", "tenure_months": NaN}', '{"tenure_months": Infinity}', "", '{"__proto__": {"x": 1}}']) {
      const res = await t.app.inject({
        method: "POST",
        url: "/v1/predict",
        headers: { "content-type": "application/json", authorization: "Bearer test-key-0123456789abcdef" },
        payload,
      });
      expect(res.statusCode, payload).toBe(400);
      expect(errorOf(res.body).code).toBe("malformed_json");
    }
  });

  it("answers a body over the limit with 413", async () => {
    const res = await predict(t.app, customer("c", { padding: "x".repeat(70 * 1024) }));
    expect(res.statusCode).toBe(413);
    expect(errorOf(res.body).code).toBe("payload_too_large");
  });

  it.each(["text/csv", "text/plain", "text/plain; charset=utf-8"])("answers a %s body with 415 in the error envelope", async (type) => {
    const res = await t.app.inject({
      method: "POST",
      url: "/v1/predict",
      headers: { "content-type": type, authorization: "Bearer test-key-0123456789abcdef" },
      payload: JSON.stringify(customer()),
    });
    expect(res.statusCode).toBe(415);
    expect(JSON.parse(res.body)).toEqual({ error: { code: "unsupported_media_type", message: expect.any(String) } });
  });

  it("answers a known path called with another method with 405 and Allow", async () => {
    const res = await t.app.inject({ method: "DELETE", url: "/v1/predict", headers: { authorization: "Bearer test-key-0123456789abcdef" } });
    expect(res.statusCode).toBe(405);
    expect(res.headers.allow).toContain("POST");
    expect(errorOf(res.body).code).toBe("method_not_allowed");
    // QUERY carries a body: Fastify would fail it on its missing content type before finding no route.
    const query = await t.app.inject({ method: "QUERY", url: "/healthz", headers: { authorization: "Bearer test-key-0123456789abcdef" } });
    expect(query.statusCode).toBe(405);
  });

  it("answers an unknown route with a JSON 404", async () => {
    const res = await t.app.inject({ method: "GET", url: "/v1/nothing", headers: { authorization: "Bearer test-key-0123456789abcdef" } });
    expect(res.statusCode).toBe(404);
    expect(errorOf(res.body).code).toBe("not_found");
  });
});

describe("concurrent requests", () => {
  it("answers each of many simultaneous requests with its own customer's score (calls are coalesced)", async () => {
    const customers = batchFor(40);
    const sequential: number[] = [];
    for (const c of customers) sequential.push(JSON.parse((await predict(t.app, c)).body).churn_probability);
    const concurrent = await Promise.all(customers.map((c) => predict(t.app, c)));
    expect(concurrent.map((r) => JSON.parse(r.body).customer_id)).toEqual(customers.map((c) => c.customer_id));
    expect(concurrent.map((r) => JSON.parse(r.body).churn_probability)).toEqual(sequential);
    expect(new Set(sequential).size).toBeGreaterThan(5);
  });
});

describe("POST /v1/predict/batch", () => {
  it("scores customers in request order, one result each", async () => {
    const customers = batchFor(30);
    const res = await predictBatch(t.app, customers);
    expect(res.statusCode).toBe(200);
    const { predictions } = JSON.parse(res.body) as { predictions: { customer_id: string; churn_probability: number }[] };
    expect(predictions.map((p) => p.customer_id)).toEqual(customers.map((c) => String(c.customer_id)));
    const single = JSON.parse((await predict(t.app, customers[7])).body) as { churn_probability: number };
    expect(predictions[7]?.churn_probability).toBe(single.churn_probability);
  });

  it("rejects the whole batch when one customer is invalid, naming its position", async () => {
    const customers = batchFor(5);
    customers[3] = { ...customers[3], tenure_months: -1 };
    const res = await predictBatch(t.app, customers);
    expect(res.statusCode).toBe(422);
    const e = errorOf(res.body);
    expect(e.field).toBe("customers[3].tenure_months");
    expect(e.violations).toHaveLength(1);
  });

  it("answers a batch over the configured limit with 413", async () => {
    const res = await predictBatch(t.app, batchFor(51));
    expect(res.statusCode).toBe(413);
    expect(errorOf(res.body)).toMatchObject({ code: "batch_too_large", field: "customers" });
  });

  it("rejects an empty batch, a missing list, and unknown top-level fields with 422", async () => {
    expect((await predictBatch(t.app, [])).statusCode).toBe(422);
    const wrong = await t.app.inject({
      method: "POST",
      url: "/v1/predict/batch",
      headers: { authorization: "Bearer test-key-0123456789abcdef" },
      payload: { rows: [] },
    });
    expect(wrong.statusCode).toBe(422);
    expect(errorOf(wrong.body).violations?.map((v) => v.code)).toEqual(["unknown_field"]);
    const notList = await t.app.inject({
      method: "POST",
      url: "/v1/predict/batch",
      headers: { authorization: "Bearer test-key-0123456789abcdef" },
      payload: { customers: {} },
    });
    expect(errorOf(notList.body)).toMatchObject({ code: "validation_failed", field: "customers" });
  });

  it("caps the violations listed for a batch of garbage but counts them all", async () => {
    const res = await predictBatch(
      t.app,
      Array.from({ length: 50 }, (_, i) => ({ customer_id: `g${i}`, tenure_months: -1, contract_type: "weekly", junk: 1 })),
    );
    const e = errorOf(res.body);
    expect(res.statusCode).toBe(422);
    expect(e.violations).toHaveLength(100);
    expect(e.message).toMatch(/more not listed/);
  });
});

describe("model, health, docs and metrics", () => {
  it("GET /v1/model describes the serving model: version, threshold, bands, metrics and its request schema", async () => {
    const res = await t.app.inject({ method: "GET", url: "/v1/model", headers: { authorization: "Bearer test-key-0123456789abcdef" } });
    expect(res.statusCode).toBe(200);
    const body = JSON.parse(res.body);
    expect(body.champion).toMatchObject({ name: "churn", variant: "champion", id_field: "customer_id" });
    expect(body.champion.threshold).toBeGreaterThan(0);
    expect(body.champion.bands.map((b: { name: string }) => b.name)).toEqual(["high", "medium", "low"]);
    expect(body.champion.request_schema.required).toContain("tenure_months");
    expect(body.routing).toEqual({ mode: "champion_only", challenger_share: 0 });
  });

  it("serves health and readiness without a key", async () => {
    expect(JSON.parse((await t.app.inject({ method: "GET", url: "/healthz" })).body)).toEqual({ status: "ok" });
    const ready = await t.app.inject({ method: "GET", url: "/readyz" });
    expect(ready.statusCode).toBe(200);
    expect(JSON.parse(ready.body)).toMatchObject({ status: "ready", champion: { name: "churn" }, challenger: null });
  });

  it("publishes an OpenAPI document whose request schema comes from the model", async () => {
    const res = await t.app.inject({ method: "GET", url: "/openapi.json" });
    expect(res.statusCode).toBe(200);
    const doc = JSON.parse(res.body);
    const schema = doc.paths["/v1/predict"].post.requestBody.content["application/json"].schema;
    expect(schema.properties.contract_type.enum).toEqual(["month-to-month", "one_year", "two_year"]);
    expect(doc.paths["/v1/predict"].post.responses["422"]).toBeDefined();
    expect(doc.paths["/v1/predict/batch"].post.requestBody.content["application/json"].schema.properties.customers.maxItems).toBe(50);
    expect((await t.app.inject({ method: "GET", url: "/docs/" })).statusCode).toBe(200);
  });

  it("counts requests by route and status and predictions by band and model version", async () => {
    await predict(t.app, customer("m-1"));
    await predict(t.app, customer("m-2", { tenure_months: -1 }));
    const text = (await t.app.inject({ method: "GET", url: "/metrics" })).body;
    expect(text).toMatch(/churnops_http_requests_total\{route="\/v1\/predict",method="POST",status="200"\} \d+/);
    expect(text).toMatch(/churnops_http_requests_total\{route="\/v1\/predict",method="POST",status="422"\} \d+/);
    expect(text).toMatch(/churnops_http_request_duration_seconds_bucket\{le="0.005",route="\/v1\/predict",method="POST",status="200"\} \d+/);
    expect(text).toMatch(/churnops_predictions_total\{band="(high|medium|low)",model_version="[^"]+",variant="champion",shadow="0"\} \d+/);
    expect(text).toMatch(/churnops_model_info\{variant="champion",name="churn",version="[^"]+"\} 1/);
  });
});

describe("explanations on /v1/predict", () => {
  interface Explained {
    churn_probability: number;
    explanation?: {
      baseline: number;
      contributions: { feature: string; value: unknown; contribution: number }[];
      reasons: { feature: string; text: string; contribution: number }[];
    } | null;
  }
  const post = (url: string, body: unknown) =>
    t.app.inject({
      method: "POST",
      url,
      headers: { "content-type": "application/json", authorization: "Bearer test-key-0123456789abcdef" },
      payload: JSON.stringify(body),
    });

  it("explains a prediction: baseline + contributions is the log-odds, reasons are the largest positive ones", async () => {
    const res = await post("/v1/predict", customer("e-1", { tenure_months: 1, num_support_tickets: 7, contract_type: "month-to-month" }));
    expect(res.statusCode).toBe(200);
    const body = JSON.parse(res.body) as Explained;
    const e = body.explanation;
    if (e === null || e === undefined) throw new Error("no explanation");
    const sum = e.baseline + e.contributions.reduce((a, c) => a + c.contribution, 0);
    const p = body.churn_probability;
    // churn_probability is the float32 every consumer stores; the identity holds to float32 rounding here.
    expect(Math.abs(1 / (1 + Math.exp(-sum)) - p)).toBeLessThan(1e-6);
    expect(e.contributions.find((c) => c.feature === "contract_type")?.value).toBe("month-to-month");
    expect(e.reasons.length).toBeGreaterThan(0);
    expect(e.reasons.length).toBeLessThanOrEqual(4);
    for (const r of e.reasons) expect(r.contribution).toBeGreaterThan(0);
    expect(e.reasons[0]?.text).toMatch(/raises risk the most$/);
  });

  it("leaves the explanation out with ?explain=false, and gives N reasons in Japanese with ?reasons=N&lang=ja", async () => {
    const plain = JSON.parse((await post("/v1/predict?explain=false", customer("e-2"))).body) as Explained;
    expect(plain.explanation).toBeUndefined();
    const ja = JSON.parse((await post("/v1/predict?reasons=1&lang=ja", customer("e-2", { contract_type: "month-to-month" }))).body) as Explained;
    expect(ja.explanation?.reasons.length).toBe(1);
    expect(ja.explanation?.reasons[0]?.text).toMatch(/リスクを最も高めています$/);
    expect(ja.churn_probability).toBe(plain.churn_probability);
  });

  it("explains every customer of a batch like a single request", async () => {
    const rows = [customer("b-1"), customer("b-2", { tenure_months: 2 })];
    const batch = JSON.parse((await predictBatch(t.app, rows)).body) as { predictions: Explained[] };
    const single = JSON.parse((await post("/v1/predict", rows[1])).body) as Explained;
    expect(batch.predictions[1]?.explanation).toEqual(single.explanation);
  });

  it("answers 422 naming the parameter for a bad ?reasons, ?lang or ?explain", async () => {
    for (const [query, field] of [
      ["reasons=0", "reasons"],
      ["reasons=x", "reasons"],
      ["lang=fr", "lang"],
      ["explain=maybe", "explain"],
    ] as const) {
      const res = await post(`/v1/predict?${query}`, customer("q"));
      expect(res.statusCode, query).toBe(422);
      expect(res.body).toContain(field);
    }
  });
});
