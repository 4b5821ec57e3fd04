#!/usr/bin/env bash
# Installs the system packages the local stack needs, only those missing (quick when all are
# there): a JDK and Maven (the real Apache Kafka broker runs from Maven Central jars), the
# Postgres server, redis-server, npm (helm + kubectl come from an npm package), and prometheus
# (its promtool checks and unit-tests the chart's alerting rules; the server is not started),
# and podman with runc, catatonit (its pods' pause process) and mmdebstrap (a base image without
# a registry) for `make k8s-e2e`, and chromium (airline-report renders its PNGs with it; the
# report's test loads the page in it).
# Debian/Ubuntu with apt; as root, or with sudo available.
set -euo pipefail

missing=()
command -v java >/dev/null || missing+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || missing+=(maven)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v npm >/dev/null || missing+=(npm)
command -v promtool >/dev/null || missing+=(prometheus)
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
command -v catatonit >/dev/null || missing+=(catatonit)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
command -v chromium >/dev/null || missing+=(chromium)
((${#missing[@]})) || exit 0

echo "system-deps: installing ${missing[*]}" >&2
if ! command -v apt-get >/dev/null; then
    echo "system-deps: no apt-get here; please install: ${missing[*]}" >&2
    exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "system-deps: run as root or install: ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq || { sleep 10; "${sudo[@]}" apt-get update -qq; }
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
