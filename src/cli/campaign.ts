import type { Command } from "commander";
import { importOptOuts, type OptOutSummary, optOutIds } from "../campaigns/ingest.js";
import { type PlanResult, planCampaign } from "../campaigns/plan.js";
import { configuredPlaybook } from "../campaigns/playbook.js";
import { campaignReport, type EffectReport } from "../campaigns/report.js";
import { type RiskRule, riskRule } from "../campaigns/select.js";
import { chooseAdapter, type SendSummary, sendCampaign } from "../campaigns/send.js";
import { type CampaignStatus, campaignStatus } from "../campaigns/status.js";
import { formatUpliftReport } from "../campaigns/uplift-format.js";
import { ChurnopsError } from "../errors.js";
import { registeredBands } from "../model/registry.js";
import { listCampaigns } from "../store/campaigns.js";
import type { Store } from "../store/db.js";
import { retryDead } from "../store/outbox.js";
import { resolveRun, type ScoreRun } from "../store/runs.js";
import { registeredSchema, upliftModelName } from "../uplift/schema.js";
import { scoreRunUplift } from "../uplift/score.js";
import { type CommandContext, output, parseChoice, parseIntFlag } from "./context.js";
import { describeBands, table } from "./format.js";

interface PlanFlags {
  name: string;
  run: string;
  minBand?: string;
  threshold?: string;
  topPct?: string;
  budget?: string;
  controlShare?: string;
  cooldownDays?: string;
  values?: string;
  valuesTable?: string;
  idColumn: string;
  valueColumn?: string;
  offerCost?: string;
  offerSuccess?: string;
  offer?: string;
  playbook?: string;
  seed?: string;
  rankBy?: string;
  upliftModel: string;
  upliftModelName?: string;
  explorationShare: string;
  json?: boolean;
}

export function parseNumberFlag(value: string, flag: string, min: number, max: number, options: { exclusiveMin?: boolean } = {}): number {
  const n = Number(value);
  const low = options.exclusiveMin === true ? n > min : n >= min;
  if (value.trim() === "" || !Number.isFinite(n) || !low || n > max)
    throw new ChurnopsError("bad_input", `${flag} ${value}: expected a number ${options.exclusiveMin === true ? "above" : "from"} ${min} to ${max}`, {
      field: flag.replace(/^--/, ""),
    });
  return n;
}

function ruleOfFlags(flags: { minBand?: string | undefined; threshold?: string | undefined; topPct?: string | undefined }): RiskRule {
  const rule = riskRule({
    minBand: flags.minBand,
    threshold: flags.threshold === undefined ? undefined : parseNumberFlag(flags.threshold, "--threshold", 0, 1),
    topPct: flags.topPct === undefined ? undefined : parseNumberFlag(flags.topPct, "--top-pct", 0, 100, { exclusiveMin: true }),
  });
  if (rule === null) throw new ChurnopsError("bad_input", "give one of --min-band, --threshold, --top-pct", { field: "min-band" });
  return rule;
}

async function latestRun(store: Store): Promise<ScoreRun | null> {
  try {
    return await resolveRun(store, "latest");
  } catch (err) {
    if (err instanceof ChurnopsError && err.code === "run_not_found") return null;
    throw err;
  }
}

function formatOptOuts(r: OptOutSummary): string {
  const lines = [`${r.optedOut} opted-out customers read, ${r.added} new to the opt-out list.`];
  if (r.unknown === null) lines.push("  (no score run yet to check the ids against)");
  else if (r.unknown.count > 0)
    lines.push(
      `  ${r.unknown.count} of them were never scored by the latest run ${r.unknown.run_id} (recorded anyway; check the ids): ${r.unknown.examples.join(", ")}${r.unknown.count > r.unknown.examples.length ? ", …" : ""}`,
    );
  return lines.join("\n");
}

