import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** What the receiver does with one request: accept it, fail it (5xx), reject it (4xx), or hang past any timeout. */
export type Behaviour = "accept" | "fail" | "reject" | "hang";

export interface Receiver {
  url: string;
  /** Idempotency keys accepted, with the body of the first acceptance; a key is accepted at most once. */
  accepted: Map<string, Record<string, unknown>>;
  /** Every request's key, in arrival order (resends included). */
  requests: string[];
  /** Requests for a key already accepted: answered 200 again, not accepted twice. */
  duplicates: number;
  authorization: Set<string>;
  close(): Promise<void>;
}

export interface ReceiverOptions {
  behaviour?: (key: string, body: Record<string, unknown>) => Behaviour;
  delayMs?: () => number;
  /** Called after a request was accepted and before it is answered: the window a sender crash must survive. */
  afterAccept?: (key: string) => void;
}

/**
 * A CRM-like webhook receiver on 127.0.0.1 that deduplicates by Idempotency-Key, as the delivery contract
 * requires: a repeated key gets the same 200 and is not accepted again.
 */
export async function startReceiver(options: ReceiverOptions = {}): Promise<Receiver> {
  const accepted = new Map<string, Record<string, unknown>>();
  const requests: string[] = [];
  const authorization = new Set<string>();
  const state = { duplicates: 0 };
  const hanging = new Set<ServerResponse>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = "";
    req.setEncoding("utf8");
    req.on("data", (d: string) => {
      raw += d;
    });
    req.on("end", () => {
      const key = String(req.headers["idempotency-key"] ?? "");
      authorization.add(String(req.headers.authorization ?? ""));
      requests.push(key);
      const body = JSON.parse(raw) as Record<string, unknown>;
      const answer = (): void => {
        if (key === "" || body.idempotency_key !== key) {
          res.writeHead(400).end("missing or mismatched Idempotency-Key");
          return;
        }
        if (accepted.has(key)) {
          state.duplicates++;
          res.writeHead(200, { "content-type": "application/json" }).end('{"status":"duplicate"}');
          return;
        }
        const behaviour = options.behaviour?.(key, body) ?? "accept";
        if (behaviour === "hang") {
          hanging.add(res);
          return;
        }
        if (behaviour === "fail") {
          res.writeHead(503, { "retry-after": "0" }).end("busy");
          return;
        }
        if (behaviour === "reject") {
          res.writeHead(422).end("unknown customer");
          return;
        }
        accepted.set(key, body);
        options.afterAccept?.(key);
        res.writeHead(201, { "content-type": "application/json" }).end('{"status":"accepted"}');
      };
      const delay = options.delayMs?.() ?? 0;
      if (delay > 0) setTimeout(answer, delay);
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/offers`,
    accepted,
    requests,
    get duplicates() {
      return state.duplicates;
    },
    authorization,
    close: async () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
