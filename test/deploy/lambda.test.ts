import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../src/config.js";
import { createLogger } from "../../src/log.js";
import { ApiKeys } from "../../src/server/auth.js";
import { createLambdaApp, handler, type LambdaApp, type LambdaContext, type LambdaEvent } from "../../src/server/lambda.js";
import { bundleJson, copyBundle, testConfig } from "../server/helpers.js";

// API Gateway events in the shapes AWS sends (REST API payload 1.0, HTTP API payload 2.0), with the key below.
const KEY = "lambda-key-0123456789abcdef";
const EVENTS = join(PROJECT_ROOT, "deploy", "lambda", "events");
const event = (name: string): LambdaEvent => JSON.parse(readFileSync(join(EVENTS, name), "utf8")) as LambdaEvent;

const context = {
  awsRequestId: "c0ffee00-0000-4000-8000-000000000001",
  functionName: "churnops-predict",
  functionVersion: "$LATEST",
  invokedFunctionArn: "arn:aws:lambda:eu-west-1:123456789012:function:churnops-predict",
  memoryLimitInMB: "1024",
  logGroupName: "/aws/lambda/churnops-predict",
  logStreamName: "2026/11/26/[$LATEST]0123456789abcdef",
  callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => 30_000,
  done: () => undefined,
  fail: () => undefined,
  succeed: () => undefined,
} as unknown as LambdaContext;

const json = (body: string): Record<string, unknown> => JSON.parse(body) as Record<string, unknown>;

let lambda: LambdaApp;
let bundleDir: string;
beforeAll(async () => {
  bundleDir = copyBundle();
  const config = testConfig({ model: bundleDir, access_log: false });
  lambda = await createLambdaApp(config, { keys: new ApiKeys([KEY], null), log: createLogger({ test: true }, "silent") });
});
afterAll(async () => {
  await lambda?.app.close();
});

describe("the Lambda handler behind API Gateway", () => {
  it("scores one customer from a REST API (payload 1.0) event, under API Gateway's request id", async () => {
    const rest = event("rest-v1-predict.json") as { requestContext: { requestId: string } };
    const res = await lambda.handle(rest, context);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    // Logs and the answer carry the id API Gateway logs too.
    expect(res.headers["x-request-id"]).toBe(rest.requestContext.requestId);
    const body = json(res.body);
    expect(body).toMatchObject({ customer_id: "c-1042", model: { name: "churn", version: bundleJson(bundleDir).model_version }, variant: "champion" });
    expect(body.churn_probability).toBeGreaterThan(0);
    expect(body.churn_probability).toBeLessThan(1);
  });

  it("scores a batch from a base64-encoded HTTP API (payload 2.0) event, in request order", async () => {
    const res = await lambda.handle(event("http-v2-predict-batch.json"), context);
    expect(res.statusCode, res.body).toBe(200);
    const body = json(res.body) as { predictions: { customer_id: string; churn_probability: number }[] };
    expect(body.predictions.map((p) => p.customer_id)).toEqual(["c-0", "c-1", "c-2"]);
    for (const p of body.predictions) expect(p.churn_probability).toBeGreaterThan(0);
  });

  it("answers a negative tenure with 422 and the field, as the server does", async () => {
    const res = await lambda.handle(event("http-v2-predict-invalid.json"), context);
    expect(res.statusCode, res.body).toBe(422);
    expect(json(res.body)).toMatchObject({ error: { field: "tenure_months" } });
  });

  it("answers a request without an API key with 401", async () => {
    const res = await lambda.handle(event("http-v2-predict-no-key.json"), context);
    expect(res.statusCode).toBe(401);
    expect(json(res.body)).toMatchObject({ error: { code: "unauthorized" } });
  });

  it("gives the same probability through Lambda as through the server's own routes", async () => {
    const viaLambda = json((await lambda.handle(event("rest-v1-predict.json"), context)).body);
    const direct = await lambda.app.inject({
      method: "POST",
      url: "/v1/predict",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      payload: JSON.parse((event("rest-v1-predict.json") as { body: string }).body),
    });
    expect(json(direct.body).churn_probability).toBe(viaLambda.churn_probability);
  });
});

describe("the exported handler", () => {
  it("starts from CHURNOPS_CONFIG and the environment on the first invocation and reuses the app after it", async () => {
    const config = testConfig();
    const toml = join(config.home, "lambda.toml");
    writeFileSync(toml, `[server]\nmodel = ${JSON.stringify(bundleDir)}\naccess_log = false\n[server.prediction_log]\nenabled = false\n`);
    const saved = { ...process.env };
    Object.assign(process.env, { CHURNOPS_CONFIG: toml, CHURNOPS_HOME: config.home, CHURNOPS_API_KEYS: KEY, CHURNOPS_LOG_LEVEL: "silent" });
    try {
      const first = await handler(event("rest-v1-predict.json"), context);
      const second = await handler(event("http-v2-predict-invalid.json"), context);
      expect(first.statusCode, first.body).toBe(200);
      expect(second.statusCode).toBe(422);
    } finally {
      process.env = saved;
    }
  });
});
