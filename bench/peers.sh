#!/usr/bin/env bash
# peers.sh — time existing ACME clients issuing certificates from a local pebble.
#
#   bash peers.sh                    # PROFILE=quick (default, ~8 min on 2 cores)
#   PROFILE=full bash peers.sh       # N=1 and N=20, both challenges, 3 runs each (~40 min)
#
# Knobs (environment):
#   PROFILE   quick | full                      (picks PLAN)
#   PLAN      space-separated CHALLENGE:N:RUNS triples, overrides PROFILE
#             quick = "http-01:1:3 dns-01:1:3 http-01:20:1"
#             full  = "http-01:1:3 dns-01:1:3 http-01:20:3 dns-01:20:3"
#   CLIENTS   subset/order of: floor uacme certbot dehydrated acmesh lego cmd
#   BENCH_CMD       for CLIENTS=cmd: a shell command run once per batch (timed);
#                   it must issue $BENCH_NAMES one after another and write each
#                   cert to $BENCH_OUT/<name>/cert.pem (see bench/README.md)
#   BENCH_CMD_NAME  label for it in the tables (default: cmd)
#   BENCH_CMD_WEBROOT=1  serve $BENCH_WEBROOT on 127.0.0.1:5002 for it (http-01),
#                   instead of the command binding 5002 itself
#   ACMESH    path to acme.sh (not in Debian; skipped if absent)
#   KEEP_PEBBLE=1  leave pebble running afterwards (default: stop it if we started it)
#   BENCH_STATE    scratch dir (default bench/.state)
#   BENCH_RESULTS  results root (default bench/results); BENCH_RUN_DIR the exact folder of this run
#
# Each batch = one client, one challenge type, N distinct names
# bench-1.example.test .. bench-N.example.test issued sequentially, in a fresh
# state directory (so a fresh ACME account is registered inside the timed part).
# Timed with /usr/bin/time -v (wall clock + max RSS of the largest process in
# the batch's process tree). Everything stays on 127.0.0.1.
set -uo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export BENCH_STATE=${BENCH_STATE:-$BENCH_DIR/.state}
HOOKS=$BENCH_DIR/hooks
PROFILE=${PROFILE:-quick}
case $PROFILE in
  quick) DEFAULT_PLAN="http-01:1:3 dns-01:1:3 http-01:20:1" ;;
  full)  DEFAULT_PLAN="http-01:1:3 dns-01:1:3 http-01:20:3 dns-01:20:3" ;;
  *) echo "unknown PROFILE=$PROFILE" >&2; exit 2 ;;
esac
PLAN=${PLAN:-$DEFAULT_PLAN}
CLIENTS=${CLIENTS:-"floor uacme certbot dehydrated acmesh lego"}
TS=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS_ROOT=${BENCH_RESULTS:-$BENCH_DIR/results}
RESULTS=${BENCH_RUN_DIR:-$RESULTS_ROOT/$TS-$PROFILE}   # BENCH_RUN_DIR: exact folder (bench/run.sh sets it)
WORK=$BENCH_STATE/work/$TS
mkdir -p "$RESULTS" "$RESULTS_ROOT" "$WORK"
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" | tee -a "$RESULTS/run.log" >&2; }

# ---------------------------------------------------------------- dependencies
# Only the peers named in CLIENTS are installed (Debian packages, by name).
need=()
pairs="pebble:pebble socat:socat curl:curl openssl:openssl /usr/bin/time:time /usr/bin/python3:python3 unshare:util-linux ss:iproute2"
for c in $CLIENTS; do
  case $c in lego|certbot|dehydrated|uacme) pairs+=" $c:$c" ;; esac
