#!/bin/bash
# debian-wrapper.sh DEB SHIM WORK: run inside `unshare -m` by
# TestDebianWrapperThroughShim. Builds a copy-on-write view of this host
# (overlay over /, changes kept in a tmpfs under WORK), fakes a Xen 4.17
# hypervisor in a private /sys, and inside that root:
#   1. runs Debian's own /usr/sbin/xl wrapper (the baseline);
#   2. diverts it the default way (to xl.distrib) behind the shim;
#   3. installs DEB, which diverts it to /usr/lib/ganeti-userdown/real/xl
#      (and shows what happens without the package's lib link);
#   4. purges DEB.
# Each step's output follows a line "=== NAME". Nothing outside WORK's
# tmpfs changes, and the mounts vanish with the namespace.
set -euo pipefail
deb=$1 shim=$2 work=$3

mount --make-rprivate /
mkdir -p "$work/cow" "$work/root"
mount -t tmpfs cow "$work/cow"
mkdir "$work/cow/upper" "$work/cow/work"
mount -t overlay overlay -o "lowerdir=/,upperdir=$work/cow/upper,workdir=$work/cow/work" "$work/root"
R=$work/root
mount --rbind /dev "$R/dev"
mount -t proc proc "$R/proc"
mount -t tmpfs tmp "$R/tmp"
mount -t tmpfs sys "$R/sys"
mkdir -p "$R/sys/hypervisor/version"
echo xen >"$R/sys/hypervisor/type"
echo 4 >"$R/sys/hypervisor/version/major"
echo 17 >"$R/sys/hypervisor/version/minor"
cp "$deb" "$R/tmp/ganeti-userdown.deb"
cp "$shim" "$R/tmp/userdown-hvconfig"

chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C DEBIAN_FRONTEND=noninteractive /bin/bash -s <<'INSIDE'
set -u
step() { echo "=== $1"; }
try() { "$@" 2>&1; echo "exit=$?"; }

step "debian: link"
readlink /usr/sbin/xl
step "debian: xl list"
try /usr/sbin/xl list

step "distrib: divert"
try dpkg-divert --local --rename --add /usr/sbin/xl
ln -s /tmp/userdown-hvconfig /usr/sbin/xl
mkdir -p /tmp/state
printf '[xen]\ncommand = "/usr/sbin/xl.distrib"\n[state]\ndir = "/tmp/state"\n' >/tmp/distrib.toml
step "distrib: xl list"
USERDOWN_CONFIG=/tmp/distrib.toml try /usr/sbin/xl list
rm /usr/sbin/xl
step "distrib: undo"
try dpkg-divert --local --rename --remove /usr/sbin/xl

step "install"
try dpkg -i /tmp/ganeti-userdown.deb
step "installed: links"
readlink /usr/sbin/xl /usr/lib/ganeti-userdown/real/xl /usr/lib/ganeti-userdown/lib
step "installed: diversions"
dpkg-divert --list '/usr/sbin/x*'
step "installed: xl list"
try /usr/sbin/xl list
step "installed: doctor"
try userdown-hvconfig doctor
# Why preinst adds real/../lib: without it the renamed relative link dangles.
mv /usr/lib/ganeti-userdown/lib /tmp/lib.saved
step "installed, no lib link: xl list"
try /usr/sbin/xl list
mv /tmp/lib.saved /usr/lib/ganeti-userdown/lib

step "purge"
try dpkg --purge ganeti-userdown
step "purged: link"
readlink /usr/sbin/xl
step "purged: diversions"
dpkg-divert --list '/usr/sbin/x*'
ls -d /usr/lib/ganeti-userdown 2>&1
step "purged: xl list"
try /usr/sbin/xl list
step "end"
INSIDE
