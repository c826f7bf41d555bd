#!/usr/bin/env bash
# bench/run.sh — the repository's benchmark, one entry point. Everything stays on 127.0.0.1.
#
#   bash bench/run.sh                          # the whole benchmark (about 10 min on 2 cores)
#   PLAN="http-01:1:1 http-01:20:1" DEPLOY_RUNS=3 COLD_RUNS=3 bash bench/run.sh   # quicker
#
# Parts (PARTS, default "peers deploy memory"):
#   peers   Pebble (no validation delay) and, alternating in one run, the protocol floor
#           (floor-probe.mjs), uacme (Debian) and mailcerts on the same names bench-N.example.test:
#           PLAN batches of CHALLENGE:N:RUNS (default "http-01:1:3 http-01:20:3"); wall time,
#           peak RSS (/usr/bin/time -v) and ACME requests per certificate (Pebble's log).
#   deploy  one Postfix and one Dovecot container of the tests' image (host networking, labelled
#           like the tests'); DEPLOY_RUNS x `mailcerts renew --force`; publish → deployed
#           latency from the JSON log times ('published' → 'deployed': every container reloaded
#           and verified). Needs a running dockerd: fails with a message otherwise.
#   memory  idle RSS and start → ready of the daemon with 1 certificate (COLD_RUNS launches);
#           MANY_N (500) certificates published (MANY_SOURCE=acme, the default: issued from Pebble
#           once; custom: supplied, made with openssl and a throwaway CA), then MANY_RUNS timed
#           `run --once` that find nothing due (wall, peak RSS) and the idle daemon's RSS.
# Prints every figure with its goal and PASS/FAIL, and writes bench/results.md (RESULTS_MD)
# from this run's raw data, kept in $BENCH_STATE/runs/<time>/.
#
# Other knobs: BUILD=0 (skip npm run build), MAILCERTS_ENTRY (bundle: bundle/mailcerts.mjs, the
# code the image runs, default; dist: dist/cli.js with node_modules), ACME_CONCURRENCY (passed to mailcerts, default 4),
# IDLE_SETTLE_MS (3000), STATUS_PORT (7990), MAILSTACK_IMAGE, BENCH_STATE (bench/.state).
# Ports: Pebble 14000/15000, challtestsrv 8053/8055, HTTP-01 5002, mail stack 7025 7587 7465
# 7143 7993 7110 7995 7190, status 7990 — all on 127.0.0.1, checked free before starting.
set -uo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
export PATH="$ROOT/.tools/node_modules/.bin:$PATH"
PARTS=${PARTS:-"peers deploy memory"}
PLAN=${PLAN:-"http-01:1:3 http-01:20:3"}
DEPLOY_RUNS=${DEPLOY_RUNS:-5}
COLD_RUNS=${COLD_RUNS:-5}
MANY_N=${MANY_N:-500}
MANY_SOURCE=${MANY_SOURCE:-acme}
MANY_RUNS=${MANY_RUNS:-3}
IDLE_SETTLE_MS=${IDLE_SETTLE_MS:-3000}
STATUS_PORT=${STATUS_PORT:-7990}
MAIL_IMAGE=${MAILSTACK_IMAGE:-mailcerts-mailstack:bookworm-3}
export ACME_CONCURRENCY=${ACME_CONCURRENCY:-4}
export BENCH_STATE=${BENCH_STATE:-$BENCH/.state}
TS=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$BENCH_STATE/runs/$TS
# Only a run of every part replaces the table the README shows; a partial run keeps its own.
if [[ -z ${RESULTS_MD:-} ]]; then
  if [[ ${PARTS:-peers deploy memory} == "peers deploy memory" ]]; then RESULTS_MD=$BENCH/results.md; else RESULTS_MD=; fi
fi
# What is measured: the code the image runs (the esbuild bundle), or the tsc output with node_modules.
MAILCERTS_ENTRY=${MAILCERTS_ENTRY:-bundle}
case $MAILCERTS_ENTRY in
  bundle) CLI=$ROOT/bundle/mailcerts.mjs ;;
  dist) CLI=$ROOT/dist/cli.js ;;
  *) echo "bench: MAILCERTS_ENTRY is bundle or dist, not $MAILCERTS_ENTRY" >&2; exit 2 ;;
