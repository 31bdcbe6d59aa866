#!/bin/sh
# Boots Debian's stock kernel (bookworm's 6.1) under qemu and runs
# xvrrpd there: two network namespaces joined by veth, an xvrrpd pair elects a
# master, the master stops with SIGTERM, the backup takes the VIP.
# Prints one "smoke: ..." line per check and exits non-zero if any failed.
#
#   contrib/kernel-smoke.sh [XVRRPD_BINARY] [KERNEL_PACKAGE]
#
# Needs root (apt-get); installs qemu-system-x86 and busybox-static if missing
# and downloads the kernel package with apt-get (nothing else is fetched). Uses
# KVM when the CPU offers it, else software emulation (the boot takes seconds).
# Everything it builds lives in a temporary directory, removed at exit.
set -eu

BINARY=${1:-target/release/xvrrpd}
# Default: the kernel Debian's linux-image-amd64 points at (bookworm: 6.1).
KERNEL_PACKAGE=${2:-$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')}
[ -x "$BINARY" ] || { echo "kernel-smoke: $BINARY not found (cargo xtask package builds it)" >&2; exit 2; }

need() { command -v "$1" >/dev/null 2>&1 || missing="${missing:-} $2"; }
need qemu-system-x86_64 qemu-system-x86
need busybox busybox-static
if [ -n "${missing:-}" ]; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi

work=$(mktemp -d /tmp/xvrrpd-kernel-smoke.XXXXXX)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -q "$KERNEL_PACKAGE" >/dev/null)
dpkg-deb -x "$work"/*.deb "$work/kernel"
vmlinuz=$(ls "$work"/kernel/boot/vmlinuz-*)
release=${vmlinuz##*/vmlinuz-}
veth=$(find "$work/kernel/lib/modules/$release" -name 'veth.ko*' | head -n 1)

root="$work/root"
mkdir -p "$root/bin" "$root/opt/bin" "$root/usr/sbin" "$root/lib64" "$root/lib/x86_64-linux-gnu" \
    "$root/proc" "$root/sys" "$root/dev" "$root/run/netns" "$root/tmp" "$root/etc"
cp "$(command -v busybox)" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cp "$BINARY" "$root/usr/sbin/xvrrpd"
cp /usr/bin/ip "$root/opt/bin/ip"
# The shared libraries of xvrrpd and ip, from this host (Debian 12, as on the target).
for lib in $(ldd "$BINARY" /usr/bin/ip | awk '/=> \//{print $3} /^\t\/lib64/{print $1}' | sort -u); do
    cp -L "$lib" "$root$lib"
done
case "$veth" in
    *.xz) xz -dc "$veth" > "$root/veth.ko" ;;
    *) cp "$veth" "$root/veth.ko" ;;
esac

cat > "$root/etc/vrrp.conf.in" <<'EOF'
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority PRIORITY
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass secret1
    }
    virtual_ipaddress {
        192.0.2.100/24
    }
}
EOF

cat > "$root/init" <<'EOF'
#!/bin/sh
/bin/busybox --install -s
export PATH=/usr/sbin:/bin:/sbin
# iproute2's ip (netns, veth), by path: busybox's shell prefers its own applets.
ip() { /opt/bin/ip "$@"; }
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mount -t tmpfs run /run; mkdir -p /run/netns; mount -t bpf bpf /sys/fs/bpf
failed=0
check() { if eval "$2"; then echo "smoke: ok: $1"; else echo "smoke: FAILED: $1"; failed=1; fi; }
echo "smoke: kernel $(uname -r)"
check "BTF: /sys/kernel/btf/vmlinux" "[ -e /sys/kernel/btf/vmlinux ]"
echo "smoke: $(xvrrpd --version 2>&1)"
insmod /veth.ko
ip netns add a; ip netns add b
ip link add eth0 netns a type veth peer name eth0 netns b
ip -n a addr add 192.0.2.1/24 dev eth0; ip -n b addr add 192.0.2.2/24 dev eth0
for n in a b; do ip -n $n link set lo up; ip -n $n link set eth0 up; done
holds() { ip -n "$1" addr show dev eth0 | grep -q 192.0.2.100; }
start() {
    sed "s/PRIORITY/$2/" /etc/vrrp.conf.in > /tmp/$1.conf
    check "xvrrpd check on node $1" "nsenter --net=/run/netns/$1 xvrrpd check -f /tmp/$1.conf >/tmp/$1.check 2>&1"
    nsenter --net=/run/netns/$1 xvrrpd run -f /tmp/$1.conf >/tmp/$1.log 2>&1 &
    eval "pid_$1=\$!"
}
start a 200
start b 100
i=0; while [ $i -lt 100 ] && ! { holds a && ! holds b; }; do sleep 0.1; i=$((i+1)); done
check "node a (priority 200) holds the VIP, b does not" "holds a && ! holds b"
check "native XDP attached on both" "ip -n a link show eth0 | grep -q 'xdp ' && ip -n b link show eth0 | grep -q 'xdp '"
check "node b's kernel recorded a's adverts" "nsenter --net=/run/netns/b xvrrpd peers --json | grep -q '\"priority\": 200'"
kill -TERM $pid_a
i=0; while [ $i -lt 50 ] && ! { holds b && ! holds a; }; do sleep 0.1; i=$((i+1)); done
check "after SIGTERM on a, b holds the VIP" "holds b && ! holds a"
check "a exited 0 and detached XDP" "wait $pid_a && ! ip -n a link show eth0 | grep -q xdp"
kill -TERM $pid_b; sleep 1
if [ $failed != 0 ]; then for f in /tmp/*.log /tmp/*.check; do echo "--- $f (end)"; tail -n 25 "$f"; done; fi
echo "smoke: done, failed=$failed"
poweroff -f
EOF
chmod 755 "$root/init"
(cd "$root" && find . | busybox cpio -o -H newc | gzip -1) > "$work/initrd.gz"

# KVM needs the CPU's virtualisation extensions; without them (a VM without nested
# virtualisation) qemu emulates, which boots in seconds all the same.
accel=tcg
if [ -w /dev/kvm ] && grep -qw -e vmx -e svm /proc/cpuinfo; then accel=kvm; fi
echo "kernel-smoke: booting $release ($accel) with $BINARY"
timeout 600 qemu-system-x86_64 -accel "$accel" -cpu max -m 1024 -smp 2 -nographic -no-reboot \
    -kernel "$vmlinuz" -initrd "$work/initrd.gz" \
    -append "console=ttyS0 panic=-1 quiet" </dev/null > "$work/console.log" 2>&1 || true
# What init printed (from its first line on), without the kernel's own messages.
tr -d '\r' < "$work/console.log" | sed -n '/smoke: kernel/,$p' | grep -av '^\[ *[0-9]' || true
grep -aq "smoke: done, failed=0" "$work/console.log"