done
for pair in $pairs; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if ((${#need[@]})); then
  log "installing Debian packages: ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null || { log "apt-get install failed"; exit 1; }
fi
command -v node >/dev/null || { log "node not found: the floor probe is skipped"; CLIENTS=${CLIENTS//floor/}; }

# acme.sh is not packaged in Debian: set ACMESH to the path of a local copy of the script
# (kept outside this repo), or it is skipped.
if [[ -z ${ACMESH:-} || ! -x $ACMESH ]]; then
  [[ $CLIENTS == *acmesh* ]] && log "acme.sh not available (set ACMESH=/path/to/acme.sh); skipping it"
  CLIENTS=${CLIENTS//acmesh/}
fi

if [[ $CLIENTS == *cmd* && -z ${BENCH_CMD:-} ]]; then
  log "CLIENTS has cmd but BENCH_CMD is empty; skipping it"; CLIENTS=${CLIENTS//cmd/}
fi

# ---------------------------------------------------------------- pebble
started_pebble=0
if ! { [[ -s $BENCH_STATE/run/pebble.pid ]] && kill -0 "$(cat "$BENCH_STATE/run/pebble.pid")" 2>/dev/null; }; then
  started_pebble=1
fi
bash "$BENCH_DIR/pebble-up.sh" >/dev/null || { log "pebble-up failed"; exit 1; }
# shellcheck disable=SC1091
. "$BENCH_STATE/pebble.env"
CA=$PEBBLE_CA_CERT
URL=$PEBBLE_DIRECTORY_URL
# uacme (libcurl-gnutls) has no CA option and libcurl ignores CURL_CA_BUNDLE, so
# it runs in a private mount namespace where this file is bind-mounted over the
# system bundle (the host's /etc/ssl is not modified).
cat /etc/ssl/certs/ca-certificates.crt "$CA" >"$BENCH_STATE/pki/bundle-with-pebble.pem" 2>/dev/null || cp "$CA" "$BENCH_STATE/pki/bundle-with-pebble.pem"

cleanup() {
  [[ -n ${WEB_PID:-} ]] && kill "$WEB_PID" 2>/dev/null
  if [[ $started_pebble == 1 && ${KEEP_PEBBLE:-0} != 1 ]]; then bash "$BENCH_DIR/pebble-down.sh" >/dev/null; fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- versions
deb() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null; }
{
  echo "host: $(uname -srm); $(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "pebble $(deb pebble) (Debian), pebble-challtestsrv same package"
  [[ $CLIENTS == *lego* ]] && echo "lego $(deb lego) (Debian; binary reports '$(lego --version 2>&1 | head -1)')"
  [[ $CLIENTS == *certbot* ]] && echo "certbot $(deb certbot) (Debian; $(certbot --version 2>&1 | head -1)), python3 $(deb python3)"
  [[ $CLIENTS == *dehydrated* ]] && echo "dehydrated $(deb dehydrated) (Debian)"
  [[ $CLIENTS == *uacme* ]] && echo "uacme $(deb uacme) (Debian; $(uacme -V 2>&1 | head -1))"
  [[ $CLIENTS == *cmd* && -n ${BENCH_CMD_VERSION:-} ]] && echo "${BENCH_CMD_NAME:-cmd} $BENCH_CMD_VERSION"
  if [[ -n ${ACMESH:-} ]]; then
    echo "acme.sh $("$ACMESH" --version 2>/dev/null | tail -1) (from $ACMESH)"
  fi
  echo "node $(node -v 2>/dev/null) (floor probe)"
  echo "curl $(deb curl), openssl $(deb openssl), socat $(deb socat)"
} >"$RESULTS/versions.txt"

# ---------------------------------------------------------------- helpers
port_busy() { ss -Hltn "( sport = :$1 )" 2>/dev/null | grep -q .; }
wait_port_free() {
  local i
  for ((i = 0; i < 50; i++)); do port_busy "$1" || return 0; sleep 0.1; done
  return 1
}
start_webroot() { # static server for clients without a built-in HTTP-01 server
  mkdir -p "$1/.well-known/acme-challenge"
  /usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "$1" 5002 >"$2" 2>&1 &
  WEB_PID=$!
  local i
  for ((i = 0; i < 50; i++)); do curl -s -o /dev/null http://127.0.0.1:5002/ && return 0; sleep 0.1; done
  return 1
}
stop_webroot() { [[ -n ${WEB_PID:-} ]] && { kill "$WEB_PID" 2>/dev/null; wait "$WEB_PID" 2>/dev/null; }; WEB_PID=; }

key_desc() { # "EC P-256" / "RSA 2048" for a PEM cert
  local t
  t=$(openssl x509 -in "$1" -noout -text 2>/dev/null)
  if grep -q 'id-ecPublicKey' <<<"$t"; then echo "EC $(grep -m1 -o 'NIST CURVE: [^ ]*' <<<"$t" | cut -d' ' -f3)"
  else echo "RSA $(grep -m1 -o '([0-9]* bit)' <<<"$t" | tr -dc 0-9)"; fi
}
cert_path() { # client dir name -> expected cert path
  case $1 in
    floor|cmd) echo "$2/certs/$3/cert.pem" ;;
    lego) echo "$2/lego/certificates/$3.crt" ;;
    certbot) echo "$2/etc/live/$3/cert.pem" ;;
    dehydrated) echo "$2/certs/$3/cert.pem" ;;
    uacme) echo "$2/conf/$3/cert.pem" ;;
    acmesh) echo "$2/acme/certs/${3}_ecc/$3.cer" ;;
  esac
}

# writes $d/batch.sh (the timed part) and does untimed preparation
prepare() {
  local client=$1 ch=$2 n=$3 d=$4 names=$5
  local b=$d/batch.sh
  {
    echo '#!/usr/bin/env bash'
    echo 'set -e'
    echo "cd '$d'"
  } >"$b"
  case $client in
    floor)
      echo "node '$BENCH_DIR/floor-probe.mjs' --n $n --challenge $ch --out '$d/certs' --json '$d/floor.json'" >>"$b"
      ;;
    cmd)
      mkdir -p "$d/certs" "$d/www/.well-known/acme-challenge"
      cat >>"$b" <<EOF
