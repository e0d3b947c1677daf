/**
 * What `churnops demo` prints last: the one command that opens the console on the demo's data (the default
 * store the demo wrote), and how to sign in. The reader chooses the password; none is made up or printed here.
 * `serve` refuses to start without an API key, so the command makes a throwaway one for the API.
 */
export function consoleDemoHint(port = 8080): string {
  return [
    "Open the retention console on the demo's data (choose a password when asked for it below):",
    `  read -rsp 'console password: ' PW && printf %s "$PW" | ./bin/churnops.js users add admin --role admin --password-stdin && CHURNOPS_API_KEYS="$(openssl rand -hex 16)" ./bin/churnops.js serve --port ${port}`,
    `Then browse to http://127.0.0.1:${port}/console/ and sign in as admin with that password.`,
  ].join("\n");
}