export function formatPlan(r: PlanResult, next = true): string {
  const c = r.counts;
  const bands = Object.entries(c.byBand)
    .map(([band, n]) => `${band} ${n.treated}+${n.control}`)
    .join(", ");
  const ex = c.excluded;
  return [
    r.status === "planned" ? `Planned campaign ${r.campaign.name}.` : `Campaign ${r.campaign.name} was already planned; nothing changed.`,
    `  run          ${r.campaign.run_id} (${r.campaign.model_name} v${r.campaign.model_version})`,
    `  bands        ${describeBands(r.bands)}`,
    `  rule         ${(JSON.parse(r.campaign.params) as { rule: string }).rule}; ranked by ${r.campaign.ranking === "risk" ? "risk" : r.campaign.ranking === "uplift" ? "uplift (expected net value = uplift × value − offer cost)" : "expected value"}`,
    `  matching     ${c.matchingRule}`,
    `  excluded     cooldown ${ex.cooldown}, opted out ${ex.opted_out}, churned ${ex.churned}${r.campaign.ranking === "risk" ? "" : `, no value ${ex.no_value}, not worth an offer ${ex.not_worth_an_offer}`}`,
    `  eligible     ${c.eligible}${r.campaign.budget === null ? "" : ` (budget ${r.campaign.budget} offers)`}`,
    `  treated      ${c.treated}`,
    `  control      ${c.control} (share ${r.campaign.control_share}, seed ${r.campaign.seed}; by band treated+control: ${bands || "-"})`,
    ...r.notes.map((n) => `  note         ${n}`),
    ...(next ? [`Next: churnops campaign send ${r.campaign.name}`] : []),
  ].join("\n");
}

export function formatSend(s: SendSummary): string {
  const lines = [
    `${s.states.dead > 0 ? "Sent campaign, with dead letters:" : "Sent campaign"} ${s.campaign} via ${s.adapter} → ${s.target.replace(/^(file|webhook):/, "")}`,
    `  delivered now  ${s.delivered}${s.failedAttempts > 0 ? ` (${s.failedAttempts} failed attempts retried)` : ""}`,
    `  messages       ${Object.entries(s.states)
      .map(([k, n]) => `${k} ${n}`)
      .join(", ")}`,
    `  arms           treated ${s.treated}, control ${s.control} (the control group gets nothing)`,
  ];
  if (s.releasedLeases > 0) lines.push(`  recovered      ${s.releasedLeases} messages left in flight by a crashed sender`);
  for (const e of s.recoveredExports) lines.push(`  recovered      finished an interrupted export to ${e.target.replace(/^file:/, "")} (${e.lines} lines)`);
  for (const f of s.failures) lines.push(`  not delivered  ${f.messages}: ${f.error}`);
  return lines.join("\n");
}

/** One line per kind of failure, for stderr: what went wrong and how to send those messages again. */
export function deliveryFailures(campaign: string, failures: SendSummary["failures"]): string[] {
  return failures.map(
    (f) =>
      `${f.messages} message${f.messages === 1 ? "" : "s"} could not be delivered: ${f.error} — fix the receiver, then \`churnops campaign retry-dead ${campaign}\``,
  );
}

function formatStatus(s: CampaignStatus): string {
  return [
    `Campaign ${s.campaign}: ${s.rule}, ${s.model}, run ${s.run_id}, planned ${s.planned_at}`,
    `  arms       treated ${s.treated}, control ${s.control}`,
    `  messages   pending ${s.pending}, sending ${s.sending}, delivered ${s.delivered}, dead ${s.dead}`,
    ...s.dead_letters.map((d) => `  dead       ${d.customer_id} after ${d.attempts} attempts: ${d.last_error ?? "?"}`),
  ].join("\n");
}

const pct = (x: number | null): string => (x === null ? "-" : `${(x * 100).toFixed(1)}%`);
const interval = (ci: [number, number] | null, f: (x: number) => string): string => (ci === null ? "" : ` (95% CI ${f(ci[0])} to ${f(ci[1])})`);

