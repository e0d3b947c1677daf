/**
 * The console's words in English and Japanese. Japanese is typed against English's keys, so a string missing
 * from either dictionary fails the type check (and the dictionary test).
 */
const en = {
  "app.title": "churnops console",
  "nav.overview": "Overview",
  "nav.risk": "Risk list",
  "nav.runs": "Runs",
  "nav.audit": "Audit log",
  "nav.signout": "Sign out",
  "nav.language": "Language",
  "nav.main": "Main navigation",
  "nav.signed_in_as": "Signed in as {name} ({role})",
  "role.viewer": "viewer",
  "role.operator": "operator",
  "role.admin": "admin",
  "login.title": "Sign in",
  "login.username": "User name",
  "login.password": "Password",
  "login.submit": "Sign in",
  "login.failed": "The user name or password is not right.",
  "login.rate_limited": "Too many sign-in attempts. Wait a minute and try again.",
  "overview.title": "Overview",
  "overview.latest_run": "Latest score run",
  "overview.no_runs": "No complete score run yet. Run `churnops score` first.",
  "overview.as_of": "Date",
  "overview.model_version": "Model version",
  "overview.rows": "Customers scored",
  "overview.quarantined": "Rows quarantined",
  "overview.bands": "Customers per band",
  "overview.band": "Band",
  "overview.customers": "Customers",
  "overview.change": "Change since previous run",
  "overview.distribution": "Risk distribution",
  "overview.distribution_desc": "Customers by predicted churn probability in the latest run",
  "overview.mean": "Mean churn probability",
  "overview.previous": "Previous run",
  "overview.none_before": "no previous run",
  "overview.alerts": "Open alerts (last 7 days)",
  "overview.no_alerts": "No alerts.",
  "overview.in_flight": "Campaigns in flight",
  "overview.no_in_flight": "No campaign has messages waiting.",
  "overview.pending": "Messages waiting",
  "runs.title": "Runs",
  "runs.score_runs": "Score runs",
  "runs.daily": "Daily jobs",
  "runs.run": "Run",
  "runs.kind": "Kind",
  "runs.status": "Status",
  "runs.started": "Started",
  "runs.finished": "Finished",
  "runs.attempts": "Attempts",
  "runs.error": "Error",
  "runs.quarantine": "Quarantined rows",
  "runs.quarantine_of": "Quarantined rows of run {run}",
  "runs.row": "Input row",
  "runs.reason": "Reason",
  "runs.none": "None.",
  "runs.show_quarantine": "Show quarantined rows",
  "risk.title": "Risk list",
  "risk.filters": "Filters",
  "risk.run": "Run",
  "risk.run_latest": "latest",
  "risk.band": "Band",
  "risk.any_band": "any band",
  "risk.min_p": "Lowest probability",
  "risk.max_p": "Highest probability",
  "risk.q": "Customer id contains",
  "risk.sort": "Order",
  "risk.sort.risk_desc": "Highest risk first",
  "risk.sort.risk_asc": "Lowest risk first",
  "risk.sort.id_asc": "Customer id A→Z",
  "risk.sort.id_desc": "Customer id Z→A",
  "risk.apply": "Apply",
  "risk.export": "Export CSV",
  "risk.customer": "Customer",
  "risk.probability": "Churn probability",
  "risk.decision": "Decision",
  "risk.decision.1": "at risk",
  "risk.decision.0": "not at risk",
  "risk.next": "Next page",
  "risk.first": "First page",
  "risk.empty": "No customer matches these filters.",
  "risk.of_run": "Customers of run {run} (model {model}, {date})",
  "customer.title": "Customer {id}",
  "customer.not_found": "The store has no score, campaign or outcome for customer {id}.",
  "customer.history": "Score history",
  "customer.history_desc": "Churn probability of this customer in each score run",
  "customer.band_changes": "Band changes",
  "customer.no_band_changes": "The band has not changed.",
  "customer.from_to": "{from} → {to}",
  "customer.campaigns": "Campaign memberships",
  "customer.no_campaigns": "Not in any campaign.",
  "customer.campaign": "Campaign",
  "customer.arm": "Arm",
  "customer.arm.treatment": "treatment",
  "customer.arm.control": "control (held out)",
  "customer.message": "Message",
  "customer.message.none": "none (control)",
  "customer.outcome": "Known outcome",
  "customer.no_outcome": "No outcome recorded yet.",
  "customer.churned": "Churned (observed {date})",
  "customer.stayed": "Stayed (observed {date})",
  "customer.inputs": "Input values last scored",
  "customer.inputs_absent": "The store does not keep the input values a customer was scored with; see the source table of run {run}.",
  "customer.opt_out": "Record opt-out",
  "customer.opted_out": "This customer has opted out of campaigns.",
  "customer.opt_out_done": "Opt-out recorded.",
  "audit.title": "Audit log",
  "audit.when": "When",
  "audit.who": "Who",
  "audit.action": "Action",
  "audit.subject": "Subject",
  "audit.details": "Details",
  "audit.empty": "No operator or admin action yet.",
  "error.title": "Something is not right",
  "error.forbidden": "Your role ({role}) may not do this; it needs {needed}. Nothing was changed.",
  "error.not_found": "There is no such page.",
  "error.back": "Back to the overview",
} as const;

