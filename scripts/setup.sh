#!/usr/bin/env bash
# Installs everything the build, the tests and the lab need. Idempotent: a
# second run only checks. Needs root (apt-get).
set -euo pipefail

need_backports() {
  # QEMU 10.x (bookworm-backports) has the Intel IOMMU model the lab relies on.
  if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    local mirror
    mirror=$(grep -rhoE "https?://[^ ]+/debian/?$" /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list 2>/dev/null | head -n1 || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    cat >/etc/apt/sources.list.d/bookworm-backports.sources <<SRC
Types: deb
URIs: ${mirror}
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
}

BUILD_PKGS=(cmake g++ make ninja-build pkg-config linux-libc-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev libfdt-dev clang-format acpica-tools clang libclang-rt-14-dev)
LAB_PKGS=(busybox-static cpio xz-utils zstd e2fsprogs kmod pciutils
  flex bison bc libelf-dev libssl-dev dwarves rsync patch
  socat iperf3)

missing=()
for p in "${BUILD_PKGS[@]}" "${LAB_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
qemu_ok=0
if command -v qemu-system-x86_64 >/dev/null; then
  qemu-system-x86_64 --version | grep -qE "version (9|1[0-9])\." && qemu_ok=1
fi

if ((${#missing[@]})) || ((qemu_ok == 0)); then
  need_backports
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  ((${#missing[@]})) && apt-get install -y -qq --no-install-recommends "${missing[@]}"
  ((qemu_ok)) || apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-system-x86
fi
echo "setup: all packages present"
