import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { listAudit } from "../../src/store/audit.js";
import { openStore, type Store } from "../../src/store/db.js";
import { removeUser } from "../../src/store/users.js";
import { seedRun } from "../campaigns/seed.js";
import { countRows, storeTargets } from "../helpers/stores.js";
import { addUsers, Client, type ConsoleServer, startConsole } from "./helpers.js";

const GUARDED_GETS = [
  "/",
  "/campaigns",
  "/campaigns/new",
  "/campaigns/preview?rule=decision",
  "/campaigns/winback",
  "/campaigns/winback/send",
  "/models",
  "/models/promote?version=1",
  "/models/rollback",
  "/models/1/report/report.html",
  "/monitoring",
  "/monitoring?metric=recall",
  "/risk",
  "/risk?band=high",
  "/risk.csv",
  "/runs",
  "/runs/daily-2026-11-01-churn-v1/quarantine",
  "/audit",
  "/customers/c00001",
  "/no-such-page",
];
const GUARDED_POSTS = ["/customers/c00001/opt-out", "/logout", "/no-such-page", "/campaigns", "/campaigns/winback/send", "/models/promote", "/models/rollback"];

describe.each(storeTargets)("console security ($name)", (target) => {
  let store: Store;
  let server: ConsoleServer;
  beforeAll(async () => {
    store = await openStore(await target.fresh());
    await seedRun(store, { n: 50, asOf: "2026-11-01" });
    await addUsers(store);
    // Many sign-ins from one address across these tests; the sign-in limit itself is tested on its own server below.
    server = await startConsole(store, { login_attempts_per_minute: 1000 });
  });
  afterAll(async () => {
    await server.close();
    await store.close();
  });

  it("sends every GET without a session to the sign-in page, and answers 401 to anything else", async () => {
    const anonymous = new Client(server.base);
    for (const path of GUARDED_GETS) {
      const res = await anonymous.get(path);
      expect(res.status, path).toBe(303);
      expect(res.headers.get("location"), path).toBe(`/console/login?next=${encodeURIComponent(`/console${path}`)}`);
    }
    for (const path of GUARDED_POSTS) {
      const res = await anonymous.request("POST", path, { _csrf: "x" });
      expect(res.status, path).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unauthorized");
    }
    expect(await countRows(store, "opt_outs")).toBe(0);
  });

  it("does not open the API: /v1 still needs an API key", async () => {
    const res = await fetch(`${server.base.replace(/\/console$/, "")}/v1/model`);
    expect(res.status).toBe(401);
  });

  it("signs in with the right password only, with a Secure-when-HTTPS, HttpOnly, SameSite=Strict cookie", async () => {
    const wrong = new Client(server.base);
    expect((await wrong.signIn("viewer", "not the password")).status).toBe(401);
    expect(wrong.cookie("churnops_session")).toBeUndefined();
    expect((await wrong.signIn("nobody")).status).toBe(401);

    const csrf = await new Client(server.base).token("/login");
    const res = await fetch(`${server.base}/login`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ _csrf: csrf, username: "viewer", password: "x" }).toString(),
    });
    // A token without its cookie is refused like no token.
    expect(res.status).toBe(403);

    const ok = new Client(server.base);
    const signedIn = await ok.signIn("viewer");
    expect(signedIn.status).toBe(303);
    expect(signedIn.headers.get("location")).toBe("/console/");
    const cookie = signedIn.headers.getSetCookie().find((c) => c.startsWith("churnops_session="));
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    expect(cookie).toMatch(/Path=\/console/);
    expect(cookie).not.toMatch(/Secure/i);
    expect((await ok.get("/")).status).toBe(200);
  });

  it("goes back to the page asked for after signing in, but never to another site", async () => {
    const c = new Client(server.base);
    const csrf = await c.token("/login?next=%2Fconsole%2Frisk");
    const res = await c.request("POST", "/login", { _csrf: csrf, username: "viewer", password: "correct horse battery", next: "/console/risk" });
    expect(res.headers.get("location")).toBe("/console/risk");
    const evil = new Client(server.base);
    const token = await evil.token("/login");
    const away = await evil.request("POST", "/login", { _csrf: token, username: "viewer", password: "correct horse battery", next: "//evil.example/" });
    expect(away.headers.get("location")).toBe("/console/");
  });

  it("sends the security headers: CSP without inline script, no framing", async () => {
    const res = await new Client(server.base).get("/login");
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
  });

  it("refuses a form without its CSRF token, and changes nothing", async () => {
    const operator = new Client(server.base);
    await operator.signIn("operator");
    const res = await operator.request("POST", "/customers/c00002/opt-out", {});
    expect(res.status).toBe(403);
    const forged = await operator.request("POST", "/customers/c00002/opt-out", { _csrf: "forged-token" });
    expect(forged.status).toBe(403);
    expect(await countRows(store, "opt_outs")).toBe(0);
  });

  it("refuses a viewer an operator action with 403 and changes nothing; an operator's is done and audited", async () => {
    const viewer = new Client(server.base);
    await viewer.signIn("viewer");
    const before = (await listAudit(store)).length;
    const refused = await viewer.request("POST", "/customers/c00003/opt-out", { _csrf: await viewer.token("/customers/c00003") });
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain("Nothing was changed");
    expect(await countRows(store, "opt_outs")).toBe(0);
    expect((await listAudit(store)).length).toBe(before);

    const operator = new Client(server.base);
    await operator.signIn("operator");
    const done = await operator.request("POST", "/customers/c00003/opt-out", { _csrf: await operator.token("/customers/c00003") });
    expect(done.status).toBe(303);
    expect(await countRows(store, "opt_outs")).toBe(1);
    const [entry] = await listAudit(store);
    expect(entry).toMatchObject({ user_name: "operator", role: "operator", action: "customer.opt_out", subject: "c00003" });
    expect(await (await viewer.get("/audit")).text()).toContain("customer.opt_out");
  });

  it("stops a removed user's session at once", async () => {
    const c = new Client(server.base);
    await c.signIn("admin");
    expect((await c.get("/")).status).toBe(200);
    await removeUser(store, "admin");
    const res = await c.get("/");
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toMatch(/^\/console\/login/);
  });

  it("signs out: the old cookie no longer works", async () => {
    const c = new Client(server.base);
    await c.signIn("viewer");
    const token = c.cookie("churnops_session") as string;
    const csrf = await c.token("/");
    expect((await c.request("POST", "/logout", { _csrf: csrf })).status).toBe(303);
    const replay = new Client(server.base);
    replay.setCookie("churnops_session", token);
    expect((await replay.get("/")).status).toBe(303);
  });

  it("limits sign-in attempts per client", async () => {
    const limited = await startConsole(store, { login_attempts_per_minute: 5 });
    onTestFinished(() => limited.close());
    const c = new Client(limited.base);
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await c.signIn("viewer", "wrong password")).status);
    expect(statuses).toContain(429);
    const res = await c.signIn("viewer");
    expect(res.status).toBe(429);
    expect(await res.text()).toContain("Too many sign-in attempts");
  });
});
