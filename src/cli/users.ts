import type { Command } from "commander";
import { ChurnopsError } from "../errors.js";
import { addUser, listUsers, ROLES, removeUser, roleSchema } from "../store/users.js";
import { type CommandContext, output } from "./context.js";

/** The password, from standard input only (never an argument: it would show in `ps` and shell history). */
async function readPassword(stream: NodeJS.ReadableStream): Promise<string> {
  if ((stream as NodeJS.ReadStream).isTTY === true) {
    throw new ChurnopsError("bad_input", '--password-stdin reads the password from a pipe, e.g. `printf %s "$PW" | churnops users add …`', {
      field: "password",
    });
  }
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer));
  // One trailing newline is the pipe's, not the password's.
  return Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "");
}

export function registerUsers(program: Command, ctx: () => CommandContext): void {
  const users = program.command("users").description("people who may sign in to the web console, and their roles");

  users
    .command("add")
    .description(`add a console user (roles: ${ROLES.join(", ")})`)
    .argument("<name>", "user name (letters, digits, . _ @ -)")
    .requiredOption("--role <role>", `${ROLES.join(" | ")}`)
    .requiredOption("--password-stdin", "read the password from standard input")
    .option("--json", "print JSON")
    .action(async (name: string, flags: { role: string; json?: boolean }) => {
      const role = roleSchema.safeParse(flags.role);
      if (!role.success) throw new ChurnopsError("bad_input", `--role ${flags.role}: expected one of ${ROLES.join(", ")}`, { field: "role" });
      const password = await readPassword(process.stdin);
      const user = await addUser(await ctx().store(), name, role.data, password);
      output(flags.json === true, user, () => `Added ${user.name} (${user.role}).`);
    });

  users
    .command("list")
    .description("list console users")
    .option("--json", "print JSON")
    .action(async (flags: { json?: boolean }) => {
      const all = await listUsers(await ctx().store());
      output(flags.json === true, all, () =>
        all.length === 0
          ? "No console users yet (add one: churnops users add NAME --role admin --password-stdin)."
          : all.map((u) => `${u.name.padEnd(24)} ${u.role.padEnd(9)} ${u.created_at}`).join("\n"),
      );
    });

  users
    .command("remove")
    .description("remove a console user; their sessions end at once")
    .argument("<name>", "user name")
    .action(async (name: string) => {
      await removeUser(await ctx().store(), name);
      process.stdout.write(`Removed ${name}; their sessions have ended.\n`);
    });
}