export type MessageKey = keyof typeof en;

const ja: Record<MessageKey, string> = {
  "app.title": "churnops コンソール",
  "nav.overview": "概要",
  "nav.risk": "リスク一覧",
  "nav.runs": "実行履歴",
  "nav.audit": "監査ログ",
  "nav.signout": "サインアウト",
  "nav.language": "言語",
  "nav.main": "メインナビゲーション",
  "nav.signed_in_as": "{name}（{role}）としてサインイン中",
  "role.viewer": "閲覧者",
  "role.operator": "オペレーター",
  "role.admin": "管理者",
  "login.title": "サインイン",
  "login.username": "ユーザー名",
  "login.password": "パスワード",
  "login.submit": "サインイン",
  "login.failed": "ユーザー名またはパスワードが正しくありません。",
  "login.rate_limited": "サインインの試行が多すぎます。1分ほど待ってから再度お試しください。",
  "overview.title": "概要",
  "overview.latest_run": "最新のスコアリング実行",
  "overview.no_runs": "完了したスコアリング実行はまだありません。先に `churnops score` を実行してください。",
  "overview.as_of": "日付",
  "overview.model_version": "モデルバージョン",
  "overview.rows": "スコアリングした顧客数",
  "overview.quarantined": "隔離した行数",
  "overview.bands": "バンド別の顧客数",
  "overview.band": "バンド",
  "overview.customers": "顧客数",
  "overview.change": "前回実行からの変化",
  "overview.distribution": "リスク分布",
  "overview.distribution_desc": "最新の実行における予測解約確率別の顧客数",
  "overview.mean": "平均解約確率",
  "overview.previous": "前回の実行",
  "overview.none_before": "前回の実行なし",
  "overview.alerts": "未解決のアラート（過去7日間）",
  "overview.no_alerts": "アラートはありません。",
  "overview.in_flight": "配信中のキャンペーン",
  "overview.no_in_flight": "送信待ちのメッセージがあるキャンペーンはありません。",
  "overview.pending": "送信待ちメッセージ",
  "runs.title": "実行履歴",
  "runs.score_runs": "スコアリング実行",
  "runs.daily": "日次ジョブ",
  "runs.run": "実行",
  "runs.kind": "種類",
  "runs.status": "状態",
  "runs.started": "開始",
  "runs.finished": "終了",
  "runs.attempts": "試行回数",
  "runs.error": "エラー",
  "runs.quarantine": "隔離された行",
  "runs.quarantine_of": "実行 {run} で隔離された行",
  "runs.row": "入力行",
  "runs.reason": "理由",
  "runs.none": "なし。",
  "runs.show_quarantine": "隔離された行を表示",
  "risk.title": "リスク一覧",
  "risk.filters": "絞り込み",
  "risk.run": "実行",
  "risk.run_latest": "最新",
  "risk.band": "バンド",
  "risk.any_band": "すべてのバンド",
  "risk.min_p": "確率の下限",
  "risk.max_p": "確率の上限",
  "risk.q": "顧客IDに含む文字列",
  "risk.sort": "並び順",
  "risk.sort.risk_desc": "リスクの高い順",
  "risk.sort.risk_asc": "リスクの低い順",
  "risk.sort.id_asc": "顧客ID 昇順",
  "risk.sort.id_desc": "顧客ID 降順",
  "risk.apply": "適用",
  "risk.export": "CSVをエクスポート",
  "risk.customer": "顧客",
  "risk.probability": "解約確率",
  "risk.decision": "判定",
  "risk.decision.1": "リスクあり",
  "risk.decision.0": "リスクなし",
  "risk.next": "次のページ",
  "risk.first": "最初のページ",
  "risk.empty": "条件に一致する顧客はいません。",
  "risk.of_run": "実行 {run} の顧客（モデル {model}、{date}）",
  "customer.title": "顧客 {id}",
  "customer.not_found": "顧客 {id} のスコア、キャンペーン、結果はストアにありません。",
  "customer.history": "スコア履歴",
  "customer.history_desc": "各スコアリング実行におけるこの顧客の解約確率",
  "customer.band_changes": "バンドの変化",
  "customer.no_band_changes": "バンドは変わっていません。",
  "customer.from_to": "{from} → {to}",
  "customer.campaigns": "キャンペーンへの参加",
  "customer.no_campaigns": "どのキャンペーンにも含まれていません。",
  "customer.campaign": "キャンペーン",
  "customer.arm": "群",
  "customer.arm.treatment": "施策群",
  "customer.arm.control": "対照群（施策なし）",
  "customer.message": "メッセージ",
  "customer.message.none": "なし（対照群）",
  "customer.outcome": "判明した結果",
  "customer.no_outcome": "結果はまだ記録されていません。",
  "customer.churned": "解約（{date} に確認）",
  "customer.stayed": "継続（{date} に確認）",
  "customer.inputs": "最後にスコアリングした入力値",
  "customer.inputs_absent": "ストアは顧客のスコアリングに使った入力値を保持していません。実行 {run} の元テーブルを参照してください。",
  "customer.opt_out": "オプトアウトを記録",
  "customer.opted_out": "この顧客はキャンペーンからオプトアウトしています。",
  "customer.opt_out_done": "オプトアウトを記録しました。",
  "audit.title": "監査ログ",
  "audit.when": "日時",
  "audit.who": "ユーザー",
  "audit.action": "操作",
  "audit.subject": "対象",
  "audit.details": "詳細",
  "audit.empty": "オペレーターや管理者の操作はまだありません。",
  "error.title": "問題が発生しました",
  "error.forbidden": "あなたのロール（{role}）ではこの操作はできません。{needed} が必要です。何も変更されていません。",
  "error.not_found": "そのページはありません。",
  "error.back": "概要に戻る",
};