export function formatReport(r: EffectReport): string {
  const money = (x: number): string => x.toFixed(0);
  const lines = [
    `Campaign ${r.campaign} (scores of ${r.asOf}, model v${r.modelVersion})`,
    `  treatment   ${r.treatment.members} members, ${r.treatment.observed} with outcomes, ${r.treatment.churned} churned: ${pct(r.treatment.churnRate)}`,
    `  control     ${r.control.members} members, ${r.control.observed} with outcomes, ${r.control.churned} churned: ${pct(r.control.churnRate)}`,
  ];
  if (r.absoluteReduction !== null) {
    lines.push(`  reduction   ${pct(r.absoluteReduction)} absolute${interval(r.absoluteReductionCi95, pct)}`);
    lines.push(`              ${pct(r.relativeReduction)} relative${interval(r.relativeReductionCi95, pct)}`);
    lines.push(`  test        ${r.test}: p = ${r.pValue?.toPrecision(3)}`);
  }
  if (r.customersRetained !== null)
    lines.push(`  retained    ${r.customersRetained.estimate.toFixed(1)} customers${interval(r.customersRetained.ci95, (x) => x.toFixed(1))}`);
  if (r.revenueRetained !== null) lines.push(`  revenue     ${money(r.revenueRetained.estimate)} retained${interval(r.revenueRetained.ci95, money)}`);
  if (r.offerCostTotal !== null) lines.push(`  offer cost  ${money(r.offerCostTotal)}`);
  lines.push(`Verdict: ${r.message}`);
  if (r.byOffer !== undefined) {
    lines.push("By offer (playbook; churn treated vs control, reduction with 95% CI):");
    for (const o of r.byOffer) {
      const reduction =
        o.absoluteReduction === null
          ? "no outcomes yet"
          : `${pct(o.absoluteReduction)}${interval(o.absoluteReductionCi95, pct)}, p = ${o.pValue?.toPrecision(3)}`;
      lines.push(
        `  ${(o.offer ?? "(no offer)").padEnd(14)} ${o.treatment.members}+${o.control.members} members: ${pct(o.treatment.churnRate)} vs ${pct(o.control.churnRate)}; ${reduction}`,
      );
    }
  }
  if (r.uplift !== undefined && r.uplift !== null) lines.push(...formatUpliftReport(r.uplift));
  return lines.join("\n");
}

