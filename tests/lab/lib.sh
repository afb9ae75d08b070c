# shellcheck shell=bash
# The lab: real KVM for our VMM on a host that has none.
#
# The host has no usable /dev/kvm, so every KVM test boots "L1", a Linux 6.12
# guest under QEMU/TCG with an emulated AMD CPU (-cpu max has SVM), loads
# kvm_amd there and runs our binaries on L1's real KVM. See docs/LAB.md.
#
# Source this file from bash; it sets no shell options of its own. API:
#   lab_prepare                       fetch + unpack kernels, build L1 initramfs
#   lab_run_l1 [opts] -- SCRIPT [ARGS...]   run SCRIPT as root inside L1
#   lab_copy_binary BIN DESTDIR       make a host binary runnable inside L1
#   lab_guest_initramfs OUT INIT      build a busybox initramfs for L2 guests
# Helpers: lab_l1_path HOSTPATH (where a host path appears inside L1).
#
# Inside L1 (see tests/lab/l1/init):
#   /share  the --share directory, read-write (9p)
#   /cache  $VMM_CACHE, read-only (9p): kernels, the QEMU bundle
#   /lab    this run's control directory: run.sh, env, helpers.sh, the copied
#           SCRIPT, exit-code
#   /tmp    tmpfs in L1's RAM
# and the environment has LAB_IN_L1=1, LAB_HELPERS (bash helpers for L2 runs),
# LAB_GUEST_KERNEL_L1, LAB_QEMU_L1, LAB_QEMU_DATADIR_L1.

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_REPO_ROOT=$(cd "$LAB_DIR/../.." && pwd)
LAB_CACHE=${VMM_CACHE:-/var/cache/vmm}
# The modules the stock L1 kernel loads at boot (dependencies are resolved
# with modprobe --show-depends): KVM for AMD (QEMU's TCG emulates SVM, not
# VMX) and 9p over virtio for the shared folders. virtio and virtio_pci are
# built into Debian's kernel.
LAB_BOOT_MODULES=(kvm_amd 9p 9pnet_virtio)
# Modules shipped in the initramfs but only loaded on demand (modprobe), for
# scenarios that pass a device through with the stock kernel's legacy VFIO,
# and the tap (tun) and vhost-vsock backends of the virtio-net/vsock scenarios.
LAB_EXTRA_MODULES=(vfio_pci vfio_iommu_type1 nvme tun vhost_vsock)
# Host programs copied into the L1 initramfs beside busybox, with the glibc
# they need: bash so that scenarios can be bash scripts on both sides, and
# coreutils' timeout for bounding every L2 run.
LAB_L1_HOST_PROGRAMS=(/usr/bin/bash /usr/bin/timeout)
export LAB_DIR LAB_REPO_ROOT LAB_CACHE

lab_log() { printf 'lab: %s\n' "$*" >&2; }
lab_die() {
  printf 'lab: error: %s\n' "$*" >&2
  return 1
}

# Shell-quotes each argument for POSIX sh (busybox runs run.sh in L1).
lab_sh_quote() {
  local out="" a
  for a in "$@"; do
    out+="'${a//\'/\'\\\'\'}' "
  done
  printf '%s' "${out% }"
}

lab_sha12() { sha256sum "$@" | sha256sum | cut -c1-12; }

# ---------------------------------------------------------------------------
# lab_prepare
# ---------------------------------------------------------------------------

# Prints the newest ABI version (e.g. 6.12.117+deb12) for which apt knows
# both the -amd64-unsigned and the -cloud-amd64-unsigned image; empty when
# apt's lists are missing.
lab_newest_apt_abi() {
  apt-cache pkgnames linux-image-6.12. 2>/dev/null |
    sed -nE 's/^linux-image-(6\.12\.[0-9]+\+deb12)-(cloud-)?amd64-unsigned$/\1/p' |
    sort -V | uniq -d | tail -n1
}

