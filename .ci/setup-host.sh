#!/usr/bin/env bash
# Installs and configures what the test suite and the benchmark need on a fresh
# Debian 12 machine (run as root). Idempotent: safe to run again.
set -euo pipefail

# binutils (objcopy), sqlite3: the SBOM tests make a cargo-auditable binary and an rpm database.
# curl, pigz, golang-go: the benchmark (S1's floor, the pigz pipelines, S1b's Go program).
# attr, libcap2-bin, containerd: getfattr/setfattr (extended attributes of run: layers); getcap/setcap
# and a private containerd (ctr) in the tests.
pkgs=(binutils sqlite3 docker-registry skopeo podman runc buildah umoci busybox-static debootstrap zstd uidmap ca-certificates apache2-utils time sudo curl pigz golang-go attr libcap2-bin containerd)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-host: installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The Debian package starts a registry on :5000 as a service where systemd runs;
# the tests start their own on free loopback ports, so stop it if it is there.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
  systemctl stop docker-registry || true
fi

# podman on this kind of machine works only with runc, cgroupfs and vfs.
mkdir -p /etc/containers/registries.conf.d
cat > /etc/containers/containers.conf <<'CONF'
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
CONF
cat > /etc/containers/storage.conf <<'CONF'
[storage]
driver = "vfs"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
CONF
# Local registries used by the examples, the tests and the benchmark speak plain HTTP.
cat > /etc/containers/registries.conf.d/50-oci-build-local.conf <<'CONF'
[[registry]]
location = "127.0.0.1:5000"
insecure = true

[[registry]]
location = "localhost:5000"
insecure = true
CONF
echo "setup-host: ok ($(podman --version), $(skopeo --version), $(buildah --version | cut -d' ' -f1-3))"
