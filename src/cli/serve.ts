import type { Command } from "commander";
import type { Config } from "../config.js";
import { ChurnopsError } from "../errors.js";
import { ApiKeys } from "../server/auth.js";
import { runServer } from "../server/run.js";
import { type CommandContext, parseIntFlag } from "./context.js";

interface ServeFlags {
  host?: string;
  port?: string;
  model?: string;
  challenger?: string;
  challengerShare?: string;
  shadow?: boolean;
  /** commander's `--no-console`: false when given. */
  console?: boolean;
}

function parseShare(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0 || n > 1) {
    throw new ChurnopsError("bad_input", `--challenger-share ${value}: expected a share from 0 to 1 (e.g. 0.1)`, { field: "challenger-share" });
  }
  return n;
}

/** The config's `server` section with the command's flags on top. */
export function serverConfigFromFlags(config: Config, flags: ServeFlags): Config {
  const server = { ...config.server };
  if (flags.host !== undefined) server.host = flags.host;
  if (flags.port !== undefined) server.port = parseIntFlag(flags.port, "--port", 0, 65_535);
  if (flags.model !== undefined) server.model = flags.model;
  if (flags.challenger !== undefined) server.challenger = flags.challenger;
  if (flags.challengerShare !== undefined) server.challenger_share = parseShare(flags.challengerShare);
  if (flags.shadow === true) server.shadow = true;
  if (server.challenger === null && (flags.challengerShare !== undefined || flags.shadow === true)) {
    throw new ChurnopsError("bad_input", "--challenger-share and --shadow need --challenger <ref>", { field: "challenger" });
  }
  if (flags.challengerShare !== undefined && server.shadow) {
    throw new ChurnopsError("bad_input", "choose one: --challenger-share (the challenger answers a share) or --shadow (it only scores in the shadow)", {
      field: "shadow",
    });
  }
  if (server.challenger !== null && !server.shadow && server.challenger_share === 0) {
    throw new ChurnopsError("bad_input", `challenger ${server.challenger} would never score: give --challenger-share or --shadow`, { field: "challenger" });
  }
  return { ...config, server };
}

export function registerServe(program: Command, ctx: () => CommandContext): void {
  program
    .command("serve")
    .description("serve real-time predictions over HTTP (API keys from CHURNOPS_API_KEYS; see docs/api.md)")
    .option("--host <host>", "address to listen on (default 127.0.0.1, or server.host)")
    .option("--port <port>", "port to listen on; 0 picks a free one (default 8080)")
    .option("--model <ref>", "champion, a version number, or a bundle directory (default champion)")
    .option("--challenger <ref>", "a second model: answers a share of customers, or scores in the shadow")
    .option("--challenger-share <share>", "share of customers (0-1, by a hash of their id) the challenger answers")
    .option("--shadow", "the challenger scores every request and is logged; the champion answers")
    .option("--no-console", "do not serve the web console under /console/ (on by default; users: `churnops users`)")
    .action(async (flags: ServeFlags) => {
      const c = ctx();
      const config = serverConfigFromFlags(c.config, flags);
      const keys = ApiKeys.fromEnv(process.env);
      if (config.server.auth === "required" && keys.size === 0) {
        throw new ChurnopsError("bad_config", 'no API keys: set CHURNOPS_API_KEYS (comma-separated) or, for a local trial, server.auth = "disabled"', {
          field: "server.auth",
        });
      }
      const withConsole = flags.console !== false && config.console.enabled;
      const store = config.server.prediction_log.enabled || withConsole ? await c.store() : null;
      const running = await runServer({
        config,
        refs: { champion: config.server.model, challenger: config.server.challenger },
        store,
        keys,
        log: c.log,
        consoleStore: withConsole ? store : null,
      });
      process.stdout.write(`churnops API listening on ${running.url} (docs: ${running.url}/docs)\n`);
      if (withConsole) process.stdout.write(`churnops console on ${running.url}/console/ (users: churnops users add NAME --role ROLE --password-stdin)\n`);
      await running.closed;
    });
}