export function registerCampaign(program: Command, ctx: () => CommandContext): void {
  const campaign = program.command("campaign").description("retention campaigns: plan with a control group, send exactly once, measure the effect");

  campaign
    .command("plan")
    .description("select customers of a score run for an offer and hold out a random control group")
    .requiredOption("--name <name>", "campaign name (letters, digits, . _ -)")
    .option("--run <run>", "score run id, or latest", "latest")
    .option("--min-band <band>", "customers in this risk band or a higher one")
    .option("--threshold <p>", "customers with churn probability ≥ p")
    .option("--top-pct <x>", "the x% riskiest customers of the run")
    .option("--budget <n>", "most offers to send (treated customers)")
    .option("--control-share <share>", "share of the selected customers held out as control")
    .option("--cooldown-days <days>", "skip customers treated by a campaign within this many days")
    .option("--values <file|url>", "customer values (CSV/Parquet/DB URL); default: the file the run scored")
    .option("--values-table <name>", "table to read when --values is a database URL")
    .option("--id-column <name>", "customer id column of --values", "customer_id")
    .option("--value-column <name>", "rank by expected value = probability × value × offer success − offer cost")
    .option("--offer-cost <k>", "cost of one offer (with --value-column)", "0")
    .option("--offer-success <r>", "share of would-be churners an offer keeps (with --value-column)")
    .option("--offer <text>", "offer code or text passed to the CRM with every message")
    .option("--playbook <name>", "choose each member's offer by their top reasons ([campaigns.playbooks.NAME]; the run needs score --reasons)")
    .option("--seed <n>", "seed of the control group (default: from the name)")
    .option("--rank-by <how>", "risk | expected-value | uplift (default: expected-value with --value-column, else risk)")
    .option("--uplift-model <ref>", "with --rank-by uplift: alias or version of the uplift model", "champion")
    .option("--uplift-model-name <name>", "registered name of the uplift model (default: <model_name>-uplift)")
    .option("--exploration-share <share>", "with --rank-by uplift: share of the treated chosen at random among the eligible", "0.1")
    .option("--json", "print JSON")
    .action(async (flags: PlanFlags) => {
      const c = ctx();
      const defaults = c.config.campaigns;
      const rankBy =
        flags.rankBy === undefined
          ? flags.valueColumn === undefined
            ? "risk"
            : "expected-value"
          : parseChoice(flags.rankBy, "--rank-by", ["risk", "expected-value", "uplift"] as const);
      if (rankBy === "expected-value" && flags.valueColumn === undefined)
        throw new ChurnopsError("bad_input", "--rank-by expected-value needs --value-column (and --offer-success)", { field: "value-column" });
      if (rankBy === "risk" && flags.valueColumn !== undefined)
        throw new ChurnopsError("bad_input", "--value-column ranks by value: use --rank-by expected-value or uplift", { field: "rank-by" });
      if (flags.valueColumn === undefined && (flags.values !== undefined || flags.offerSuccess !== undefined))
        throw new ChurnopsError("bad_input", "--values and --offer-success need --value-column", { field: "value-column" });
      if (rankBy === "uplift" && flags.offerSuccess !== undefined)
        throw new ChurnopsError("bad_input", "--offer-success is for --rank-by expected-value; with uplift the model predicts each offer's effect", {
          field: "offer-success",
        });
      if (rankBy === "expected-value" && flags.offerSuccess === undefined)
        throw new ChurnopsError("bad_input", "--value-column needs --offer-success (the share of would-be churners an offer keeps)", {
          field: "offer-success",
        });
      const result = await planCampaign(await c.store(), {
        name: flags.name,
        run: flags.run,
        rule: ruleOfFlags(flags),
        budget: flags.budget === undefined ? null : parseIntFlag(flags.budget, "--budget", 1),
        controlShare:
          flags.controlShare === undefined ? defaults.control_share : parseNumberFlag(flags.controlShare, "--control-share", 0, 0.99, { exclusiveMin: true }),
        cooldownDays: flags.cooldownDays === undefined ? defaults.cooldown_days : parseIntFlag(flags.cooldownDays, "--cooldown-days", 0, 3650),
        seed: flags.seed === undefined ? undefined : parseIntFlag(flags.seed, "--seed", 0, 4_294_967_295),
        offer: flags.offer,
        playbook: flags.playbook === undefined ? undefined : configuredPlaybook(c.config, flags.playbook),
        values:
          flags.valueColumn === undefined
            ? undefined
            : {
                source: flags.values === undefined ? null : { data: flags.values, table: flags.valuesTable },
                idColumn: flags.idColumn,
                valueColumn: flags.valueColumn,
                offerCost: parseNumberFlag(flags.offerCost ?? "0", "--offer-cost", 0, Number.MAX_VALUE),
                offerSuccess: rankBy === "uplift" ? 1 : parseNumberFlag(flags.offerSuccess ?? "", "--offer-success", 0, 1, { exclusiveMin: true }),
              },
        modelBands: registeredBands(c.config),
        uplift:
          rankBy !== "uplift"
            ? undefined
            : {
                modelName: upliftModelName(c.config, flags.upliftModelName),
                model: flags.upliftModel,
                explorationShare: parseNumberFlag(flags.explorationShare, "--exploration-share", 0, 0.9),
                scores: async (run) =>
                  scoreRunUplift(await c.store(), c.config, run, {
                    modelName: upliftModelName(c.config, flags.upliftModelName),
                    model: flags.upliftModel,
                    idColumn: (await registeredSchema(c.config)(run)).idColumn,
                  }),
              },
      });
      c.log.info(
        { event: "campaign.planned", campaign: result.campaign.name, status: result.status, treated: result.counts.treated, control: result.counts.control },
        "campaign planned",
      );
      output(flags.json === true, result, () => formatPlan(result));
    });

  campaign
    .command("send <name>")
    .description("deliver a campaign's pending messages (adapter: the flag, else campaigns.delivery.adapter)")
    .option("--webhook <url>", "POST each message as JSON with an Idempotency-Key header")
    .option("--export <file>", "write the messages to a JSONL (or .csv) file for a CRM import")
    .option("--json", "print JSON")
    .action(async (name: string, flags: { webhook?: string; export?: string; json?: boolean }) => {
      const c = ctx();
      const adapter = chooseAdapter(name, flags, c.config.campaigns.delivery, c.config.home);
      const summary = await sendCampaign(await c.store(), { campaign: name, adapter, delivery: c.config.campaigns.delivery, log: c.log });
      c.log.info({ event: "campaign.sent", campaign: name, delivered: summary.delivered, states: summary.states }, "campaign send finished");
      output(flags.json === true, summary, () => formatSend(summary));
      if (summary.failures.length > 0) c.fail(deliveryFailures(name, summary.failures));
    });

  campaign
    .command("status <name>")
    .description("arms and outbox of a campaign: messages per state, dead letters")
    .option("--json", "print JSON")
    .action(async (name: string, flags: { json?: boolean }) => {
      const c = ctx();
      const status = await campaignStatus(await c.store(), name);
      output(flags.json === true, status, () => formatStatus(status));
    });

  campaign
    .command("report <name>")
    .description("did it work? churn per arm, reduction with a 95% CI, p-value, customers and revenue retained")
    .option("--json", "print JSON")
    .action(async (name: string, flags: { json?: boolean }) => {
      const c = ctx();
      const report = await campaignReport(await c.store(), name, c.config.campaigns.min_effect);
      output(flags.json === true, report, () => formatReport(report));
    });

  campaign
    .command("list")
    .description("campaigns, newest first")
    .option("--json", "print JSON")
    .action(async (flags: { json?: boolean }) => {
      const c = ctx();
      const rows = await listCampaigns(await c.store());
      output(flags.json === true, rows, () =>
        rows.length === 0
          ? "No campaigns yet (churnops campaign plan --name N)."
          : table(
              ["campaign", "scores of", "treated", "control", "run"],
              rows.map((r) => [r.name, r.as_of, String(r.treated), String(r.control), r.run_id]),
            ),
      );
    });

  campaign
    .command("retry-dead <name>")
    .description("put a campaign's dead letters back in the queue (after the receiver was fixed)")
    .action(async (name: string) => {
      const c = ctx();
      const n = await retryDead(await c.store(), name);
      process.stdout.write(`${n} dead letters of ${name} are pending again; run \`churnops campaign send ${name}\`.\n`);
    });

  campaign
    .command("opt-out [ids...]")
    .description("record marketing opt-outs: customer ids, or a file/table of them")
    .option("--from <file|url>", "CSV/Parquet file or database URL with the customers")
    .option("--table <name>", "table to read when --from is a database URL")
    .option("--id-column <name>", "customer id column", "customer_id")
    .option("--flag-column <name>", "only rows whose column says yes (e.g. opted_out)")
    .option("--json", "print JSON")
    .action(async (ids: string[], flags: { from?: string; table?: string; idColumn: string; flagColumn?: string; json?: boolean }) => {
      const c = ctx();
      const store = await c.store();
      if (flags.from === undefined && ids.length === 0) throw new ChurnopsError("bad_input", "give customer ids or --from FILE", { field: "from" });
      // Ids are checked against the customers of the latest score run: an id it never scored is likely a typo.
      const checkRun = (await latestRun(store))?.run_id ?? null;
      const result =
        flags.from === undefined
          ? await optOutIds(store, ids, checkRun)
          : await importOptOuts(store, { data: flags.from, table: flags.table }, flags.idColumn, flags.flagColumn ?? null, { checkRun });
      output(flags.json === true, result, () => formatOptOuts(result));
    });
}
