#!/usr/bin/env bash
# Installs what the test suite needs, idempotently: nothing is downloaded when it is present.
# Debian packages via apt-get, Python packages via pip.
set -euo pipefail

# procps: kill(1), with which tests stop processes by signal. kcat and confluent-kafka
# (librdkafka inside its wheel, with its mock cluster): real Kafka clients and a
# Kafka-protocol broker for the Kafka proxy tests. chromium and nodejs/npm: the monitor's
# pages are checked in headless Chromium, driven by playwright-core (npm, below). systemd:
# systemd-analyze, which checks the units in deploy/systemd. kubernetes-validate: the
# Kubernetes API's own schemas, offline, for the manifests in deploy/kubernetes.
APT_PACKAGES=(procps kcat chromium systemd)
PIP_PACKAGES=(confluent-kafka==2.16.1 kubernetes-validate==1.37.0)

missing_apt=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing_apt+=("$pkg")
done
if ((${#missing_apt[@]})); then
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing_apt[@]}"
fi

missing_pip=()
for pkg in "${PIP_PACKAGES[@]}"; do
  python3 -m pip show -q "${pkg%%[=<>]*}" >/dev/null 2>&1 || missing_pip+=("$pkg")
done
if ((${#missing_pip[@]})); then
  python3 -m pip install -q "${missing_pip[@]}"
fi
# tansu: a Kafka-compatible broker of its own (not librdkafka's code on the broker side too)
# for the Kafka end-to-end tests. Built once by cargo install (9-15 minutes on 2 cores); later
# runs find it in ~/.cargo/bin and skip this.
TANSU_VERSION=0.6.0
if ! tansu --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
  cargo install tansu --version "$TANSU_VERSION" --features dynostore --locked
fi
# playwright-core drives Debian's Chromium for the monitor test (no browser download: the
# test points it at /usr/bin/chromium). Node.js and npm come with the machine; if not, Debian's.
if ! command -v npm >/dev/null 2>&1; then
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq nodejs npm
fi
monitor_dir="$(dirname "$0")/monitor"
wanted=$(sed -n 's/.*"playwright-core": "\(.*\)".*/\1/p' "$monitor_dir/package.json")
have=""
if [[ -f "$monitor_dir/node_modules/playwright-core/package.json" ]]; then
  have=$(sed -n 's/^  "version": "\(.*\)".*/\1/p' "$monitor_dir/node_modules/playwright-core/package.json")
fi
if [[ "$have" != "$wanted" ]]; then
  (cd "$monitor_dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
fi
echo "test dependencies: ok"
