import type { Command } from "commander";
import { importOptOuts } from "../campaigns/ingest.js";
import { type PlanResult, planCampaign } from "../campaigns/plan.js";
import { campaignReport, type EffectReport } from "../campaigns/report.js";
import type { RiskRule } from "../campaigns/select.js";
import { chooseAdapter, type SendSummary, sendCampaign } from "../campaigns/send.js";
import { type CampaignStatus, campaignStatus } from "../campaigns/status.js";
import { openSource } from "../data/source.js";
import { ChurnopsError } from "../errors.js";
import { listCampaigns } from "../store/campaigns.js";
import { retryDead } from "../store/outbox.js";
import { addOptOuts, type OptOutRow } from "../store/outcomes.js";
import { type CommandContext, output, parseIntFlag } from "./context.js";

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
  seed?: string;
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

/** At most one risk rule; none = the model's own operating decision. */
export function riskRule(flags: { minBand?: string | undefined; threshold?: string | undefined; topPct?: string | undefined }): RiskRule {
  const given = [flags.minBand, flags.threshold, flags.topPct].filter((f) => f !== undefined).length;
  if (given > 1) throw new ChurnopsError("bad_input", "give one of --min-band, --threshold, --top-pct", { field: "min-band" });
  if (flags.minBand !== undefined) return { kind: "band", band: flags.minBand };
  if (flags.threshold !== undefined) return { kind: "threshold", threshold: parseNumberFlag(flags.threshold, "--threshold", 0, 1) };
  if (flags.topPct !== undefined) return { kind: "top_pct", pct: parseNumberFlag(flags.topPct, "--top-pct", 0, 100, { exclusiveMin: true }) };
  return { kind: "decision" };
}

function formatPlan(r: PlanResult, next = true): string {
  const c = r.counts;
  const bands = Object.entries(c.byBand)
    .map(([band, n]) => `${band} ${n.treated}+${n.control}`)
    .join(", ");
  const ex = c.excluded;
  return [
    r.status === "planned" ? `Planned campaign ${r.campaign.name}.` : `Campaign ${r.campaign.name} was already planned; nothing changed.`,
    `  run          ${r.campaign.run_id} (${r.campaign.model_name} v${r.campaign.model_version})`,
    `  rule         ${(JSON.parse(r.campaign.params) as { rule: string }).rule}; ranked by ${r.campaign.ranking === "risk" ? "risk" : "expected value"}`,
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
    `Sent campaign ${s.campaign} via ${s.adapter} → ${s.target.replace(/^(file|webhook):/, "")}`,
    `  delivered now  ${s.delivered}${s.failedAttempts > 0 ? ` (${s.failedAttempts} failed attempts retried)` : ""}`,
    `  messages       ${Object.entries(s.states)
      .map(([k, n]) => `${k} ${n}`)
      .join(", ")}`,
    `  arms           treated ${s.treated}, control ${s.control} (the control group gets nothing)`,
  ];
  if (s.releasedLeases > 0) lines.push(`  recovered      ${s.releasedLeases} messages left in flight by a crashed sender`);
  for (const e of s.recoveredExports) lines.push(`  recovered      finished an interrupted export to ${e.target.replace(/^file:/, "")} (${e.lines} lines)`);
  if (s.dead > 0 || s.states.dead > 0)
    lines.push(`  dead letters   ${s.states.dead}: see \`churnops campaign status ${s.campaign}\`, then \`churnops campaign retry-dead ${s.campaign}\``);
  return lines.join("\n");
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
  return lines.join("\n");
}

/**
 * The demo's last step: a campaign on the demo's score run (high band, 500 offers, ranked by expected value
 * when the data has a customer_value column), exported to a JSONL file, and its summary.
 */
