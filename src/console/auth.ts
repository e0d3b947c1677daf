import type {} from "@fastify/cookie";
import type {} from "@fastify/csrf-protection";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { recordAudit } from "../store/audit.js";
import type { Store } from "../store/db.js";
import { checkPassword, createSession, endSession, type Role, roleAtLeast, sessionUser, type User } from "../store/users.js";

export const SESSION_COOKIE = "churnops_session";

declare module "fastify" {
  interface FastifyContextConfig {
    /** Console routes: `public` needs no session; otherwise the least role that may use the route (default viewer). */
    consoleAccess?: "public" | Role;
  }
  interface FastifyRequest {
    consoleUser: User | null;
  }
}

export interface AuthOptions {
  store: Store;
  prefix: string;
  secure: "auto" | "always";
  sessionTtlMs: number;
  loginAttemptsPerMinute: number;
}

export class ConsoleHttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly needed?: Role,
  ) {
    super(message);
  }
}

/** Where to go after signing in: only a path inside the console, never another site. */
export function safeNext(next: unknown, prefix: string): string {
  return typeof next === "string" && next.startsWith(`${prefix}/`) && !next.startsWith("//") && !next.includes("\\") ? next : `${prefix}/`;
}

function cookieSecure(request: FastifyRequest, mode: AuthOptions["secure"]): boolean {
  return mode === "always" || request.protocol === "https";
}

/**
 * Every console route needs a signed-in user unless it is marked public: a GET without one is sent to the
 * sign-in page, anything else gets 401. A route's `consoleAccess` role is checked the same way (403).
 */
export function guardRoutes(app: FastifyInstance, options: AuthOptions): void {
  app.decorateRequest("consoleUser", null);
  app.addHook("onRequest", async (request, reply) => {
    const access = request.routeOptions.config.consoleAccess ?? "viewer";
    if (access === "public") return;
    const token = request.cookies[SESSION_COOKIE];
    const user = token === undefined ? null : await sessionUser(options.store, token);
    if (user === null) {
      if (request.method === "GET" || request.method === "HEAD") {
        return reply.redirect(`${options.prefix}/login?next=${encodeURIComponent(request.url)}`, 303);
      }
      throw new ConsoleHttpError(401, "unauthorized", "sign in first: this console route needs a session");
    }
    request.consoleUser = user;
    if (!roleAtLeast(user.role, access)) throw new ConsoleHttpError(403, "forbidden", `this needs the ${access} role; you are ${user.role}`, access);
  });
}

/** The signed-in user of a guarded route. */
export function currentUser(request: FastifyRequest): User {
  if (request.consoleUser === null) throw new ConsoleHttpError(401, "unauthorized", "sign in first");
  return request.consoleUser;
}

/** Record an operator/admin action in the audit log. */
export async function audit(store: Store, request: FastifyRequest, action: string, subject: string, details: Record<string, unknown> = {}): Promise<void> {
  await recordAudit(store, { user: currentUser(request), action, subject, details });
}

const loginBody = z.object({ username: z.string().max(200).default(""), password: z.string().max(1024).default(""), next: z.string().optional() });

export function loginRoutes(
  app: FastifyInstance,
  options: AuthOptions,
  render: (request: FastifyRequest, reply: FastifyReply, view: string, data: object) => Promise<unknown>,
): void {
  app.get("/login", { config: { consoleAccess: "public" } }, async (request, reply) => {
    const next = safeNext((request.query as Record<string, unknown>).next, options.prefix);
    return render(request, reply, "login", { next, failed: false, csrf: reply.generateCsrf() });
  });

  app.post(
    "/login",
    {
      config: {
        consoleAccess: "public",
        rateLimit: { max: options.loginAttemptsPerMinute, timeWindow: 60_000, keyGenerator: (request: FastifyRequest) => `console-login:${request.ip}` },
      },
      preHandler: app.csrfProtection,
    },
    async (request, reply) => {
      const body = loginBody.parse(request.body ?? {});
      const next = safeNext(body.next, options.prefix);
      const user = body.username === "" ? null : await checkPassword(options.store, body.username, body.password);
      if (user === null) {
        reply.status(401);
        return render(request, reply, "login", { next, failed: true, csrf: reply.generateCsrf() });
      }
      const token = await createSession(options.store, user.name, options.sessionTtlMs);
      reply.setCookie(SESSION_COOKIE, token, {
        path: options.prefix,
        httpOnly: true,
        sameSite: "strict",
        secure: cookieSecure(request, options.secure),
        maxAge: Math.floor(options.sessionTtlMs / 1000),
      });
      return reply.redirect(next, 303);
    },
  );

  app.post("/logout", { preHandler: app.csrfProtection }, async (request, reply) => {
    const token = request.cookies[SESSION_COOKIE];
    if (token !== undefined) await endSession(options.store, token);
    reply.clearCookie(SESSION_COOKIE, { path: options.prefix });
    return reply.redirect(`${options.prefix}/login`, 303);
  });
}
