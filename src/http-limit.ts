/**
 * Reading what an outside server answers (a webhook receiver, an MLflow server) with a cap: at most `maxBytes`
 * are read, the rest is dropped and the connection released, so a receiver streaming an endless body cannot grow
 * the process. Use it for every response body from outside; never `res.text()` / `res.json()`.
 */
export interface LimitedBody {
  text: string;
  /** True when the body was longer than the cap and was cut. */
  truncated: boolean;
}

export async function readLimited(res: Response, maxBytes: number): Promise<LimitedBody> {
  const body = res.body;
  if (body === null) return { text: "", truncated: false };
  const reader = body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  let truncated = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const room = maxBytes - size;
      if (value.byteLength > room) {
        parts.push(value.subarray(0, room));
        size = maxBytes;
        truncated = true;
        break;
      }
      parts.push(value);
      size += value.byteLength;
    }
  } finally {
    // Drops whatever the server still sends and frees the socket; harmless when the body was read to its end.
    await reader.cancel().catch(() => undefined);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.byteLength;
  }
  return { text: new TextDecoder().decode(bytes), truncated };
}

/** Discard a response body unread (a 2xx whose content nobody needs), releasing the connection at once. */
export async function discardBody(res: Response): Promise<void> {
  await res.body?.cancel().catch(() => undefined);
}