export BENCH_NAMES='${names% }' BENCH_N=$n BENCH_CHALLENGE=$ch BENCH_OUT='$d/certs' BENCH_WORKDIR='$d'
export BENCH_WEBROOT='$d/www' BENCH_HOOKS='$HOOKS' BENCH_HTTP01_ADDR=127.0.0.1:5002
export PEBBLE_DIRECTORY_URL='$URL' PEBBLE_CA_CERT='$CA' NODE_EXTRA_CA_CERTS='$CA'
export PEBBLE_DNS='$PEBBLE_DNS' CHALLTESTSRV_URL='$CHALLTESTSRV_URL'
EOF
      printf '%s\n' "$BENCH_CMD" >>"$b"
      ;;
    lego)
      echo "export LEGO_CA_CERTIFICATES='$CA'" >>"$b"
      local how="--http --http.port 127.0.0.1:5002"
      if [[ $ch == dns-01 ]]; then
        echo "export EXEC_PATH='$HOOKS/lego-exec.sh' EXEC_POLLING_INTERVAL=1 EXEC_PROPAGATION_TIMEOUT=30" >>"$b"
        how="--dns exec --dns.resolvers 127.0.0.1:8053 --dns.disable-cp"
      fi
      echo "for name in $names; do lego --server '$URL' --accept-tos --email bench@example.test --key-type ec256 --path '$d/lego' -d \"\$name\" $how run; done" >>"$b"
      ;;
    certbot)
      echo "export REQUESTS_CA_BUNDLE='$CA'" >>"$b"
      local how="--standalone --preferred-challenges http-01 --http-01-port 5002 --http-01-address 127.0.0.1"
      [[ $ch == dns-01 ]] && how="--manual --preferred-challenges dns-01 --manual-auth-hook '$HOOKS/certbot-dns.sh auth' --manual-cleanup-hook '$HOOKS/certbot-dns.sh cleanup'"
      echo "for name in $names; do certbot certonly --non-interactive --agree-tos --register-unsafely-without-email --server '$URL' --config-dir '$d/etc' --work-dir '$d/work' --logs-dir '$d/logs' --key-type ecdsa --elliptic-curve secp256r1 -d \"\$name\" $how; done" >>"$b"
      ;;
    dehydrated)
      printf '%s\n' $names >"$d/domains.txt"
      cat >"$d/config" <<EOF