export async function demoCampaign(c: CommandContext, runId: string, data: string): Promise<{ plan: PlanResult; send: SendSummary; text: string }> {
  const store = await c.store();
  const source = await openSource({ data });
  const hasValues = source.columns.includes("customer_value");
  const hasOptOuts = source.columns.includes("opted_out");
  await source.close();
  if (hasOptOuts) await importOptOuts(store, { data }, "customer_id", "opted_out");
  const plan = await planCampaign(store, {
    name: `demo-${runId}`,
    run: runId,
    rule: { kind: "band", band: "high" },
    budget: 500,
    controlShare: c.config.campaigns.control_share,
    cooldownDays: c.config.campaigns.cooldown_days,
    offer: "DEMO-20-OFF",
    values: hasValues ? { source: { data }, idColumn: "customer_id", valueColumn: "customer_value", offerCost: 20, offerSuccess: 0.3 } : undefined,
  });
  const path = `${c.config.home}/demo/exports/${plan.campaign.name}.jsonl`;
  const send = await sendCampaign(store, {
    campaign: plan.campaign.name,
    adapter: { kind: "export", path },
    delivery: c.config.campaigns.delivery,
    log: c.log,
  });
  const text = [
    formatPlan(plan, false),
    formatSend(send),
    `Measure it once outcomes arrive: churnops outcomes ingest FILE && churnops campaign report ${plan.campaign.name}`,
  ].join("\n");
  return { plan, send, text };
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
    .option("--seed <n>", "seed of the control group (default: from the name)")
    .option("--json", "print JSON")
    .action(async (flags: PlanFlags) => {
      const c = ctx();
      const defaults = c.config.campaigns;
      if (flags.valueColumn === undefined && (flags.values !== undefined || flags.offerSuccess !== undefined))
        throw new ChurnopsError("bad_input", "--values and --offer-success need --value-column", { field: "value-column" });
      if (flags.valueColumn !== undefined && flags.offerSuccess === undefined)
        throw new ChurnopsError("bad_input", "--value-column needs --offer-success (the share of would-be churners an offer keeps)", {
          field: "offer-success",
        });
      const result = await planCampaign(await c.store(), {
        name: flags.name,
        run: flags.run,
        rule: riskRule(flags),
        budget: flags.budget === undefined ? null : parseIntFlag(flags.budget, "--budget", 1),
        controlShare:
          flags.controlShare === undefined ? defaults.control_share : parseNumberFlag(flags.controlShare, "--control-share", 0, 0.99, { exclusiveMin: true }),
        cooldownDays: flags.cooldownDays === undefined ? defaults.cooldown_days : parseIntFlag(flags.cooldownDays, "--cooldown-days", 0, 3650),
        seed: flags.seed === undefined ? undefined : parseIntFlag(flags.seed, "--seed", 0, 4_294_967_295),
        offer: flags.offer,
        values:
          flags.valueColumn === undefined
            ? undefined
            : {
                source: flags.values === undefined ? null : { data: flags.values, table: flags.valuesTable },
                idColumn: flags.idColumn,
                valueColumn: flags.valueColumn,
                offerCost: parseNumberFlag(flags.offerCost ?? "0", "--offer-cost", 0, Number.MAX_VALUE),
                offerSuccess: parseNumberFlag(flags.offerSuccess ?? "", "--offer-success", 0, 1, { exclusiveMin: true }),
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
          : rows
              .map((r) => `${r.name.padEnd(32)} ${r.as_of}  treated ${String(r.treated).padStart(7)}  control ${String(r.control).padStart(6)}  ${r.run_id}`)
              .join("\n"),
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
      let result: { optedOut: number; added: number };
      if (flags.from !== undefined) result = await importOptOuts(store, { data: flags.from, table: flags.table }, flags.idColumn, flags.flagColumn ?? null);
      else {
        const now = new Date().toISOString();
        const rows: OptOutRow[] = ids.map((id) => ({ customer_id: id, source: "cli", opted_out_at: now }));
        result = { optedOut: rows.length, added: await addOptOuts(store, rows) };
      }
      output(flags.json === true, result, () => `${result.optedOut} opted-out customers read, ${result.added} new to the opt-out list.`);
    });
}
