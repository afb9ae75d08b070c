#!/usr/bin/env bash
# Builds the lab (L1) kernel from Debian's linux-source-6.12 with the series in
# kernel-patches/series applied and configs/lab-kernel.config merged onto
# x86_64_defconfig, plus the kernel's own iommufd selftests and the exported
# uAPI headers, and caches them outside the checkout:
#
#   $VMM_CACHE/lab-kernel/<key>/bzImage            the L1 kernel
#   $VMM_CACHE/lab-kernel/<key>/iommufd-selftest   tools/testing/selftests/iommu/iommufd, static
#   $VMM_CACHE/lab-kernel/<key>/iommufd-fail-nth   .../iommu/iommufd_fail_nth (fault injection), static
#   $VMM_CACHE/lab-kernel/<key>/usr/include        `make headers` output (the exact 6.12.y uAPI)
#   $VMM_CACHE/lab-kernel/<key>/config             the resolved .config
#   $VMM_CACHE/lab-kernel/<key>/build-info         versions, key inputs, build times
#
# key = sha256 of (source .deb version, the fragment, the series and every patch
# in it, the selftest adaptation patch, this script). Same inputs: returns at once.
#
# The source is the newest linux-source-6.12 .deb in $VMM_CACHE/debs; only when
# there is none does `apt-get download` fetch one, which is the newest 6.12.y the
# mirror has (Debian drops superseded versions, so a fresh cache gets whatever is
# current: 6.12.117 in 2026-11, 6.12.118 since). Its version is part of the key,
# so a new source is a new build; an older .deb left in the cache keeps being used
# until it is deleted.
#
# Usage: build-lab-kernel.sh [--key | --dir | --config-only DIR]
#   (no option)   build if needed, print the bzImage path on stdout
#   --key         print the cache key and exit
#   --dir         build if needed, print the cache directory
#   --config-only DIR  extract + patch + configure + verify in DIR, no build
# Environment: VMM_CACHE (default /var/cache/vmm), JOBS (default nproc),
#              KEEP_BUILD_TREE=1 keeps the object tree (several GB) after success.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cache=${VMM_CACHE:-/var/cache/vmm}
debs=$cache/debs
jobs=${JOBS:-$(nproc)}
fragment=$root/configs/lab-kernel.config
series=$here/series
selftest_patch=$here/selftests/iommufd-6.12-uapi.patch
source_pkg=linux-source-6.12

log() { printf 'build-lab-kernel: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

mode=build
config_only_dir=
case "${1:-}" in
  "") ;;
  --key) mode=key ;;
  --dir) mode=dir ;;
  --config-only) mode=config; config_only_dir=${2:?--config-only needs a directory} ;;
  *) die "unknown option '$1' (see the header of $0)" ;;
esac

# --- inputs -------------------------------------------------------------------
find_deb() {
  local f
  for f in "$debs"/"${source_pkg}"_*_all.deb; do [[ -f $f ]] && printf '%s\n' "$f"; done | sort -V | tail -n1
}
deb=$(find_deb || true)
if [[ -z "$deb" ]]; then
  log "no ${source_pkg} .deb in $debs, downloading it with apt-get"
  mkdir -p "$debs"
  (cd "$debs" && apt-get download "$source_pkg") || die "apt-get download $source_pkg failed"
  deb=$(find_deb)
  [[ -n "$deb" ]] || die "apt-get download $source_pkg left no .deb in $debs"
fi
deb_version=$(dpkg-deb -f "$deb" Version)
[[ -f "$fragment" ]] || die "missing config fragment $fragment"
[[ -f "$selftest_patch" ]] || die "missing selftest adaptation $selftest_patch"