CA="$URL"
CURL_OPTS="--cacert $CA"
CHALLENGETYPE="$ch"
WELLKNOWN="$d/www/.well-known/acme-challenge"
KEY_ALGO=prime256v1
KEYSIZE=2048
BASEDIR="$d"
DOMAINS_TXT="$d/domains.txt"
EOF
      # (the hook is only needed for dns-01; for http-01 dehydrated writes WELLKNOWN itself)
      [[ $ch == dns-01 ]] && echo "HOOK=\"$HOOKS/dehydrated-hook.sh\"" >>"$d/config"
      echo "dehydrated --config '$d/config' --register --accept-terms" >>"$b"
      echo "dehydrated --config '$d/config' --cron" >>"$b"
      ;;
    uacme)
      echo "export BENCH_CHALLENGE=$ch BENCH_WEBROOT='$d/www'" >>"$b"
      echo "uacme -y -a '$URL' -c '$d/conf' -t EC -b 256 new" >>"$b"
      echo "for name in $names; do uacme -a '$URL' -c '$d/conf' -t EC -b 256 -h '$HOOKS/uacme-hook.sh' issue \"\$name\"; done" >>"$b"
      ;;
    acmesh)
      mkdir -p "$d/acme/dnsapi"
      cp "$HOOKS/acmesh-dns_bench.sh" "$d/acme/dnsapi/dns_bench.sh"
      echo "export BENCH_HOOKS='$HOOKS'" >>"$b"
      local how="--standalone --httpport 5002 --local-address 127.0.0.1"
      [[ $ch == dns-01 ]] && how="--dns dns_bench --dnssleep 0"
      echo "for name in $names; do '$ACMESH' --home '$d/acme' --config-home '$d/acme' --cert-home '$d/acme/certs' --server '$URL' --ca-bundle '$CA' --issue --keylength ec-256 --accountkeylength ec-256 --no-color -d \"\$name\" $how; done" >>"$b"
      ;;
  esac
}

RAW=$RESULTS/raw.csv
echo "client,challenge,n,run,wall_s,max_rss_kb,exit,certs_ok,acme_requests,key,wall_hr_s" >"$RAW"
ENDPOINTS=$RESULTS/endpoints.csv
echo "client,challenge,n,run,dir,nonce,newAccount,account,newOrder,authz,chal,finalize,order,cert,other" >"$ENDPOINTS"

