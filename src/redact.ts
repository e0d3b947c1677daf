/**
 * The one way a URL (or a message that may contain one) is made fit to print, store or log: the password of
 * the user info and the values of secret-looking query parameters become `***`. The trainer's twin is
 * `churnops_trainer.redact.redact_url`; both follow docs/security.md and are tested on the same cases.
 */

/**
 * `//user:password@host`: the password runs to the last `@` before the host, so an unencoded `@` (or `/`)
 * inside it does not leak its tail; the username stays (it names the account, it does not open it).
 */
const USER_INFO = /(\/\/[^:/?#\s@]*):\S*?@(?=[^@/?#\s]*(?:[/?#\s]|$))/g;

/** Parameter names whose value is a credential (libpq, JDBC, OAuth, signed cloud URLs, webhook tokens). */
const SECRET_NAMES =
  "password|passwd|pwd|pass|sslpassword|token|access_token|refresh_token|id_token|auth_token|api_key|apikey|key|secret|client_secret|signature|sig|credential|x-amz-signature|x-amz-credential|x-amz-security-token|auth|authorization";

/**
 * `name=value` after `?`, `&`, `;` or white space (query strings, JDBC properties, libpq key=value strings); also
 * names that end in one of the secret words (`db_password`, `sas_token`).
 */
const SECRET_PARAM = new RegExp(`(^|[?&;\\s])((?:[\\w.-]*[_.-])?(?:${SECRET_NAMES}))=("[^"]*"|'[^']*'|[^&;#\\s]*)`, "gi");

export function redactUrl(text: string): string {
  return text.replace(USER_INFO, "$1:***@").replace(SECRET_PARAM, (_m, lead: string, name: string) => `${lead}${name}=***`);
}
