import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeys, presentedKey } from "../../src/server/auth.js";
import { ADMIN_KEY, API_KEY, admin, customer, OTHER_KEY, predict, startApp, type TestApp } from "./helpers.js";

describe("API keys", () => {
  it("identifies a known key, by a non-secret id, and refuses an unknown one or a prefix of a known one", () => {
    const keys = new ApiKeys([API_KEY, OTHER_KEY], ADMIN_KEY);
    const a = keys.identify(API_KEY);
    expect(a).toMatchObject({ admin: false });
    expect(a?.keyId).not.toContain(API_KEY.slice(0, 8));
    expect(keys.identify(OTHER_KEY)?.keyId).not.toBe(a?.keyId);
    expect(keys.identify(ADMIN_KEY)).toMatchObject({ admin: true });
    expect(keys.identify(API_KEY.slice(0, -1))).toBeNull();
    expect(keys.identify(`${API_KEY}x`)).toBeNull();
    expect(keys.identify("")).toBeNull();
  });

  it("reads keys from CHURNOPS_API_KEYS and CHURNOPS_ADMIN_KEY, and refuses short keys", () => {
    const keys = ApiKeys.fromEnv({ CHURNOPS_API_KEYS: ` ${API_KEY}, ,${OTHER_KEY} `, CHURNOPS_ADMIN_KEY: ADMIN_KEY });
    expect(keys.size).toBe(2);
    expect(keys.identify(OTHER_KEY)).not.toBeNull();
    expect(ApiKeys.fromEnv({}).size).toBe(0);
    expect(() => ApiKeys.fromEnv({ CHURNOPS_API_KEYS: "short" })).toThrow(/at least 16/);
  });

  it("takes the key from a Bearer header or X-API-Key", () => {
    expect(presentedKey({ authorization: `Bearer ${API_KEY}` })).toBe(API_KEY);
    expect(presentedKey({ authorization: `bearer   ${API_KEY}` })).toBe(API_KEY);
    expect(presentedKey({ "x-api-key": API_KEY })).toBe(API_KEY);
    expect(presentedKey({ authorization: `Basic ${API_KEY}` })).toBeNull();
    expect(presentedKey({})).toBeNull();
  });
});

describe("auth and rate limits over HTTP", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startApp({ server: { rate_limit: { max: 5, window_ms: 60_000 } } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("answers 401 without a key or with a wrong one, and 200 with either header form", async () => {
    const none = await predict(t.app, customer(), {});
    expect(none.statusCode).toBe(401);
    expect(none.headers["www-authenticate"]).toMatch(/^Bearer/);
    expect(JSON.parse(none.body).error.code).toBe("unauthorized");
    expect((await predict(t.app, customer(), { authorization: "Bearer not-a-key-at-all-0000" })).statusCode).toBe(401);
    expect((await predict(t.app, customer(), { "x-api-key": OTHER_KEY })).statusCode).toBe(200);
  });

  it("checks the key before reading the body: a stranger's garbage gets 401, not 400", async () => {
    const res = await t.app.inject({ method: "POST", url: "/v1/predict", headers: { "content-type": "application/json" }, payload: "{not json" });
    expect(res.statusCode).toBe(401);
  });

  it("keeps health, readiness, metrics and the OpenAPI document open", async () => {
    for (const url of ["/healthz", "/readyz", "/metrics", "/openapi.json"]) expect((await t.app.inject({ method: "GET", url })).statusCode, url).toBe(200);
    expect((await t.app.inject({ method: "GET", url: "/v1/model" })).statusCode).toBe(401);
  });

  it("lets only the admin key reload: an API key gets 403, no key 401", async () => {
    expect((await t.app.inject({ method: "POST", url: "/admin/reload" })).statusCode).toBe(401);
    expect((await t.app.inject({ method: "POST", url: "/admin/reload", headers: { authorization: `Bearer ${API_KEY}` } })).statusCode).toBe(403);
    expect((await t.app.inject({ method: "POST", url: "/admin/reload", headers: admin })).statusCode).toBe(200);
  });

  it("limits each key on its own with 429, leaving other keys and health checks alone", async () => {
    const key = { authorization: `Bearer ${API_KEY}` };
    const codes: number[] = [];
    for (let i = 0; i < 8; i++) codes.push((await predict(t.app, customer(`r${i}`), key)).statusCode);
    expect(codes.filter((c) => c === 429).length).toBeGreaterThanOrEqual(3);
    const limited = await predict(t.app, customer(), key);
    expect(limited.statusCode).toBe(429);
    expect(JSON.parse(limited.body).error.code).toBe("rate_limited");
    expect((await t.app.inject({ method: "GET", url: "/healthz" })).statusCode).toBe(200);
    const other = await t.app.inject({ method: "GET", url: "/v1/model", headers: { "x-api-key": ADMIN_KEY } });
    expect(other.statusCode).toBe(200);
  });
});

describe("rate limits count failed authentications", () => {
  it("answers some of 20 wrong keys from one address with 429, and a valid key still gets through", async () => {
    const t = await startApp({ server: { rate_limit: { max: 5, window_ms: 60_000 } } });
    try {
      const codes: number[] = [];
      for (let i = 0; i < 20; i++) codes.push((await predict(t.app, customer(), { authorization: `Bearer wrong-key-${i}-0123456789abcdef` })).statusCode);
      expect(codes.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
      expect(
        codes.slice(5).every((c) => c === 429),
        codes.join(","),
      ).toBe(true);
      const limited = await predict(t.app, customer(), {});
      expect(JSON.parse(limited.body).error).toMatchObject({ code: "rate_limited" });
      expect((await predict(t.app, customer(), { authorization: `Bearer ${API_KEY}` })).statusCode).toBe(200);
    } finally {
      await t.close();
    }
  });
});

describe("auth disabled", () => {
  it("serves predictions without a key but still keeps /admin behind the admin key", async () => {
    const t = await startApp({ server: { auth: "disabled" }, keys: new ApiKeys([], null) });
    try {
      expect((await predict(t.app, customer(), {})).statusCode).toBe(200);
      expect((await t.app.inject({ method: "POST", url: "/admin/reload" })).statusCode).toBe(401);
    } finally {
      await t.close();
    }
  });

  it("refuses to start with auth required and no key", async () => {
    await expect(startApp({ keys: new ApiKeys([], null) })).rejects.toThrow(/CHURNOPS_API_KEYS/);
  });
});