run_batch() {
  local client=$1 ch=$2 n=$3 run=$4
  local d=$WORK/$client-$ch-n$n-r$run names="" i
  for ((i = 1; i <= n; i++)); do names+="bench-$i.example.test "; done
  rm -rf "$d"; mkdir -p "$d"
  prepare "$client" "$ch" "$n" "$d" "$names"

  if [[ $ch == http-01 ]] && ! wait_port_free 5002; then
    log "SKIP $client $ch n=$n run=$run: 127.0.0.1:5002 busy"; return
  fi
  # dehydrated and uacme have no built-in HTTP server: serve their webroot
  # with a static server started before (and not counted in) the timing.
  if [[ $ch == http-01 && ($client == dehydrated || $client == uacme || ($client == cmd && ${BENCH_CMD_WEBROOT:-0} == 1)) ]]; then
    start_webroot "$d/www" "$d/webroot.log" || { log "webroot server failed"; stop_webroot; return; }
  fi
  local wrap=()
  [[ $client == uacme ]] && wrap=(unshare -m sh -c 'mount --bind "$0" /etc/ssl/certs/ca-certificates.crt && exec "$@"' "$BENCH_STATE/pki/bundle-with-pebble.pem")
  local tmo=$((60 + 15 * n))
  local pre post t0 t1 rc
  pre=$(wc -l <"$PEBBLE_LOG")
  t0=$(date +%s%N)
  "${wrap[@]}" /usr/bin/time -v -o "$d/time.txt" timeout -k 5 "$tmo" bash "$d/batch.sh" >"$d/out.log" 2>&1 </dev/null
  rc=$?
  t1=$(date +%s%N)
  post=$(wc -l <"$PEBBLE_LOG")
  stop_webroot

  local wall rss ok=0 key="" reqs f name
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$d/time.txt")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$d/time.txt")
  sed -n "$((pre + 1)),${post}p" "$PEBBLE_LOG" >"$d/pebble.log"
  reqs=$(grep -c 'calling handler()' "$d/pebble.log")
  for name in $names; do
    f=$(cert_path "$client" "$d" "$name")
    if [[ -s $f ]] && openssl x509 -in "$f" -noout -ext subjectAltName 2>/dev/null | grep -q "DNS:$name"; then
      ok=$((ok + 1)); [[ -z $key ]] && key=$(key_desc "$f")
    fi
  done
  local hr
  hr=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b-a)/1e9}')
  local label=$client
  [[ $client == cmd ]] && label=${BENCH_CMD_NAME:-cmd}
  echo "$label,$ch,$n,$run,${wall:-NA},${rss:-NA},$rc,$ok,$reqs,$key,$hr" >>"$RAW"
  # ACME requests by endpoint, from pebble's log ("<METHOD> <path> -> calling handler()")
  awk -v pre="$label,$ch,$n,$run" '/calling handler\(\)/ {
      p = $5; sub(/\/[^\/]*$/, "", p); if (p == "") p = $5
      e = (p ~ /^\/dir/) ? "dir" : (p ~ /nonce/) ? "nonce" : (p ~ /sign-me-up/) ? "newAccount" : \
          (p ~ /my-account/) ? "account" : (p ~ /order-plz/) ? "newOrder" : (p ~ /authZ/) ? "authz" : \
          (p ~ /chalZ/) ? "chal" : (p ~ /finalize/) ? "finalize" : (p ~ /my-order/) ? "order" : \
          (p ~ /certZ/) ? "cert" : "other"
      c[e]++ }
    END { printf "%s,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d\n", pre, c["dir"], c["nonce"], c["newAccount"], c["account"],
          c["newOrder"], c["authz"], c["chal"], c["finalize"], c["order"], c["cert"], c["other"] }' \
    "$d/pebble.log" >>"$ENDPOINTS"
  local status=ok; [[ $rc != 0 || $ok != "$n" ]] && status="FAIL(rc=$rc certs=$ok/$n)"
  log "$(printf '%-10s %-7s n=%-2s run=%s wall=%6ss rss=%6sKB reqs=%-4s %s %s' "$label" "$ch" "$n" "$run" "$wall" "$rss" "$reqs" "$key" "$status")"
  if [[ $status != ok ]]; then
    mkdir -p "$RESULTS/failures"; tail -n 40 "$d/out.log" >"$RESULTS/failures/$label-$ch-n$n-r$run.log"
  fi
}

# ---------------------------------------------------------------- main loop
log "profile=$PROFILE plan=[$PLAN] clients=[$CLIENTS] results=$RESULTS"
maxruns=0
for t in $PLAN; do r=${t##*:}; ((r > maxruns)) && maxruns=$r; done
for ((run = 1; run <= maxruns; run++)); do
  for t in $PLAN; do
    IFS=: read -r ch n runs <<<"$t"
    ((run > runs)) && continue
    for client in $CLIENTS; do
      run_batch "$client" "$ch" "$n" "$run"
    done
  done
done

/usr/bin/python3 "$BENCH_DIR/summarize.py" "$RAW" "$RESULTS/versions.txt" "$ENDPOINTS" >"$RESULTS/summary.md"
cp "$RESULTS/summary.md" "$RESULTS_ROOT/latest-$PROFILE.md"
cat "$RESULTS/summary.md"
log "done: $RESULTS"