# Patch names from the series file: one per line, '#' starts a comment.
patches=()
if [[ -f "$series" ]]; then
  while IFS= read -r line; do
    line=${line%%#*}
    line=$(echo "$line" | xargs)
    [[ -z "$line" ]] && continue
    [[ -f "$here/$line" ]] || die "series names '$line' but $here/$line does not exist"
    patches+=("$here/$line")
  done <"$series"
fi

compute_key() {
  {
    echo "source: $source_pkg $deb_version"
    echo "fragment:"; cat "$fragment"
    echo "series:"; [[ -f "$series" ]] && cat "$series"
    for p in "${patches[@]}"; do echo "patch $(basename "$p"):"; cat "$p"; done
    echo "selftest patch:"; cat "$selftest_patch"
    echo "script:"; cat "${BASH_SOURCE[0]}"
  } | sha256sum | cut -c1-16
}
key=$(compute_key)
if [[ $mode == key ]]; then echo "$key"; exit 0; fi

out=$cache/lab-kernel/$key
print_result() {
  if [[ $mode == dir ]]; then echo "$out"; else echo "$out/bzImage"; fi
}
complete() {
  [[ -f $out/bzImage && -x $out/iommufd-selftest && -x $out/iommufd-fail-nth && -d $out/usr/include &&
    -f $out/build-info ]]
}

if [[ $mode != config ]] && complete; then print_result; exit 0; fi

# --- steps --------------------------------------------------------------------
# Applies one patch to the tree in the current directory, refusing fuzz so a
# series that no longer fits the source fails here rather than building
# something else.
apply_patch() {
  local p=$1
  log "applying $(basename "$p")"
  patch -p1 --forward --batch --fuzz=0 --quiet <"$p" || die "patch $(basename "$p") does not apply to $deb_version"
}

extract_source() {
  local dir=${1:?extract_source needs a directory} tree
  log "extracting $(basename "$deb") into $dir"
  rm -rf "$dir" && mkdir -p "$dir"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir" --wildcards './usr/src/linux-source-*.tar.xz'
  tar -xf "$dir"/usr/src/linux-source-*.tar.xz -C "$dir"
  rm -rf "${dir:?}/usr"
  src=
  for tree in "$dir"/linux-source-*; do [[ -f $tree/Makefile ]] && src=$tree && break; done
  [[ -n $src ]] || die "no kernel tree in $(basename "$deb")"
}

# Every fragment line must have survived olddefconfig: `CONFIG_X=v` verbatim,
# `# CONFIG_X is not set` as anything but y/m. A silently dropped option (unmet
# dependency, renamed symbol) fails the build here.
verify_config() {
  local cfg=$1 bad=0 line sym
  while IFS= read -r line; do
    if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
      if ! grep -qxF -- "$line" "$cfg"; then
        log "config: wanted '$line', got '$(grep -E "^(# )?${BASH_REMATCH[1]}[= ]" "$cfg" || echo "absent")'"
        bad=1
      fi
    elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
      sym=${BASH_REMATCH[1]}
      if grep -qE "^${sym}=(y|m)$" "$cfg"; then
        log "config: wanted '$sym' off, got '$(grep -E "^${sym}=" "$cfg")'"
        bad=1
      fi
    fi
  done <"$fragment"
  ((bad == 0)) || die "the resolved .config does not match $fragment (see above)"
  log "config: all $(grep -cE '^(CONFIG_|# CONFIG_.* is not set)' "$fragment") fragment options verified"
}

configure() {
  (cd "$src" && {
    for p in "${patches[@]}"; do apply_patch "$p"; done
    make -s x86_64_defconfig
    scripts/kconfig/merge_config.sh -m -O . .config "$fragment" >/dev/null
    make -s olddefconfig
  })
  verify_config "$src/.config"
}

build_selftest() {
  log "building the iommufd selftests (static)"
  (cd "$src" && apply_patch "$selftest_patch")
  local d=$src/tools/testing/selftests/iommu prog
  # Same flags as the selftest Makefile, plus -static so they run in L1's
  # busybox initramfs without libraries.
  for prog in iommufd iommufd_fail_nth; do
    (cd "$d" && gcc -static -Wall -O2 -Wno-unused-function -D_GNU_SOURCE \
      -I"$src/usr/include" -I"$src/tools/include" -o "$prog" "$prog.c" -lpthread) ||
      die "the selftest $prog does not compile against this tree"
  done
}

if [[ $mode == config ]]; then
  extract_source "$config_only_dir"
  configure
  echo "$src/.config"
  exit 0
fi

# --- build under a lock (two scenarios may ask at once) -------------------------
mkdir -p "$cache/lab-kernel"
exec 9>"$cache/lab-kernel/.lock-$key"
flock 9
if complete; then print_result; exit 0; fi

work=$cache/lab-kernel/build-$key
t0=$(date +%s)
extract_source "$work"
configure
t1=$(date +%s)
log "building bzImage with -j$jobs (about 17 min on 2 cores)"
# bash's `time` reports wall, user and system seconds of make and its children.
TIMEFORMAT='%R %U %S'
cpu=$({ time (cd "$src" && make -j"$jobs" bzImage >"$work/make.log" 2>&1) ; } 2>&1) || {
  tail -n 40 "$work/make.log" >&2
  die "kernel build failed, full log in $work/make.log"
}
read -r _ cpu_user cpu_sys <<<"$cpu"
t2=$(date +%s)
(cd "$src" && make -s headers >>"$work/make.log" 2>&1) || die "make headers failed (see $work/make.log)"
build_selftest
t3=$(date +%s)

stage=$out.tmp.$$
rm -rf "$stage" && mkdir -p "$stage/usr"
cp "$src/arch/x86/boot/bzImage" "$stage/bzImage"
cp "$src/tools/testing/selftests/iommu/iommufd" "$stage/iommufd-selftest"
cp "$src/tools/testing/selftests/iommu/iommufd_fail_nth" "$stage/iommufd-fail-nth"
cp -r "$src/usr/include" "$stage/usr/include"
find "$stage/usr/include" -name '.*' -delete
cp "$src/.config" "$stage/config"
{
  echo "key: $key"
  echo "source: $source_pkg $deb_version ($(basename "$deb"))"
  echo "kernelrelease: $(cd "$src" && make -s kernelrelease)"
  echo "patches: ${#patches[@]}${patches:+ ($(for p in "${patches[@]}"; do basename "$p"; done | xargs))}"
  echo "selftest patch: $(basename "$selftest_patch")"
  echo "jobs: $jobs on $(nproc) cpus"
  echo "configure: $((t1 - t0)) s"
  echo "bzImage: $((t2 - t1)) s (cpu: user ${cpu_user%.*} s, sys ${cpu_sys%.*} s; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))"
  echo "headers+selftest: $((t3 - t2)) s"
  echo "total: $((t3 - t0)) s"
  echo "built: $(date -u +%FT%TZ) on $(hostname)"
} >"$stage/build-info"
rm -rf "$out" && mv "$stage" "$out"
echo "$(date -u +%FT%TZ) key=$key source=$deb_version jobs=$jobs bzImage=$((t2 - t1))s cpu_user=${cpu_user%.*}s cpu_sys=${cpu_sys%.*}s total=$((t3 - t0))s" \
  >>"$cache/lab-kernel/build-times.log"
log "done in $(((t3 - t0) / 60)) min $(((t3 - t0) % 60)) s: $out"
[[ ${KEEP_BUILD_TREE:-0} == 1 ]] || rm -rf "$work"
print_result