# Prints the newest ABI for which both .debs are in the cache already.
lab_newest_cached_abi() {
  local f
  for f in "$LAB_CACHE"/debs/linux-image-6.12.*+deb12-amd64-unsigned_*.deb \
    "$LAB_CACHE"/debs/linux-image-6.12.*+deb12-cloud-amd64-unsigned_*.deb; do
    [[ -f $f ]] || continue
    basename "$f" | sed -nE 's/^linux-image-(6\.12\.[0-9]+\+deb12)-(cloud-)?amd64-unsigned_.*/\1/p'
  done | sort -V | uniq -d | tail -n1
}

# Prints the path of the cached .deb for package $1, downloading it first
# when it is not there.
lab_fetch_deb() {
  local pkg=$1 f
  mkdir -p "$LAB_CACHE/debs"
  f=$(ls -1 "$LAB_CACHE/debs/${pkg}"_*.deb 2>/dev/null | sort -V | tail -n1 || true)
  if [[ -z $f ]]; then
    lab_log "downloading $pkg into $LAB_CACHE/debs"
    (cd "$LAB_CACHE/debs" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2) || {
      lab_die "apt-get download $pkg failed"
      return 1
    }
    f=$(ls -1 "$LAB_CACHE/debs/${pkg}"_*.deb | sort -V | tail -n1)
  fi
  printf '%s\n' "$f"
}

# Unpacks a .deb into $2 unless done before (atomically, so an interrupted
# run never leaves a half tree that later runs would trust).
lab_unpack_deb() {
  local deb=$1 dest=$2
  [[ -f $dest/.complete ]] && return 0
  rm -rf "$dest.tmp"
  mkdir -p "$dest.tmp"
  lab_log "unpacking $(basename "$deb")"
  dpkg-deb -x "$deb" "$dest.tmp"
  touch "$dest.tmp/.complete"
  rm -rf "$dest"
  mv "$dest.tmp" "$dest"
}

# lab_explain_l1_reset LOG : after L1 ended without an exit code, says
# whether QEMU reset L1 because its CPU triple-faulted (QEMU's -d cpu_reset
# log names it and dumps every CPU's registers from just before the reset).
# A triple fault of L1 itself is no failure of the program under test: a
# user-space VMM in L1 cannot cause one; it is the emulated CPU (nested SVM
# under TCG) or L1's KVM that went wrong. run-all.sh keys on the line.
lab_explain_l1_reset() {
  local log=$1
  [[ -s $log ]] || return 0
  if grep -aq '^Triple fault' "$log"; then
    lab_log "L1 TRIPLE FAULT: QEMU reset L1 after its CPU triple-faulted; registers before the reset in $log:"
    # The dump that follows the triple fault: the CPU that faulted first.
    awk '/^Triple fault/ { on = 1 } on && /^(CPU Reset|RIP|CR0|EFER)/ { print "lab:   " $0; if (++n == 12) exit }' "$log" >&2
  elif grep -aq '^RAX=' "$log"; then
    # QEMU's own resets at start-up dump CPUs that never ran (32-bit
    # layout, all zero); a 64-bit dump (RAX=) is a CPU that ran L1.
    lab_log "QEMU reset L1's CPUs while L1 ran, without a triple fault (a reset L1 asked for); log: $log"
  fi
}