esac
export MAILCERTS_CLI=$CLI
# The node flags the image runs mailcerts with, read from docker/Dockerfile's ENTRYPOINT: measured
# as shipped. They go on node's command line (NODE_OPTIONS refuses --max-opt).
MAILCERTS_NODE_FLAGS=${MAILCERTS_NODE_FLAGS-$(grep -m1 '^ENTRYPOINT' "$ROOT/docker/Dockerfile" | grep -o '"--[^"]*"' | tr -d '"' | tr '\n' ' ' | sed 's/ $//')}
export MAILCERTS_NODE_FLAGS
PROJECT=mailcerts-bench
MARKER=mailcerts.bench=1
MAIL_PORTS="7025 7587 7465 7143 7993 7110 7995 7190"
mkdir -p "$OUT"
log() { printf '[%(%H:%M:%S)T] bench: %s\n' -1 "$*" | tee -a "$OUT/run.log" >&2; }
fail() { log "FAILED: $*"; exit 1; }
has() { [[ " $PARTS " == *" $1 "* ]]; }

# ---------------------------------------------------------------- preconditions
for t in node python3 openssl curl ss; do command -v "$t" >/dev/null || fail "$t is not installed"; done
[[ -x /usr/bin/time ]] || fail "/usr/bin/time is missing (apt-get install time)"
node -e 'process.exit(+process.versions.node.split(".")[0] >= 24 ? 0 : 1)' || fail "node $(node -v) is older than 24: run bash scripts/setup.sh"
if has deploy; then
  docker info >/dev/null 2>&1 || fail "no Docker daemon answers (docker info failed): start one with 'bash scripts/setup.sh', which runs
    dockerd --bridge=none --iptables=false --ip6tables=false --ip-masq=false
  or leave the deploy part out: PARTS=\"peers memory\" bash bench/run.sh"
  docker image inspect "$MAIL_IMAGE" >/dev/null 2>&1 || fail "the mail image $MAIL_IMAGE is missing: build it with 'bash scripts/mail-image.sh'"
fi
port_busy() { ss -Hltn "( sport = :$1 )" 2>/dev/null | grep -q .; }
for p in 5002 $STATUS_PORT $(has deploy && echo "$MAIL_PORTS"); do
  port_busy "$p" && fail "port $p is in use by another process: $(ss -Hltnp "( sport = :$p )" | head -1)"
done
if [[ ${BUILD:-1} != 0 ]]; then
  log "npm run build"
  (cd "$ROOT" && npm run -s build && node scripts/bundle.mjs) >"$OUT/build.log" 2>&1 || { cat "$OUT/build.log" >&2; fail "npm run build (and the bundle) failed"; }
