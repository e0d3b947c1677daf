// Container HEALTHCHECK for the churnops API: GET /healthz on this host (no curl in the image).
// Port from HEALTHCHECK_PORT (set it when serving on another port than the CMD's 8080); exits 0 on 200 within 2 s.
const port = process.env.HEALTHCHECK_PORT ?? "8080";
try {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) });
  process.exit(res.ok ? 0 : 1);
} catch {
  process.exit(1);
}
