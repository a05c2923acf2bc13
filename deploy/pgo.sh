#!/usr/bin/env bash
# The release binary, built with profile-guided optimisation: an instrumented build, a training
# run of real traffic through one and two sidecar hops (HTTP/1.1 and HTTP/2, bodiless and with
# bodies), then the build that lays its code out by that profile. `make release` runs this;
# the result is target/pgo/release/flowmesh. Why and what it buys: deploy/README.md.
#
#   deploy/pgo.sh            # about 30 minutes on 2 cores (two fat-LTO builds)
#   PGO_REQUESTS=5000 deploy/pgo.sh   # a shorter training run (per phase; default 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
instrumented=$root/target/pgo-instrumented
out=$root/target/pgo
raw=$out/raw
requests=${PGO_REQUESTS:-20000}

keep_work=
fail() {
  echo "deploy/pgo.sh: $*" >&2
  keep_work=1
  exit 1
}

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# What the training run needs: nginx as the app, h2load as the client (both HTTP versions),
# curl to wait for readiness, python3 for free ports. Installed once from Debian.
need=()
command -v nginx >/dev/null || need+=(nginx)
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3)

# llvm-profdata must read the raw profiles of rustc's LLVM: rustup's llvm-tools when present,
# else Debian's newest (LLVM 19 reads the raw format of rustc 1.95's LLVM 22).
sysroot=$(rustc --print sysroot)
host=$(rustc -vV | sed -n 's/^host: //p')
profdata=$sysroot/lib/rustlib/$host/bin/llvm-profdata
if [[ ! -x $profdata ]]; then
  profdata=/usr/lib/llvm-19/bin/llvm-profdata
  [[ -x $profdata ]] || need+=(llvm-19)