fi
[[ -s $CLI ]] || fail "$CLI is missing: run npm run build (and node scripts/bundle.mjs)"
{
  echo "date=$(date -u +%FT%TZ)"
  echo "plan=$PLAN"
  echo "parts=$PARTS"
  echo "deploy_runs=$DEPLOY_RUNS"
  echo "cold_runs=$COLD_RUNS"
  echo "many_n=$MANY_N"
  echo "many_source=$MANY_SOURCE"
  echo "many_runs=$MANY_RUNS"
  echo "idle_settle_ms=$IDLE_SETTLE_MS"
  echo "acme_concurrency=$ACME_CONCURRENCY"
  echo "mailcerts=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null)$(cd "$ROOT" && [[ -n $(git status --porcelain -- src package.json 2>/dev/null) ]] && echo ' (with uncommitted changes in src/)')"
  echo "node=$(node -v)"
  echo "entry=${CLI#"$ROOT/"} (node $MAILCERTS_NODE_FLAGS)"
  echo "host=$(uname -srm); $(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "mail_image=$MAIL_IMAGE"
  echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/meta.env"

# ---------------------------------------------------------------- pebble + cleanup
started_pebble=1
[[ -s $BENCH_STATE/run/pebble.pid ]] && kill -0 "$(cat "$BENCH_STATE/run/pebble.pid")" 2>/dev/null && started_pebble=0
CONTAINERS=()
cleanup() {
  ((${#CONTAINERS[@]})) && docker rm -f "${CONTAINERS[@]}" >/dev/null 2>&1
  [[ $started_pebble == 1 ]] && bash "$BENCH/pebble-down.sh" >/dev/null 2>&1
}
trap cleanup EXIT
trap 'exit 130' INT TERM
bash "$BENCH/pebble-up.sh" >/dev/null || fail "pebble-up.sh failed"
# shellcheck disable=SC1091
. "$BENCH_STATE/pebble.env"

# mailcerts with only the given variables (plus PATH and HOME), Pebble as the CA.
# (env applies its assignments in order: a later one overrides these.)
MC_BASE=(PATH="$PATH" HOME="${HOME:-/root}" ACME_DIRECTORY="$PEBBLE_DIRECTORY_URL" NODE_EXTRA_CA_CERTS="$PEBBLE_CA_CERT"
  HTTP01_MODE=standalone HTTP01_PORT=5002 HTTP01_ADDRESS=127.0.0.1 ACME_CONCURRENCY="$ACME_CONCURRENCY"
  STATUS_ADDRESS=off LOG_LEVEL=info)
mc() { env -i "${MC_BASE[@]}" "$@"; }
# node, the image's flags and the entry point (the flags are words).
# shellcheck disable=SC2206
MCNODE=(node $MAILCERTS_NODE_FLAGS "$CLI")

# ---------------------------------------------------------------- 1. peers
part_peers() {
  log "peers: plan [$PLAN], clients floor uacme mailcerts (alternating)"
  CLIENTS="floor uacme cmd" BENCH_CMD_NAME=mailcerts BENCH_CMD="bash '$BENCH/mailcerts-driver.sh'" \
    BENCH_CMD_VERSION="$(grep ^mailcerts= "$OUT/meta.env" | cut -d= -f2-) (this checkout, node $(node -v))" \
    BENCH_RUN_DIR="$OUT/peers" BENCH_RESULTS="$BENCH_STATE/results" KEEP_PEBBLE=1 PLAN="$PLAN" \
    bash "$BENCH/peers.sh" >"$OUT/peers.stdout" || fail "peers.sh failed"
}

# ---------------------------------------------------------------- 2. deploy against real containers
served_serial() { # port starttls-protocol|"" -> serial of the served leaf
  local args=(-connect "127.0.0.1:$1" -servername mail.example.test)
  [[ -n $2 ]] && args+=(-starttls "$2")
  timeout 15 openssl s_client "${args[@]}" </dev/null 2>/dev/null | openssl x509 -noout -serial 2>/dev/null | cut -d= -f2
}
part_deploy() {
  local d=$OUT/deploy w=$BENCH_STATE/deploy i p
  mkdir -p "$d"; rm -rf "$w"; mkdir -p "$w/certs" "$w/state"
  # Leftovers of an interrupted run of this script (only containers with its own label).
  local old; old=$(docker ps -aq --filter "label=$MARKER")
  [[ -n $old ]] && docker rm -f $old >/dev/null
  # The seed a mail server starts with before mailcerts (as test/helpers' seedSelfSigned).
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$w/certs/privkey.pem" \
    -out "$w/certs/fullchain.pem" -days 2 -subj /CN=seed.invalid 2>/dev/null || fail "openssl seed failed"
  cat "$w/certs/privkey.pem" "$w/certs/fullchain.pem" >"$w/certs/privkey-fullchain.pem"
  local common=(run -d --label "$MARKER" --label "com.docker.compose.project=$PROJECT" --network host --hostname mail -v "$w/certs:/etc/ssl/mail:ro")
  local pf df
  pf=$(docker "${common[@]}" --name mailcerts-bench-postfix --label mailcerts.reload=postfix \
    --label mailcerts.verify=smtp://:7025,submission://:7587,smtps://:7465 \
    -v "$BENCH/mailstack/postfix/main.cf:/etc/postfix/main.cf:ro" -v "$BENCH/mailstack/postfix/master.cf:/etc/postfix/master.cf:ro" \
    "$MAIL_IMAGE" postfix start-fg) || fail "docker run (postfix) failed"
  CONTAINERS+=("$pf")
  df=$(docker "${common[@]}" --name mailcerts-bench-dovecot --label mailcerts.reload=dovecot \
    --label mailcerts.verify=imap://:7143,imaps://:7993,pop3://:7110,pop3s://:7995,sieve://:7190 \
    -v "$BENCH/mailstack/dovecot/dovecot.conf:/etc/dovecot/dovecot.conf:ro" \
    "$MAIL_IMAGE" dovecot -F) || fail "docker run (dovecot) failed"
  CONTAINERS+=("$df")
  for p in $MAIL_PORTS; do
    for ((i = 0; i < 200; i++)); do port_busy "$p" && break; sleep 0.1; done
    port_busy "$p" || { docker logs "$pf" >"$d/postfix.log" 2>&1; docker logs "$df" >"$d/dovecot.log" 2>&1; fail "nothing listens on 127.0.0.1:$p after 20 s (see $d/*.log)"; }
  done
  local env=(ACME_DOMAINS=mail.example.test CERTS_DIR="$w/certs" STATE_DIR="$w/state" DOCKER_SCOPE=$PROJECT)
  log "deploy: first run --once (issues and replaces the seed certificate)"
  mc "${env[@]}" "${MCNODE[@]}" run --once >"$d/first.log" 2>&1 || { tail -n 20 "$d/first.log" >&2; fail "deploy: first run --once failed"; }
  echo "run,rc,published_serial,smtp_serial,imaps_serial" >"$d/runs.csv"
  for ((i = 1; i <= DEPLOY_RUNS; i++)); do
    mc "${env[@]}" "${MCNODE[@]}" renew --force >"$d/renew-$i.log" 2>&1
    local rc=$? pub smtp imaps
    pub=$(openssl x509 -in "$w/certs/cert.pem" -noout -serial | cut -d= -f2)
    smtp=$(served_serial 7025 smtp); imaps=$(served_serial 7993 "")
    echo "$i,$rc,$pub,$smtp,$imaps" >>"$d/runs.csv"
    log "deploy: renew --force $i/$DEPLOY_RUNS rc=$rc published $pub, served smtp $smtp imaps $imaps"
  done
  docker logs "$pf" >"$d/postfix.log" 2>&1; docker logs "$df" >"$d/dovecot.log" 2>&1
  docker rm -f "$pf" "$df" >/dev/null; CONTAINERS=()
}

# ---------------------------------------------------------------- 3. memory and start-up
timed() { # OUTFILE_PREFIX cmd... : /usr/bin/time -v, stdout+stderr to PREFIX.log, rc to PREFIX.rc
  local pre=$1; shift
  /usr/bin/time -v -o "$pre.time" "$@" >"$pre.log" 2>&1
  echo $? >"$pre.rc"
}
probe() { # JSON LOG env... : one daemon launch
  local json=$1 dlog=$2; shift 2
  mc STATUS_ADDRESS=127.0.0.1:$STATUS_PORT "$@" node "$BENCH/lib/daemon-probe.mjs" --cli "$CLI" --node-flags "$MAILCERTS_NODE_FLAGS" --status "127.0.0.1:$STATUS_PORT" \
    --settle-ms "$IDLE_SETTLE_MS" --log "$dlog" --json "$json" >/dev/null 2>>"$OUT/memory/probe-errors.log"
}
make_supplied() { # DIR N : a throwaway CA and N certificates many-<i>.example.test signed by it
  local dir=$1 n=$2
  mkdir -p "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=mailcerts bench throwaway CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null || return 1
  seq 1 "$n" | xargs -P "$(nproc)" -I{} bash -c '
    set -e; dir=$1; name=many-$2.example.test; c=$dir/$name; mkdir -p "$c"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$name" -keyout "$c/privkey.pem" -out "$c/csr.pem" 2>/dev/null
    printf "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:%s\n" "$name" >"$c/ext"
    openssl x509 -req -in "$c/csr.pem" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -set_serial "0x$(od -An -N8 -tx1 /dev/urandom | tr -d " \n")" \
      -days 90 -sha256 -extfile "$c/ext" -out "$c/cert.pem" 2>/dev/null
    cat "$c/cert.pem" "$dir/ca.pem" >"$c/fullchain.pem"; rm -f "$c/csr.pem" "$c/ext" "$c/cert.pem"
  ' _ "$dir" {}
}
part_memory() {
  local d=$OUT/memory i
  mkdir -p "$d"
  # 1 certificate, issued from Pebble, then the daemon started COLD_RUNS times.
  local w1=$BENCH_STATE/mem1
  rm -rf "$w1"; mkdir -p "$w1/certs" "$w1/state"
  local env1=(ACME_DOMAINS=mem-1.example.test CERTS_DIR="$w1/certs" STATE_DIR="$w1/state" DOCKER_RELOAD=false)
  log "memory: 1 certificate: run --once (issue), then $COLD_RUNS daemon starts"
  mc "${env1[@]}" "${MCNODE[@]}" run --once >"$d/one-issue.log" 2>&1 || { tail -n 20 "$d/one-issue.log" >&2; fail "memory: run --once for 1 certificate failed"; }
  for ((i = 1; i <= COLD_RUNS; i++)); do
    probe "$d/daemon1-$i.json" "$d/daemon1-$i.log" "${env1[@]}" || log "memory: daemon start $i failed (see $d/daemon1-$i.*)"
  done

  # MANY_N certificates, published once, then passes that find nothing due.
  local wm=$BENCH_STATE/many
  rm -rf "$wm"; mkdir -p "$wm/certs" "$wm/state"
  local envm=(MAILCERTS_CONFIG="$wm/mailcerts.yml" CERTS_DIR="$wm/certs" STATE_DIR="$wm/state" DOCKER_RELOAD=false)
  {
    echo "certificates:"
    for ((i = 1; i <= MANY_N; i++)); do echo "  - domains: [many-$i.example.test]"; done
  } >"$wm/mailcerts.yml"
  if [[ $MANY_SOURCE == custom ]]; then
    log "memory: $MANY_N supplied certificates (openssl, throwaway CA)"
    make_supplied "$wm/custom" "$MANY_N" || fail "memory: making the supplied certificates failed"
    envm+=(CUSTOM_CERTS_DIR="$wm/custom")
  else
    log "memory: $MANY_N certificates from Pebble (one run --once; a few minutes)"
  fi
  # Issued (or taken in) 32 at a time: only the passes after this one are measured.
  timed "$d/many-first" env -i "${MC_BASE[@]}" "${envm[@]}" ACME_CONCURRENCY=32 "${MCNODE[@]}" run --once
  [[ $(cat "$d/many-first.rc") == 0 ]] || { tail -n 20 "$d/many-first.log" >&2; fail "memory: publishing $MANY_N certificates failed"; }
  log "memory: $MANY_N published; $MANY_RUNS x run --once with nothing due, then $MANY_RUNS daemon starts"
  for ((i = 1; i <= MANY_RUNS; i++)); do
    timed "$d/many-once-$i" env -i "${MC_BASE[@]}" "${envm[@]}" "${MCNODE[@]}" run --once
  done
  for ((i = 1; i <= MANY_RUNS; i++)); do
    probe "$d/many-daemon-$i.json" "$d/many-daemon-$i.log" "${envm[@]}" || log "memory: $MANY_N-certificate daemon start $i failed (see $d/many-daemon-$i.*)"
  done
}

has peers && part_peers
has deploy && part_deploy
has memory && part_memory
# What each footprint trick still buys, in fresh processes with the image's node flags.
if has memory; then
  log "footprint: each trick against the plain way (bench/footprint.mjs)"
  MAILCERTS_NODE_FLAGS="$MAILCERTS_NODE_FLAGS" node "$BENCH/footprint.mjs" --runs "$COLD_RUNS" >"$OUT/footprint.md" || log "footprint: failed"
fi
echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/meta.env"
log "report"
RESULTS_MD=${RESULTS_MD:-$OUT/results.md}
python3 "$BENCH/lib/report.py" "$OUT" "$RESULTS_MD" | tee "$OUT/report.txt"
rc=${PIPESTATUS[0]}
log "raw data: $OUT; table: $RESULTS_MD"
exit "$rc"