export const LOCALES = ["en", "ja"] as const;
export type Locale = (typeof LOCALES)[number];
export const dictionaries: Record<Locale, Record<MessageKey, string>> = { en, ja };

export function isLocale(value: unknown): value is Locale {
  return typeof value === "string" && (LOCALES as readonly string[]).includes(value);
}

/** The cookie's choice first, then the first supported language in Accept-Language (by q), then English. */
export function pickLocale(cookie: string | undefined, acceptLanguage: string | undefined): Locale {
  if (isLocale(cookie)) return cookie;
  const ranked = (acceptLanguage ?? "")
    .split(",")
    .map((part) => {
      const [tag = "", ...params] = part.trim().split(";");
      const q = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
      return { lang: tag.toLowerCase().split("-")[0] ?? "", q: q === undefined ? 1 : Number(q.slice(2)) };
    })
    .filter((r) => r.lang !== "" && Number.isFinite(r.q) && r.q > 0)
    .sort((a, b) => b.q - a.q);
  return ranked.map((r) => r.lang).find(isLocale) ?? "en";
}

/** What templates use: words, and numbers and dates formatted for the locale. */
export interface Translator {
  locale: Locale;
  t(key: MessageKey, vars?: Record<string, string | number>): string;
  num(n: number, digits?: number): string;
  pct(n: number, digits?: number): string;
  date(iso: string): string;
  dateTime(iso: string): string;
}

export function translator(locale: Locale): Translator {
  const dict = dictionaries[locale];
  const intl = locale === "ja" ? "ja-JP" : "en-US";
  const dateFmt = new Intl.DateTimeFormat(intl, { year: "numeric", month: "short", day: "numeric", timeZone: "UTC" });
  const dateTimeFmt = new Intl.DateTimeFormat(intl, { dateStyle: "medium", timeStyle: "short", timeZone: "UTC" });
  const parse = (iso: string): Date | null => {
    const d = new Date(iso.length === 10 ? `${iso}T00:00:00Z` : iso);
    return Number.isNaN(d.getTime()) ? null : d;
  };
  return {
    locale,
    t: (key, vars) => dict[key].replace(/\{(\w+)\}/g, (whole, name: string) => (vars?.[name] === undefined ? whole : String(vars[name]))),
    num: (n, digits = 0) => new Intl.NumberFormat(intl, { maximumFractionDigits: digits, minimumFractionDigits: digits }).format(n),
    pct: (n, digits = 1) => new Intl.NumberFormat(intl, { style: "percent", maximumFractionDigits: digits, minimumFractionDigits: digits }).format(n),
    date: (iso) => {
      const d = parse(iso);
      return d === null ? iso : dateFmt.format(d);
    },
    dateTime: (iso) => {
      const d = parse(iso);
      return d === null ? iso : `${dateTimeFmt.format(d)} UTC`;
    },
  };
}