# Builds the L1 initramfs for kernel version $1 whose unpacked .deb is $2;
# prints its path. Cached under a key of everything that goes into it.
lab_build_l1_initramfs() {
  local kver=$1 root=$2 moddir key out stage m f
  moddir=$root/lib/modules/$kver
  [[ -f $moddir/modules.dep ]] || depmod -b "$root" "$kver"
  local -a insmods=() extras=()
  # modprobe prints the dependency chain in load order as "insmod PATH".
  mapfile -t insmods < <(modprobe -d "$root" -S "$kver" --show-depends -a "${LAB_BOOT_MODULES[@]}" |
    awk '$1 == "insmod" { print $2 }' | awk '!seen[$0]++')
  mapfile -t extras < <(modprobe -d "$root" -S "$kver" --show-depends -a "${LAB_EXTRA_MODULES[@]}" |
    awk '$1 == "insmod" { print $2 }' | awk '!seen[$0]++')
  ((${#insmods[@]})) || {
    lab_die "no modules found for ${LAB_BOOT_MODULES[*]} in $moddir"
    return 1
  }
  local -a host_files=()
  local paths
  for f in "${LAB_L1_HOST_PROGRAMS[@]}"; do
    paths=$(lab_ldd_paths "$f") || return 1
    host_files+=("$f")
    [[ -n $paths ]] && mapfile -t -O "${#host_files[@]}" host_files <<<"$paths"
  done
  key=$(
    {
      printf '%s\n' "$kver" "${insmods[@]}" "${extras[@]}"
      sha256sum "$LAB_DIR/l1/init" /bin/busybox "${host_files[@]}"
    } | sha256sum | cut -c1-12
  )
  out=$LAB_CACHE/l1/$kver-$key/initramfs.cpio.gz
  if [[ -f $out ]]; then
    printf '%s\n' "$out"
    return 0
  fi
  lab_log "building the L1 initramfs for $kver"
  stage=$(mktemp -d "${TMPDIR:-/tmp}/lab-l1-initramfs.XXXXXX")
  # Merged-/usr layout as on the host, so ldd's paths land where ld.so looks.
  mkdir -p "$stage"/{usr/bin,usr/sbin,usr/lib,usr/lib64,proc,sys,dev,tmp,run,root,share,lab,cache,etc/lab}
  ln -s usr/bin "$stage/bin"
  ln -s usr/sbin "$stage/sbin"
  ln -s usr/lib "$stage/lib"
  ln -s usr/lib64 "$stage/lib64"
  cp /bin/busybox "$stage/usr/bin/busybox"
  for f in "${host_files[@]}"; do
    mkdir -p "$stage$(dirname "$f")"
    cp -L "$f" "$stage$f"
  done
  # Busybox applets, without shadowing the real bash and timeout.
  for m in $("$stage/usr/bin/busybox" --list); do
    [[ -e $stage/usr/bin/$m ]] || ln -s busybox "$stage/usr/bin/$m"
  done
  mknod -m 600 "$stage/dev/console" c 5 1
  install -m 755 "$LAB_DIR/l1/init" "$stage/init"
  # Modules, decompressed: busybox insmod does not read .ko.xz.
  : >"$stage/etc/lab/modules.load"
  for m in "${insmods[@]}" "${extras[@]}"; do
    f=${m#"$root"/lib/modules/"$kver"/}
    mkdir -p "$stage/lib/modules/$kver/$(dirname "$f")"
    case $m in
      *.xz) xz -dc "$m" >"$stage/lib/modules/$kver/${f%.xz}" ;;
      *.zst) zstd -qdc "$m" >"$stage/lib/modules/$kver/${f%.zst}" ;;
      *) cp "$m" "$stage/lib/modules/$kver/$f" ;;
    esac
  done
  for m in "${insmods[@]}"; do
    f=${m#"$root"/lib/modules/"$kver"/}
    f=${f%.xz}
    printf '%s\n' "${f%.zst}" >>"$stage/etc/lab/modules.load"
  done
  cp "$moddir"/modules.{order,builtin,builtin.modinfo} "$stage/lib/modules/$kver/" 2>/dev/null || true
  # modules.dep for on-demand `modprobe vfio_pci` inside L1.
  depmod -b "$stage" "$kver"
  mkdir -p "$(dirname "$out")"
  (cd "$stage" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) |
    gzip -6 >"$out.tmp"
  mv "$out.tmp" "$out"
  rm -rf "$stage"
  printf '%s\n' "$out"
}

# QEMU itself, made runnable inside L1 (L2 VMM for the benchmark and for
# checking the lab without our vmm). Cached per QEMU binary.
lab_build_qemu_bundle() {
  local qemu key dest tmp
  qemu=$(command -v qemu-system-x86_64) || {
    lab_die "qemu-system-x86_64 not installed (run scripts/setup.sh)"
    return 1
  }
  key=$(lab_sha12 "$qemu")
  dest=$LAB_CACHE/qemu/$key
  if [[ ! -f $dest/.complete ]]; then
    lab_log "bundling $qemu for L1"
    tmp=$dest.tmp
    rm -rf "$tmp"
    lab_copy_binary "$qemu" "$tmp" >/dev/null
    mkdir -p "$tmp/share"
    cp -rL /usr/share/qemu "$tmp/share/qemu"
    cp -rL /usr/share/seabios "$tmp/share/seabios"
    touch "$tmp/.complete"
    rm -rf "$dest"
    mv "$tmp" "$dest"
  fi
  printf '%s\n' "$dest"
}

lab_prepare_locked() {
  local abi
  abi=$(lab_newest_apt_abi)
  if [[ -z $abi ]]; then
    abi=$(lab_newest_cached_abi)
    if [[ -z $abi ]]; then
      lab_log "apt knows no linux-image-6.12 package; running apt-get update"
      apt-get update -qq >&2
      abi=$(lab_newest_apt_abi)
    fi
  fi
  [[ -n $abi ]] || {
    lab_die "no linux-image-6.12.*+deb12-{,cloud-}amd64-unsigned in apt or in $LAB_CACHE/debs"
    return 1
  }
  local deb_l1 deb_guest pkgver cached
  if ! deb_l1=$(lab_fetch_deb "linux-image-$abi-amd64-unsigned") ||
    ! deb_guest=$(lab_fetch_deb "linux-image-$abi-cloud-amd64-unsigned"); then
    # Offline, or the mirror moved on: an older cached pair still works.
    cached=$(lab_newest_cached_abi)
    [[ -n $cached ]] || return 1
    lab_log "warning: could not fetch the $abi kernels; using the cached $cached"
    abi=$cached
    deb_l1=$(lab_fetch_deb "linux-image-$abi-amd64-unsigned") || return 1
    deb_guest=$(lab_fetch_deb "linux-image-$abi-cloud-amd64-unsigned") || return 1
  fi
  pkgver=$(dpkg-deb -f "$deb_l1" Version)
  local kdir=$LAB_CACHE/kernels/$pkgver
  lab_unpack_deb "$deb_l1" "$kdir/amd64"
  lab_unpack_deb "$deb_guest" "$kdir/cloud-amd64"

  LAB_KERNEL_PKGVER=$pkgver
  LAB_L1_KVER=$abi-amd64
  LAB_L1_KERNEL=$kdir/amd64/boot/vmlinuz-$LAB_L1_KVER
  LAB_GUEST_KVER=$abi-cloud-amd64
  LAB_GUEST_KERNEL=$kdir/cloud-amd64/boot/vmlinuz-$LAB_GUEST_KVER
  [[ -f $LAB_L1_KERNEL && -f $LAB_GUEST_KERNEL ]] || {
    lab_die "kernel images missing after unpacking into $kdir"
    return 1
  }
  LAB_L1_INITRAMFS=$(lab_build_l1_initramfs "$LAB_L1_KVER" "$kdir/amd64") || return 1
  LAB_QEMU_BUNDLE=$(lab_build_qemu_bundle) || return 1
}

# Idempotent: the first call in a process tree does the work (seconds when
# cached); it exports what it found so scenarios started by run-all.sh skip it.
lab_prepare() {
  if [[ ${LAB_PREPARED:-} == "$LAB_CACHE" && -f ${LAB_L1_INITRAMFS:-/nonexistent} ]]; then
    return 0
  fi
  mkdir -p "$LAB_CACHE"
  # One preparer at a time: engineers and CI may start scenarios together.
  local lockfd
  exec {lockfd}>"$LAB_CACHE/.lock"
  flock "$lockfd"
  local rc=0
  lab_prepare_locked || rc=$?
  exec {lockfd}>&-
  ((rc == 0)) || return "$rc"
  LAB_GUEST_KERNEL_L1=$(lab_l1_path "$LAB_GUEST_KERNEL")
  LAB_QEMU_L1=$(lab_l1_path "$LAB_QEMU_BUNDLE")/bin/qemu-system-x86_64
  LAB_QEMU_DATADIR_L1=$(lab_l1_path "$LAB_QEMU_BUNDLE")/share
  LAB_PREPARED=$LAB_CACHE
  export LAB_KERNEL_PKGVER LAB_L1_KVER LAB_L1_KERNEL LAB_L1_INITRAMFS LAB_GUEST_KVER \
    LAB_GUEST_KERNEL LAB_GUEST_KERNEL_L1 LAB_QEMU_BUNDLE LAB_QEMU_L1 LAB_QEMU_DATADIR_L1 LAB_PREPARED
  cat >&2 <<EOF
lab: cache            $LAB_CACHE
lab: kernel package   $LAB_KERNEL_PKGVER
lab: L1 kernel        $LAB_L1_KERNEL
lab: L1 initramfs     $LAB_L1_INITRAMFS
lab: guest kernel     $LAB_GUEST_KERNEL (in L1: $LAB_GUEST_KERNEL_L1)
lab: QEMU for L1      $LAB_QEMU_BUNDLE (in L1: $LAB_QEMU_L1)
EOF
}

# Prints where host path $1 appears inside L1: under /cache when it is in
# $VMM_CACHE, else under /share relative to $2 (default: the repo root, the
# default --share).
lab_l1_path() {
  local p share
  p=$(realpath -m "$1")
  share=$(realpath -m "${2:-$LAB_REPO_ROOT}")
  local cache
  cache=$(realpath -m "$LAB_CACHE")
  if [[ $p == "$cache" || $p == "$cache"/* ]]; then
    printf '/cache%s\n' "${p#"$cache"}"
  elif [[ $p == "$share" || $p == "$share"/* ]]; then
    printf '/share%s\n' "${p#"$share"}"
  else
    lab_die "$1 is neither under $LAB_CACHE nor under the share $share"
    return 1
  fi
}

# ---------------------------------------------------------------------------
# lab_copy_binary BIN DESTDIR
# ---------------------------------------------------------------------------

# Prints the absolute paths of the shared libraries (and the ELF interpreter)
# that ldd lists for $1; nothing for a static binary.
lab_ldd_paths() {
  local out
  out=$(LC_ALL=C ldd "$1" 2>&1) || {
    grep -q 'not a dynamic executable' <<<"$out" && return 0
    lab_die "ldd $1: $out"
    return 1
  }
  if grep -q 'not found' <<<"$out"; then
    lab_die "ldd $1: missing libraries: $(grep 'not found' <<<"$out" | tr -s ' \t' ' ')"
    return 1
  fi
  awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$out"
}

# Copies BIN and the libraries it needs into DESTDIR, keeping the libraries'
# paths (DESTDIR/lib/x86_64-linux-gnu/libc.so.6, ...). The real binary goes to
# DESTDIR/libexec/NAME and DESTDIR/bin/NAME is a small sh wrapper that starts
# it through the copied ld.so with the copied libraries, so it runs inside L1
# (busybox, no glibc of its own) wherever DESTDIR is mounted, and runs on the
# host too. The wrapper execs, so the process id is the binary's.
# Prints the wrapper's path.
lab_copy_binary() {
  local bin=$1 dest=$2 name real lib interp="" libpath=""
  [[ -f $bin ]] || {
    lab_die "lab_copy_binary: $bin does not exist"
    return 1
  }
  real=$(readlink -f "$bin")
  name=$(basename "$bin")
  mkdir -p "$dest/bin" "$dest/libexec"
  dest=$(cd "$dest" && pwd)
  local paths
  paths=$(lab_ldd_paths "$real") || return 1
  local -a libs=()
  [[ -n $paths ]] && mapfile -t libs <<<"$paths"
  cp -f "$real" "$dest/libexec/$name"
  if ((${#libs[@]} == 0)); then # static: nothing to wrap
    cp -f "$real" "$dest/bin/$name"
    printf '%s\n' "$dest/bin/$name"
    return 0
  fi
  local -A dirs=()
  for lib in "${libs[@]}"; do
    mkdir -p "$dest$(dirname "$lib")"
    cp -fL "$lib" "$dest$lib"
    case $(basename "$lib") in
      ld-linux*.so*) interp=$lib ;;
      *) dirs[$(dirname "$lib")]=1 ;;
    esac
  done
  [[ -n $interp ]] || {
    lab_die "lab_copy_binary: ldd named no ELF interpreter for $bin"
    return 1
  }
  for lib in "${!dirs[@]}"; do
    libpath+="\$root$lib:"
  done
  cat >"$dest/bin/$name" <<EOF
#!/bin/sh
# Generated by lab_copy_binary (tests/lab/lib.sh) from $real:
# runs it with the ld.so and libraries copied beside it.
root=\$(cd "\$(dirname "\$0")/.." && pwd)
exec "\$root$interp" --argv0 "\$0" --library-path "${libpath%:}" "\$root/libexec/$name" "\$@"
EOF
  chmod 755 "$dest/bin/$name"
  printf '%s\n' "$dest/bin/$name"
}

# ---------------------------------------------------------------------------
# lab_guest_initramfs OUT INIT_SCRIPT
# ---------------------------------------------------------------------------

# A busybox-static initramfs for L2 guests. /init mounts /proc, /sys and
# /dev, then execs INIT_SCRIPT (installed as /lab-init, run by its #! line;
# busybox's sh is /bin/sh).
lab_guest_initramfs() {
  local out=$1 script=$2 stage m
  [[ -f $script ]] || {
    lab_die "lab_guest_initramfs: $script does not exist"
    return 1
  }
  stage=$(mktemp -d "${TMPDIR:-/tmp}/lab-guest-initramfs.XXXXXX")
  mkdir -p "$stage"/{bin,sbin,proc,sys,dev,tmp,run,root,etc}
  cp /bin/busybox "$stage/bin/busybox"
  for m in $(/bin/busybox --list); do
    [[ -e $stage/bin/$m ]] || ln -s busybox "$stage/bin/$m"
  done
  # The kernel opens /dev/console for init before anything is mounted.
  mknod -m 600 "$stage/dev/console" c 5 1
  cat >"$stage/init" <<'EOF'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
exec /lab-init "$@"
EOF
  chmod 755 "$stage/init"
  install -m 755 "$script" "$stage/lab-init"
  mkdir -p "$(dirname "$out")"
  (cd "$stage" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) |
    gzip -6 >"$out.tmp"
  mv "$out.tmp" "$out"
  rm -rf "$stage"
}

# lab_scenario_build_dir [DIR] : the build directory a scenario tests, as an
# absolute path: DIR, else $LAB_BUILD_DIR (set by run-all.sh), else build/.
lab_scenario_build_dir() {
  realpath -m "${1:-${LAB_BUILD_DIR:-$LAB_REPO_ROOT/build}}"
}

# lab_require_built BUILD_DIR REL_PATH : fails with one line when the build
# lacks the program a scenario runs, naming the ninja target to build.
lab_require_built() {
  [[ -x $1/$2 ]] && return 0
  echo "FAIL: $1/$2 is not built (ninja -C $1 $(basename "$2"))" >&2
  return 1
}

# lab_guest_modules DIR MODULE... : copies the stock guest kernel's MODULEs and
# everything they depend on, decompressed, into DIR/modules, and lists them in
# load order in DIR/modules/load-order (for a guest init: `while read m; do
# insmod /modules/$m; done </modules/load-order`).
lab_guest_modules() {
  local dir=$1 root m name
  shift
  root=$(dirname "$LAB_GUEST_KERNEL")/..
  [[ -f $root/lib/modules/$LAB_GUEST_KVER/modules.dep ]] || depmod -b "$root" "$LAB_GUEST_KVER"
  mkdir -p "$dir/modules"
  : >"$dir/modules/load-order"
  while read -r m; do
    name=$(basename "$m")
    case $name in
      *.xz) xz -dc "$m" >"$dir/modules/${name%.xz}" ;;
      *.zst) zstd -qdc "$m" >"$dir/modules/${name%.zst}" ;;
      *) cp "$m" "$dir/modules/$name" ;;
    esac
    name=${name%.xz}
    printf '%s\n' "${name%.zst}" >>"$dir/modules/load-order"
  done < <(modprobe -d "$root" -S "$LAB_GUEST_KVER" --show-depends -a "$@" |
    awk '$1 == "insmod" { print $2 }' | awk '!seen[$0]++')
}

# lab_guest_append ARCHIVE DIR : appends DIR's tree to the guest initramfs
# ARCHIVE (from lab_guest_initramfs) as a second cpio; the kernel unpacks both.
lab_guest_append() {
  (cd "$2" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) |
    gzip -6 >>"$1"
}

# ---------------------------------------------------------------------------
# lab_run_l1 [options] -- SCRIPT [ARGS...]
# ---------------------------------------------------------------------------

lab_run_l1_usage() {
  cat >&2 <<'EOF'
usage: lab_run_l1 [--kernel stock|PATH] [--memory SIZE] [--smp N] [--iommu]
                  [--nvme-image IMG] [--append STR] [--share DIR] [--timeout SEC]
                  -- SCRIPT [ARGS...]
EOF
}

lab_run_l1() {
  local kernel=stock memory=6G smp=2 iommu=0 append="" share=$LAB_REPO_ROOT timeout=600
  local nvme_image=""
  while (($#)); do
    case $1 in
      --kernel) kernel=$2; shift 2 ;;
      --memory) memory=$2; shift 2 ;;
      --smp) smp=$2; shift 2 ;;
      --iommu) iommu=1; shift ;;
      --nvme-image) nvme_image=$2; shift 2 ;;
      --append) append=$2; shift 2 ;;
      --share) share=$2; shift 2 ;;
      --timeout) timeout=$2; shift 2 ;;
      --) shift; break ;;
      *)
        lab_run_l1_usage
        lab_die "lab_run_l1: unknown option $1"
        return 2
        ;;
    esac
  done
  (($# >= 1)) || {
    lab_run_l1_usage
    return 2
  }
  if [[ -n $nvme_image ]]; then
    ((iommu)) || {
      lab_die "lab_run_l1: --nvme-image needs --iommu (the NVMe is part of that profile)"
      return 2
    }
    [[ -f $nvme_image ]] || {
      lab_die "lab_run_l1: NVMe image $nvme_image does not exist"
      return 2
    }
  fi
  local script=$1
  shift
  [[ -f $script ]] || {
    lab_die "lab_run_l1: script $script does not exist"
    return 2
  }
  [[ -d $share ]] || {
    lab_die "lab_run_l1: share $share is not a directory"
    return 2
  }
  lab_prepare || return 1
  share=$(cd "$share" && pwd)

  local kimage=$LAB_L1_KERNEL
  if [[ $kernel != stock ]]; then
    [[ -f $kernel ]] || {
      lab_die "lab_run_l1: kernel $kernel does not exist"
      return 2
    }
    kimage=$kernel
  fi

  # The control directory: what L1's init runs, and where it reports back.
  local ctl
  ctl=$(mktemp -d "${TMPDIR:-/tmp}/lab-run.XXXXXX")
  cp "$LAB_DIR/l1/helpers.sh" "$ctl/helpers.sh"
  local l1_script
  if l1_script=$(lab_l1_path "$script" "$share" 2>/dev/null) && [[ $l1_script == /share/* ]]; then
    :
  else
    # Not visible through the share: copy it in.
    mkdir -p "$ctl/script"
    cp "$script" "$ctl/script/"
    chmod +x "$ctl/script/$(basename "$script")"
    l1_script=/lab/script/$(basename "$script")
  fi
  local runner=""
  [[ -x $script || $l1_script == /lab/* ]] || runner="bash "
  cat >"$ctl/env" <<EOF
export LAB_IN_L1=1
export LAB_HELPERS=/lab/helpers.sh
export LAB_GUEST_KERNEL_L1=$(lab_sh_quote "$LAB_GUEST_KERNEL_L1")
export LAB_QEMU_L1=$(lab_sh_quote "$LAB_QEMU_L1")
export LAB_QEMU_DATADIR_L1=$(lab_sh_quote "$LAB_QEMU_DATADIR_L1")
export LAB_SHARE_HOST=$(lab_sh_quote "$share")
export LAB_CACHE_HOST=$(lab_sh_quote "$(realpath -m "$LAB_CACHE")")
export LAB_INTERACTIVE=$(lab_sh_quote "${LAB_INTERACTIVE:-0}")
EOF
  printf 'cd /share\n%s%s\n' "$runner" "$(lab_sh_quote "$l1_script" "$@")" >"$ctl/run.sh"

  local -a machine=(-machine q35 -cpu max -accel tcg)
  # no_timer_check: under TCG on a loaded host the IO-APIC timer check at
  # boot can miss its window and panic ("timer doesn't work through
  # Interrupt-remapped IO-APIC", seen in about one --iommu boot in five).
  local cmdline="console=ttyS0 panic=-1 no_timer_check ${LAB_L1_QUIET-quiet}"
  local -a extra=()
  if ((iommu)); then
    machine=(-machine q35,kernel-irqchip=split -cpu max -accel tcg)
    # The NVMe's namespace: the caller's image (a scenario that checks what
    # a guest read and wrote), else a sparse 64 MiB scratch image.
    local nvme_img=$nvme_image
    if [[ -z $nvme_img ]]; then
      nvme_img=$ctl/nvme.img
      truncate -s 64M "$nvme_img"
    fi
    # The NVMe sits at a fixed address, 0000:00:10.0, for VFIO scenarios.
    extra+=(-device intel-iommu,intremap=on,caching-mode=on
      -drive "file=$nvme_img,if=none,id=labnvme,format=raw"
      -device nvme,serial=labnvme,drive=labnvme,addr=10.0)
    cmdline+=" intel_iommu=on"
  fi
  [[ -n $append ]] && cmdline+=" $append"

  local -a qemu=(qemu-system-x86_64 "${machine[@]}" -m "$memory" -smp "$smp"
    -nodefaults -no-user-config -display none -no-reboot
    -d cpu_reset -D "$ctl/qemu-cpu-reset.log"
    -chardev "stdio,id=con,logfile=$ctl/console.log"
    -serial chardev:con
    -kernel "$kimage" -initrd "$LAB_L1_INITRAMFS" -append "$cmdline"
    "${extra[@]}"
    -virtfs "local,path=$share,mount_tag=labshare,security_model=none,id=labshare"
    -virtfs "local,path=$ctl,mount_tag=labctl,security_model=none,id=labctl"
    -virtfs "local,path=$LAB_CACHE,mount_tag=labcache,security_model=none,readonly=on,id=labcache")

  lab_log "booting L1 ($([[ $kernel == stock ]] && echo "stock $LAB_L1_KVER" || echo "$kernel"), ${memory}, ${smp} vCPUs$( ((iommu)) && echo ", intel-iommu + nvme")) to run $l1_script (timeout ${timeout}s)"
  local t0 rc=0 qrc=0 keep=${LAB_KEEP:-0}
  t0=$(date +%s%N)
  # stdin from /dev/null: QEMU then never puts a terminal into raw mode nor
  # stops on SIGTTIN under timeout's own process group. LAB_INTERACTIVE=1
  # keeps the terminal for debugging (type into L1's console).
  if [[ ${LAB_INTERACTIVE:-} == 1 ]]; then
    timeout --foreground --kill-after=10 "$timeout" "${qemu[@]}" || qrc=$?
  else
    timeout --kill-after=10 "$timeout" "${qemu[@]}" </dev/null || qrc=$?
  fi
  # The console's last line may lack its newline ("reboot: Power down").
  [[ -s $ctl/console.log && -n $(tail -c1 "$ctl/console.log") ]] && echo
  local secs=$((($(date +%s%N) - t0) / 1000000))
  secs=$((secs / 1000)).$(printf '%03d' $((secs % 1000)))

  if ((qrc == 124 || qrc == 137)); then
    lab_log "TIMEOUT: L1 did not finish within ${timeout}s; QEMU was killed (log: $ctl/console.log)"
    keep=1
    rc=124
  elif [[ -f $ctl/exit-code ]]; then
    rc=$(<"$ctl/exit-code")
  elif grep -aq 'LAB-EXIT=' "$ctl/console.log" 2>/dev/null; then
    rc=$(grep -ao 'LAB-EXIT=[0-9]*' "$ctl/console.log" | tail -n1 | cut -d= -f2)
  else
    lab_log "L1 ended (QEMU exit $qrc) without reporting the script's exit code: kernel panic or init failure? (log: $ctl/console.log)"
    lab_explain_l1_reset "$ctl/qemu-cpu-reset.log"
    keep=1
    rc=125
  fi
  [[ $rc =~ ^[0-9]+$ ]] || rc=125
  lab_log "L1 run finished in ${secs}s, script exit code $rc"
  if [[ $keep == 1 ]]; then
    lab_log "kept the control directory $ctl"
  else
    rm -rf "$ctl"
  fi
  return "$rc"
}
