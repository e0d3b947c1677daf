#!/bin/sh
# The daily job's schedule under Compose (Kubernetes uses a CronJob instead): sleep until DAILY_AT (HH:MM, UTC),
# run `churnops daily` for today, repeat. Exit code 75 means another run holds today's store lock: not a failure.
# A failed run is logged and retried at the next slot; `docker compose run --rm daily-now` style catch-up:
#   docker compose -f deploy/compose.yaml exec daily node /app/bin/churnops.js daily --date YYYY-MM-DD
set -u
at=${DAILY_AT:-06:30}
case $at in
  [01][0-9]:[0-5][0-9] | 2[0-3]:[0-5][0-9]) ;;
  *) echo "daily-loop: DAILY_AT must be HH:MM (UTC), got '$at'" >&2; exit 2 ;;
esac
while :; do
  now=$(date -u +%s)
  next=$(date -u -d "today $at" +%s)
  [ "$next" -gt "$now" ] || next=$(date -u -d "tomorrow $at" +%s)
  echo "{\"event\":\"daily.scheduled\",\"at\":\"$(date -u -d "@$next" +%Y-%m-%dT%H:%M:%SZ)\"}"
  sleep $((next - now))
  node /app/bin/churnops.js daily --date "$(date -u +%Y-%m-%d)"
  code=$?
  case $code in
    0) ;;
    75) echo '{"event":"daily.skipped","reason":"another run holds the lock"}' ;;
    *) echo "{\"event\":\"daily.failed\",\"exit_code\":$code}" >&2 ;;
  esac
done
