import { randomUUID } from "node:crypto";
import { hostname } from "node:os";

/** Who holds a lease or a lock: `host/pid/nonce`, so a process on the same host can tell that the holder died. */
export function newOwner(): string {
  return `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
}

/**
 * True only when the owner ran on this host and its process no longer exists. Owners elsewhere (or unparseable)
 * are never presumed dead: their leases run out by time instead.
 */
export function ownerIsGone(owner: string): boolean {
  const [host, pidText] = owner.split("/");
  const pid = Number(pidText);
  if (host !== hostname() || !Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ESRCH";
  }
}
