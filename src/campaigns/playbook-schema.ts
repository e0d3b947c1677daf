import { z } from "zod";

/** The offer playbook's config (`[campaigns.playbooks.NAME]`), checked when the config loads; see playbook.ts. */

/** What a message template may name: `{label}` etc. Anything else in braces is refused when the config loads. */
export const TEMPLATE_FIELDS = ["customer_id", "offer", "feature", "label", "value", "reason", "probability", "band"] as const;
export type TemplateField = (typeof TEMPLATE_FIELDS)[number];

const PLACEHOLDER = /\{([^{}]*)\}/g;

/** The placeholders of a template that are not TEMPLATE_FIELDS (an unbalanced brace counts as one). */
export function unknownPlaceholders(template: string): string[] {
  const bad: string[] = [];
  for (const m of template.matchAll(PLACEHOLDER)) if (!(TEMPLATE_FIELDS as readonly string[]).includes(m[1] as string)) bad.push(`{${m[1]}}`);
  const rest = template.replace(PLACEHOLDER, "");
  if (rest.includes("{") || rest.includes("}")) bad.push("an unmatched { or }");
  return bad;
}

const templateSchema = z
  .string()
  .min(1)
  .superRefine((template, ctx) => {
    const bad = unknownPlaceholders(template);
    if (bad.length > 0)
      ctx.addIssue({ code: "custom", message: `unknown placeholder ${bad.join(", ")}; a template may use ${TEMPLATE_FIELDS.map((f) => `{${f}}`).join(" ")}` });
  });

const ruleSchema = z
  .object({
    /** The reason feature (bundle.json explanations.features[].name), e.g. "Contract" or "tenure". */
    feature: z.string().min(1),
    /** The customer's value is one of these (a category, or an exact number). */
    values: z
      .array(z.union([z.string(), z.number()]))
      .min(1)
      .optional(),
    /** A numeric value range, both ends included. */
    min: z.number().optional(),
    max: z.number().optional(),
    offer: z.string().min(1).max(200),
    message: templateSchema,
  })
  .strict()
  .superRefine((rule, ctx) => {
    if (rule.values !== undefined && (rule.min !== undefined || rule.max !== undefined))
      ctx.addIssue({ code: "custom", message: "give values or a range (min/max), not both", path: ["values"] });
    if (rule.min !== undefined && rule.max !== undefined && rule.min > rule.max)
      ctx.addIssue({ code: "custom", message: `min ${rule.min} is above max ${rule.max}`, path: ["min"] });
  });

export const playbookSchema = z
  .object({
    rules: z.array(ruleSchema).min(1),
    /** For members no rule matches; without one they get the campaign's --offer (or none). */
    default_offer: z.string().min(1).max(200).optional(),
    default_message: templateSchema.optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.default_message !== undefined && p.default_offer === undefined)
      ctx.addIssue({ code: "custom", message: "default_message needs default_offer", path: ["default_message"] });
  });

export type Playbook = z.infer<typeof playbookSchema>;
export type PlaybookRule = Playbook["rules"][number];
