#!/usr/bin/env bash
# postfix-reload-stall.sh — shows where a slow "publish → deployed" goes: runs `mailcerts renew
# --force` against the bench's Postfix container RUNS times (default 8) with strace attached to
# the smtpd and tlsmgr processes that exist before each reload, and prints per run the latency
# and what each old process slept. Needs Pebble (bench/pebble-up.sh is run), dockerd, strace and
# the bundle (node scripts/bundle.mjs).
#
# What it showed on this machine: in a slow run (about 1.2 s instead of 0.25 s) an old smtpd
# accepts a connection just after `postfix reload`, gets SIGPIPE writing to the tlsmgr the reload
# restarted, sleeps one second, and only then connects to private/tlsmgr again.
set -uo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
export PATH="$ROOT/.tools/node_modules/.bin:$PATH"
RUNS=${RUNS:-8}
MAIL_IMAGE=${MAILSTACK_IMAGE:-mailcerts-mailstack:bookworm-3}
for tool in strace docker node openssl; do command -v "$tool" >/dev/null || { echo "postfix-reload-stall: $tool is missing" >&2; exit 1; }; done
[[ -f $ROOT/bundle/mailcerts.mjs ]] || { echo "postfix-reload-stall: no bundle; run: node scripts/bundle.mjs" >&2; exit 1; }
bash "$BENCH/pebble-up.sh" >/dev/null || { echo "postfix-reload-stall: pebble-up.sh failed" >&2; exit 1; }
# shellcheck disable=SC1091
. "${BENCH_STATE:-$BENCH/.state}/pebble.env"
W=$(mktemp -d); mkdir -p "$W/certs" "$W/state" "$W/trace"
NAME=mailcerts-bench-stall
cleanup() { docker rm -f "$NAME" >/dev/null 2>&1; }
trap cleanup EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/certs/privkey.pem" -out "$W/certs/fullchain.pem" -days 2 -subj /CN=seed.invalid 2>/dev/null
cat "$W/certs/privkey.pem" "$W/certs/fullchain.pem" >"$W/certs/privkey-fullchain.pem"
cleanup
docker run -d --name "$NAME" --label com.docker.compose.project=mailcerts-bench-stall --network host --hostname mail -v "$W/certs:/etc/ssl/mail:ro" \
  --label mailcerts.reload=postfix --label mailcerts.verify=smtp://:7025,submission://:7587,smtps://:7465 \
  -v "$BENCH/mailstack/postfix/main.cf:/etc/postfix/main.cf:ro" -v "$BENCH/mailstack/postfix/master.cf:/etc/postfix/master.cf:ro" \
  "$MAIL_IMAGE" postfix start-fg >/dev/null || { echo "postfix-reload-stall: docker run failed" >&2; exit 1; }
sleep 3
mc=(env -i PATH="$PATH" HOME="${HOME:-/root}" ACME_DIRECTORY="$PEBBLE_DIRECTORY_URL" NODE_EXTRA_CA_CERTS="$PEBBLE_CA_CERT" HTTP01_MODE=standalone HTTP01_PORT=5002
  HTTP01_ADDRESS=127.0.0.1 STATUS_ADDRESS=off LOG_LEVEL=info ACME_DOMAINS=mail.example.test CERTS_DIR="$W/certs" STATE_DIR="$W/state" DOCKER_SCOPE=mailcerts-bench-stall
  node "$ROOT/bundle/mailcerts.mjs")
"${mc[@]}" run --once >"$W/first.log" 2>&1 || { tail -n 5 "$W/first.log" >&2; exit 1; }
stamp() { grep "\"msg\":\"$2\"" "$1" | grep -o '"time":"[^"]*"' | head -1 | cut -d'"' -f4; }
for ((i = 1; i <= RUNS; i++)); do
  mapfile -t pids < <(docker top "$NAME" -eo pid,comm | awk '$2=="smtpd" || $2=="tlsmgr" {print $1}')
  args=(); for p in "${pids[@]}"; do args+=(-p "$p"); done
  strace -f -tt -e trace=accept,connect,clock_nanosleep,nanosleep "${args[@]}" -o "$W/trace/$i.strace" 2>/dev/null & tracer=$!
  sleep 0.3
  "${mc[@]}" renew --force >"$W/renew-$i.log" 2>&1
  sleep 0.2; kill "$tracer" 2>/dev/null; wait "$tracer" 2>/dev/null
  ms=$(node -e "console.log(Date.parse(process.argv[2]) - Date.parse(process.argv[1]))" "$(stamp "$W/renew-$i.log" published)" "$(stamp "$W/renew-$i.log" deployed)")
  slept=$(grep -c 'clock_nanosleep(.*tv_sec=1,' "$W/trace/$i.strace")
  echo "run $i: publish → deployed ${ms} ms; ${#pids[@]} old smtpd/tlsmgr processes; one-second sleeps among them: $slept"
  grep -B2 -A2 'clock_nanosleep(.*tv_sec=1,' "$W/trace/$i.strace" | sed 's/^/    /' | head -8
done
echo "traces and logs: $W"
