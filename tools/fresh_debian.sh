#!/usr/bin/env bash
# Runs the README's two commands as a new user would: in a freshly debootstrapped Debian 12 root
# (minbase with git, ca-certificates and sudo only), on a clone of this repository's HEAD.
#   1. bash tools/test.sh              (both builds, the whole suite; --test-builds full: the
#                                       first only, as CI does after the same suite on its host)
#   2. bash tools/run.sh RUN_ARGS...   (the main job: 10 epochs of simple_cnn on Fashion-MNIST,
#                                       about 70 s on 2 cores; e.g. `-- --set epochs=1` for less)
# and fails when either fails, or when --min-accuracy PERCENT is given and the run's best test
# accuracy is below it; then `osprey data typefaces` renders the fonts those commands installed,
# which must be at least --min-fonts N (issue 18: 100). Only this machine's apt sources, local CA certificates (/usr/local/share/
# ca-certificates, for a registry proxy) and resolver are copied in. A fresh Debian 12 has no
# CUDA, so neither has the root (the build is CPU + MPI) unless --cuda mounts this machine's
# toolkit read-only. Needs root; installs debootstrap when missing.
# Uncommitted changes are not in the clone: commit first.
#
# usage: tools/fresh_debian.sh [--dir DIR] [--keep] [--cuda] [--min-accuracy 91]
#                              [--test-builds full] [--min-fonts 100] [-- RUN_ARGS...]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=/var/tmp/osprey-fresh-debian
keep=0
with_cuda=0
min_accuracy=
min_fonts=0
test_builds="full cpu-only"
run_args=()
while [ $# -gt 0 ]; do
  case $1 in
    --dir) dir=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --cuda) with_cuda=1; shift ;;
    --min-accuracy) min_accuracy=$2; shift 2 ;;
    --min-fonts) min_fonts=$2; shift 2 ;;
    --test-builds) test_builds=$2; shift 2 ;;
    --) shift; run_args=("$@"); break ;;
    *) echo "usage: tools/fresh_debian.sh [--dir DIR] [--keep] [--cuda] [--min-accuracy A]" \
         "[--test-builds full|cpu-only] [--min-fonts N] [-- RUN_ARGS...]" >&2
       exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "fresh_debian: needs root (debootstrap, chroot, mounts)" >&2; exit 1; }
if ! command -v debootstrap >/dev/null; then
  echo "fresh_debian: installing debootstrap"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
case $dir in /|/usr|/var|/tmp|"") echo "fresh_debian: refusing --dir '$dir'" >&2; exit 2 ;; esac

# The mirror this machine's apt uses for bookworm (deb822 .sources or one-line .list format).
mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
  awk '/^URIs:/{u=$2} /^Suites:.*bookworm( |$)/{print u; exit}')
[ -n "$mirror" ] || mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
  awk '$1=="deb" && $3=="bookworm"{print $2; exit}')
mirror=${mirror:-http://deb.debian.org/debian}

log() { echo "== fresh_debian: $*"; }
rm -rf "$dir"
mkdir -p "$dir"
root=$dir/root
log "debootstrap bookworm from $mirror into $root"
start=$(date +%s)
debootstrap --variant=minbase --include=git,ca-certificates,sudo bookworm "$root" "$mirror" \
  > "$dir/debootstrap.log" 2>&1 || { tail -n 20 "$dir/debootstrap.log"; exit 1; }
log "root ready in $(( $(date +%s) - start )) s"

# This machine's apt sources replace debootstrap's one-line list; local CAs join the store.
rm -f "$root/etc/apt/sources.list"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] && cp "$f" "$root$f"
done
cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
cp /etc/resolv.conf "$root/etc/resolv.conf"
git clone --quiet --no-hardlinks "$repo" "$root/root/osprey"
log "cloned $(git -C "$repo" rev-parse --short HEAD) into /root/osprey"

# Inside: the README's commands, with a plain environment (a proxy, if any, is the machine's,
# not the project's: kept; nothing else of this machine's environment goes in).
inner=$(cat <<'EOS'
set -euo pipefail
update-ca-certificates >/dev/null
cd /root/osprey
echo "== fresh_debian: bash tools/test.sh"
bash tools/test.sh
echo "== fresh_debian: bash tools/run.sh $*"
bash tools/run.sh "$@" | tee /root/run.log
echo "== fresh_debian: osprey data typefaces"
build/osprey data typefaces --out /root/typefaces | tee /root/typefaces.log
EOS
)
passthrough=()
while IFS= read -r var; do passthrough+=("$var=${!var}"); done < <(compgen -e |
  grep -E '^(https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY)$' || true)

# Mounts live in a private namespace: they vanish with it, whatever way this script ends.
cuda_mount=
if [ $with_cuda = 1 ] && [ -d /usr/local/cuda ]; then
  cuda_real=$(readlink -f /usr/local/cuda)
  cuda_mount="mkdir -p '$root$cuda_real' && mount --bind '$cuda_real' '$root$cuda_real' &&
    mount -o remount,bind,ro '$root$cuda_real'"
  [ "$cuda_real" = /usr/local/cuda ] || ln -sfn "$cuda_real" "$root/usr/local/cuda"
  log "CUDA toolkit $cuda_real mounted read-only"
fi
status=0
unshare --mount --propagation private bash -c "
  set -e
  mount -t proc proc '$root/proc'
  mount --rbind /sys '$root/sys'
  mount --rbind /dev '$root/dev'
  ${cuda_mount:-true}
  exec chroot '$root' env -i HOME=/root TERM=dumb LANG=C.UTF-8 CI=\"\${CI:-}\" \
    OSPREY_TEST_BUILDS='$test_builds' \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \"\$@\"
" fresh "${passthrough[@]}" bash -c "$inner" inner "${run_args[@]}" || status=$?
if [ $status -eq 0 ] && [ -n "$min_accuracy" ]; then
  best=$(grep -oE 'test_acc [0-9.]+' "$root/root/run.log" | awk '{print $2}' | sort -g | tail -n 1)
  log "best test accuracy ${best:-none}% (at least $min_accuracy% wanted)"
  awk -v b="${best:-0}" -v m="$min_accuracy" 'BEGIN{exit !(b + 0 >= m + 0)}' || status=1
fi
if [ $status -eq 0 ]; then
  fonts=$(grep -oE '^[0-9]+ fonts' "$root/root/typefaces.log" | awk '{print $1}')
  log "osprey data typefaces: ${fonts:-no} fonts (at least $min_fonts wanted)"
  [ "${fonts:-0}" -ge "$min_fonts" ] || status=1
fi
[ $keep -eq 1 ] || rm -rf "$dir"
if [ $status -eq 0 ]; then log "PASS: both README commands work on a fresh Debian 12"; else
  log "FAIL (status $status)"; fi
log "$(( $(date +%s) - start )) s in all"
exit $status