fi
if ((${#need[@]})); then
  echo "deploy/pgo.sh: installing ${need[*]}" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${need[@]}" ||
    fail "could not install ${need[*]}; install them (or \`rustup component add llvm-tools\`) and retry"
fi

echo "deploy/pgo.sh: 1/3 instrumented build ($instrumented)" >&2
rm -rf "$raw"
CARGO_TARGET_DIR=$instrumented RUSTFLAGS="-Cprofile-generate=$raw" \
  cargo build --release --locked --bin flowmesh
bin=$instrumented/release/flowmesh

echo "deploy/pgo.sh: 2/3 training run ($requests requests per phase)" >&2
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  # A failed run keeps its logs and configurations for a look.
  [[ -n $keep_work ]] || rm -rf "$work"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Polls URL (extra curl arguments after it) until it answers 2xx, for up to 30 s.
wait_for() {
  local url=$1
  shift
  for _ in $(seq 300); do
    curl -sf -o /dev/null "$@" "$url" && return 0
    sleep 0.1
  done
  fail "$url did not answer within 30 s; logs in $work"
}

app=$(port)
head -c 1024 /dev/zero | tr '\0' x > "$work/answer"
head -c 16384 /dev/zero | tr '\0' y > "$work/body"
cat > "$work/app.conf" <<EOF
master_process off; daemon off; pid $work/app.pid; error_log $work/app-error.log warn;
events { worker_connections 4096; }
http {
  access_log off; client_body_temp_path $work/nginx-body; proxy_temp_path $work/nginx-proxy;
  fastcgi_temp_path $work/nginx-fcgi; uwsgi_temp_path $work/nginx-uwsgi; scgi_temp_path $work/nginx-scgi;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$app; location / { default_type text/plain; return 200 "$(cat "$work/answer")"; } }
}
EOF
nginx -c "$work/app.conf" -e "$work/app-error.log" &
pids+=($!)

# The instrumented processes write their profiles when they exit, one file each.
export LLVM_PROFILE_FILE="$raw/%p-%m.profraw" FLOWMESH_LOG=warn
printf 'pgo-training' > "$work/token"
control_plane=$(port)
"$bin" control-plane --id 1 --listen "127.0.0.1:$control_plane" --data-dir "$work/control-plane" \
  --token-file "$work/token" 2> "$work/control-plane.log" &
pids+=($!)

# sidecar SERVICE: starts one; sets ${SERVICE}_inbound, _outbound, _local.
sidecar() {
  local service=$1 local_port inbound outbound mesh
  local_port=$(port) inbound=$(port) outbound=$(port) mesh=$(port)
  cat > "$work/$service.toml" <<EOF
service = "$service"
data_dir = "$work/sidecar-$service"
control_plane = ["http://127.0.0.1:$control_plane"]
token_file = "$work/token"
[app]
address = "127.0.0.1:$app"
[listen]
local = "127.0.0.1:$local_port"
inbound = "127.0.0.1:$inbound"
outbound = "127.0.0.1:$outbound"
mesh = "127.0.0.1:$mesh"
[telemetry]
otlp_endpoint = "none"
EOF
  "$bin" proxy --config "$work/$service.toml" 2> "$work/$service.log" &
  sidecars+=($!)
  printf -v "${service}_inbound" %s "$inbound"
  printf -v "${service}_outbound" %s "$outbound"
  printf -v "${service}_local" %s "$local_port"
}
sidecars=()
sidecar app
sidecar client
pids+=("${sidecars[@]}")
wait_for "http://127.0.0.1:$app_local/readyz"
wait_for "http://127.0.0.1:$client_local/readyz"
# Two hops work once the client's sidecar has the app's in its registry.
wait_for "http://127.0.0.1:$client_outbound/" -H 'Host: app'

one_hop=http://127.0.0.1:$app_inbound/
two_hops=http://127.0.0.1:$client_outbound/
load() {
  local out
  out=$(h2load "$@" 2>&1) || fail "h2load $* failed: $out"
  # Every request must have been answered 2xx: a profile of error paths would teach the build
  # the wrong hot paths.
  grep -q ' 0 failed, 0 errored' <<< "$out" && grep -q ' 0 3xx, 0 4xx, 0 5xx' <<< "$out" ||
    fail "h2load $* did not get 2xx for every request: $(grep -E 'requests:|status codes:' <<< "$out" | tr '\n' ' ')"
  echo "  h2load $*: $(grep -m1 'finished in' <<< "$out")" >&2
}
load --h1 -n "$requests" -c 1 "$one_hop"
load --h1 -n "$((requests * 2))" -c 16 "$one_hop"
load --h1 -n "$((requests / 4))" -c 4 -d "$work/body" "$one_hop"
load -n "$requests" -c 4 -m 8 "$one_hop"
# `:authority` is h2load's Host in HTTP/1.1 too; `-H 'Host: app'` would add a second Host.
load --h1 -n "$((requests / 2))" -c 1 -H ':authority: app' "$two_hops"
load --h1 -n "$requests" -c 16 -H ':authority: app' "$two_hops"
load --h1 -n "$((requests / 8))" -c 4 -H ':authority: app' -d "$work/body" "$two_hops"

# Sidecars first (they drain and write their profiles), then the control plane.
kill -TERM "${sidecars[@]}"
for pid in "${sidecars[@]}"; do
  wait "$pid" || fail "a sidecar did not stop cleanly; logs in $work"
done
kill -TERM "${pids[1]}"
wait "${pids[1]}" || fail "the control plane did not stop cleanly; logs in $work"

echo "deploy/pgo.sh: 3/3 optimised build ($out)" >&2
"$profdata" merge -o "$out/merged.profdata" "$raw"/*.profraw ||
  fail "$profdata cannot read rustc's profiles; \`rustup component add llvm-tools\` gives a matching one"
# Named by its content: cargo rebuilds when RUSTFLAGS change, not when a file they name does.
profile=$out/flowmesh-$(sha256sum "$out/merged.profdata" | cut -c1-16).profdata
mv "$out/merged.profdata" "$profile"
CARGO_TARGET_DIR=$out RUSTFLAGS="-Cprofile-use=$profile" \
  cargo build --release --locked --bin flowmesh
echo "$out/release/flowmesh"
