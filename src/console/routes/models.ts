import { createReadStream, existsSync } from "node:fs";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { Config } from "../../config.js";
import { ChurnopsError } from "../../errors.js";
import { readBundle } from "../../model/bundle.js";
import { listVersions, promoteVersion, rollbackChampion } from "../../model/registry.js";
import type { RegisteredVersion } from "../../model/registry-cache.js";
import type { Store } from "../../store/db.js";
import { gateHistory } from "../../store/read/gate.js";
import { audit } from "../auth.js";
import { parseInput } from "../forms.js";
import type { Render } from "../plugin.js";

/** Headline metrics shown side by side: the model's test split and each baseline's. */
export const HEADLINE = ["roc_auc", "pr_auc", "recall", "precision", "accuracy", "brier"] as const;

const metricBlock = z.record(z.string(), z.number().nullable());
const bundleMetricsSchema = z.object({
  test: metricBlock.optional(),
  cv: metricBlock.optional(),
  baselines: z.record(z.string(), z.object({ test: metricBlock.optional() }).passthrough()).optional(),
});

export interface VersionView extends RegisteredVersion {
  test: Record<string, number | null>;
  baselines: { name: string; test: Record<string, number | null> }[];
  hasReport: boolean;
}

const versionParams = z.object({ version: z.string().regex(/^\d+$/, "version: expected a registered version number") });
// The trainer names its report's plots in lower case; nothing else under the run's folder is served.
const reportFile = z.string().regex(/^(report\.html|[a-z0-9_-]{1,64}\.png)$/, "not a file of the training report");
const promoteBody = z.object({
  version: z.string().regex(/^\d+$/, "version: expected a registered version number"),
  force: z.literal("yes").optional(),
  confirm: z.literal("yes", { error: "confirm: tick the box to confirm the promotion" }),
  _csrf: z.string().optional(),
});
const rollbackBody = z.object({ confirm: z.literal("yes", { error: "confirm: tick the box to confirm the rollback" }), _csrf: z.string().optional() });

/** Bundles never change once registered, so their metrics are read (and verified) once per process. */
const metricsCache = new Map<string, Promise<z.infer<typeof bundleMetricsSchema> | null>>();

function bundleMetrics(path: string): Promise<z.infer<typeof bundleMetricsSchema> | null> {
  let hit = metricsCache.get(path);
  if (hit === undefined) {
    hit = existsSync(join(path, "bundle.json"))
      ? readBundle(path).then((b) => bundleMetricsSchema.parse(b.json.metrics))
      : // Not downloaded yet (a remote registry): the registry's own headline metrics stand in.
        Promise.resolve(null);
    hit.catch(() => metricsCache.delete(path));
    metricsCache.set(path, hit);
  }
  return hit;
}

async function versionViews(config: Config): Promise<VersionView[]> {
  const versions = await listVersions(config);
  return Promise.all(
    [...versions]
      .sort((a, b) => Number(b.version) - Number(a.version))
      .map(async (v) => {
        const m = await bundleMetrics(v.bundle_path);
        return {
          ...v,
          test: m?.test ?? v.metrics,
          baselines: Object.entries(m?.baselines ?? {}).map(([name, b]) => ({ name, test: b.test ?? {} })),
          hasReport: existsSync(join(config.home, "reports", v.run_id, "report.html")),
        };
      }),
  );
}

function findVersion(versions: readonly VersionView[], version: string): VersionView {
  const found = versions.find((v) => v.version === version);
  if (found === undefined)
    throw new ChurnopsError(
      "model_not_found",
      `model has no registered version ${version} (versions: ${versions.map((v) => v.version).join(", ") || "none"})`,
      {
        field: "version",
      },
    );
  return found;
}

/**
 * The models page: registered versions with aliases, metrics beside the baselines, data source and fingerprint,
 * the training report, gate decisions; promote and roll back (admin, confirmed, audited) through the same
 * registry functions as `churnops promote` / `rollback`.
 */
export function modelRoutes(app: FastifyInstance, options: { store: Store; settings: Config; prefix: string }, render: Render): void {
  const { store, settings, prefix } = options;

  app.get("/models", async (request, reply) => {
    const [versions, gates] = await Promise.all([versionViews(settings), gateHistory(store, settings.model_name)]);
    const champion = versions.find((v) => v.aliases.includes("champion")) ?? null;
    const done = (request.query as Record<string, unknown>).done;
    return render(request, reply, "models", {
      modelName: settings.model_name,
      versions,
      champion,
      gates,
      headline: HEADLINE,
      done: done === "promote" || done === "rollback" ? done : null,
    });
  });

  app.get("/models/:version/report/:file", async (request, reply) => {
    const { version } = parseInput(versionParams, request.params);
    const file = reportFile.safeParse((request.params as { file?: unknown }).file);
    if (!file.success) throw new ChurnopsError("not_found", `${String((request.params as { file?: unknown }).file)}: ${file.error.issues[0]?.message}`);
    const v = findVersion(await versionViews(settings), version);
    const path = join(settings.home, "reports", v.run_id, file.data);
    if (!existsSync(path)) throw new ChurnopsError("not_found", `the training report of v${version} has no ${file.data}`);
    // The trainer's report styles itself inline and has no script: it gets its own, narrower policy.
    reply.header(
      "content-security-policy",
      "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    );
    reply.type(file.data.endsWith(".png") ? "image/png" : "text/html; charset=utf-8");
    return reply.send(createReadStream(path));
  });

  app.get("/models/promote", { config: { consoleAccess: "admin" } }, async (request, reply) => {
    const { version } = parseInput(versionParams, request.query);
    const versions = await versionViews(settings);
    const target = findVersion(versions, version);
    const champion = versions.find((v) => v.aliases.includes("champion")) ?? null;
    return render(request, reply, "model-confirm", { action: "promote", target, champion, headline: HEADLINE });
  });

  app.post("/models/promote", { config: { consoleAccess: "admin" }, preHandler: app.csrfProtection }, async (request, reply) => {
    const body = parseInput(promoteBody, request.body);
    const result = await promoteVersion(settings, { version: body.version, force: body.force === "yes" });
    await audit(store, request, "model.promote", `${settings.model_name} v${body.version}`, {
      version: result.version ?? body.version,
      previous_champion: result.previous_champion ?? null,
      force: body.force === "yes",
    });
    return reply.redirect(`${prefix}/models?done=promote`, 303);
  });

  app.get("/models/rollback", { config: { consoleAccess: "admin" } }, async (request, reply) => {
    const versions = await versionViews(settings);
    const champion = versions.find((v) => v.aliases.includes("champion")) ?? null;
    return render(request, reply, "model-confirm", { action: "rollback", target: null, champion, headline: HEADLINE });
  });

  app.post("/models/rollback", { config: { consoleAccess: "admin" }, preHandler: app.csrfProtection }, async (request, reply) => {
    parseInput(rollbackBody, request.body);
    const result = await rollbackChampion(settings);
    await audit(store, request, "model.rollback", `${settings.model_name} v${result.version ?? "?"}`, {
      version: result.version ?? null,
      replaced: result.replaced ?? null,
    });
    return reply.redirect(`${prefix}/models?done=rollback`, 303);
  });
}
