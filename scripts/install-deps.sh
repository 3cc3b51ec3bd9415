#!/usr/bin/env bash
# Installs every Debian 12 package the build, the demo and the tests need. Idempotent.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config clang lld
  libgtest-dev libgmock-dev libuv1-dev rapidjson-dev libsqlite3-dev zlib1g-dev liblz4-dev liblzma-dev libzstd-dev libsystemd-dev nettle-dev libseccomp-dev
  qemu-system-x86 qemu-utils qemu-guest-agent
  busybox-static cpio lz4 zstd kmod iproute2 python3 systemd time
  acpica-tools seabios
  scdoc man-db debootstrap e2fsprogs
  syslinux syslinux-common mtools grub-pc-bin fdisk
  libxml2-dev libxml2-utils libvirt-clients
  libnl-3-dev libnl-route-3-dev libnftables-dev dnsmasq-base nftables
  iperf3
  flex bison bc libelf-dev
  openssh-client dropbear-bin
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
echo "install-deps: installing ${missing[*]}"
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
