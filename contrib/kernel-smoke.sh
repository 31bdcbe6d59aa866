#!/bin/sh
# Boots Debian's stock kernel (bookworm's 6.1) under qemu and runs
# xvrrpd there: two network namespaces joined by veth, an xvrrpd pair elects a
# master, the master stops with SIGTERM, the backup takes the VIP. Then the
# NIC is shared with xdp-filter (xdp-tools, libxdp's dispatcher: this
# kernel has the program extensions it needs): loaded before xvrrpd, which
# joins its dispatcher; and after an xvrrpd that made the dispatcher; a
# killed xvrrpd's component replaced by the next start's.
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

root="$work/root"
mkdir -p "$root/bin" "$root/opt/bin" "$root/usr/sbin" "$root/lib64" "$root/lib/x86_64-linux-gnu" \
    "$root/proc" "$root/sys" "$root/dev" "$root/run/netns" "$root/tmp" "$root/etc"
cp "$(command -v busybox)" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cp "$BINARY" "$root/usr/sbin/xvrrpd"
cp /usr/bin/ip "$root/opt/bin/ip"
# xdp-tools (installed by `cargo xtask setup`) and libxdp's BPF objects.
share_tools="$(command -v xdp-filter) $(command -v xdp-loader)"
for t in $share_tools; do cp "$t" "$root/usr/sbin/"; done
mkdir -p "$root/usr/lib/x86_64-linux-gnu/bpf"
cp /usr/lib/x86_64-linux-gnu/bpf/*.o "$root/usr/lib/x86_64-linux-gnu/bpf/"
# The shared libraries of these, from this host (Debian 12, as on the target).
for lib in $(ldd "$BINARY" /usr/bin/ip $share_tools | awk '/=> \//{print $3} /^\t\/lib64/{print $1}' | sort -u); do
    cp -L "$lib" "$root$lib"
done
# veth, and clsact with BPF filters (tc ingress before tcx, 6.6).
for m in veth sch_ingress cls_bpf; do
    ko=$(find "$work/kernel/lib/modules/$release" -name "$m.ko*" | head -n 1)
    [ -n "$ko" ] || continue
    case "$ko" in
        *.xz) xz -dc "$ko" > "$root/$m.ko" ;;
        *) cp "$ko" "$root/$m.ko" ;;
    esac
done

# What every system has: user lookups (the notify scripts' user) read them.
echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"

# Under software emulation (tcg) the CPU is tens of times slower: keepalived's
# default real-time budget (10 ms without blocking) is then a fraction of a
# millisecond of real work, and the kernel kills the daemon for it.
cat > "$root/etc/vrrp.conf.in" <<'EOF'
global_defs {
    vrrp_rlimit_rttime 1000000
}
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
for m in /veth.ko /sch_ingress.ko /cls_bpf.ko; do [ -e $m ] && insmod $m; done
ip netns add a; ip netns add b
ip link add eth0 netns a type veth peer name eth0 netns b
ip -n a addr add 192.0.2.1/24 dev eth0; ip -n b addr add 192.0.2.2/24 dev eth0
for n in a b; do ip -n $n link set lo up; ip -n $n link set eth0 up; done
holds() { ip -n "$1" addr show dev eth0 | grep -q 192.0.2.100; }
# start NODE PRIORITY [xvrrpd run options]
start() {
    node=$1
    sed "s/PRIORITY/$2/" /etc/vrrp.conf.in > /tmp/$1.conf
    shift 2
    nsenter --net=/run/netns/$node xvrrpd run -f /tmp/$node.conf "$@" >>/tmp/$node.log 2>&1 &
    eval "pid_$node=\$!"
}
# Where node $1's recorder runs, as `xvrrpd peers` says.
placement() { nsenter --net=/run/netns/$1 xvrrpd peers 2>/dev/null | head -n 1; }
loader() { nsenter --net=/run/netns/$1 xdp-loader status eth0 2>&1; }
# How many adverts of priority 200 node $1 recorded.
# (JSON objects come with their keys in alphabetical order: adverts first.)
recorded() { nsenter --net=/run/netns/$1 xvrrpd peers --json 2>/dev/null | tr -d ' \n' | sed -n 's/.*"adverts":\([0-9]*\),[^}]*"priority":200.*/\1/p'; }
wait_for() { i=0; while [ $i -lt ${2:-100} ] && ! eval "$1"; do sleep 0.1; i=$((i+1)); done; eval "$1"; }
ping_b() { nsenter --net=/run/netns/a ping -c 1 -W 1 192.0.2.2 >/dev/null 2>&1; }
for n in a b; do
    sed "s/PRIORITY/100/" /etc/vrrp.conf.in > /tmp/check.conf
    check "xvrrpd check on node $n" "nsenter --net=/run/netns/$n xvrrpd check -f /tmp/check.conf >/tmp/$n.check 2>&1"
done
start a 200
start b 100
i=0; while [ $i -lt 100 ] && ! { holds a && ! holds b; }; do sleep 0.1; i=$((i+1)); done
check "node a (priority 200) holds the VIP, b does not" "holds a && ! holds b"
echo "smoke: node a's recorder: $(placement a)"
check "recorder at tc ingress on both, XDP hook left free" "placement a | grep -q ' ingress' && placement b | grep -q ' ingress' && ! ip -n a link show eth0 | grep -q 'xdp'"
check "node b's kernel recorded a's adverts" "nsenter --net=/run/netns/b xvrrpd peers --json | grep -q '\"priority\": 200'"
kill -TERM $pid_a
i=0; while [ $i -lt 50 ] && ! { holds b && ! holds a; }; do sleep 0.1; i=$((i+1)); done
check "after SIGTERM on a, b holds the VIP" "holds b && ! holds a"
check "a exited 0 and left nothing attached" "wait $pid_a && ! ip -n a link show eth0 | grep -q xdp"
kill -TERM $pid_b; wait $pid_b

# --- xdp-filter loaded first: xvrrpd joins its dispatcher ---
check "xdp-filter loads on b (libxdp dispatcher)" "nsenter --net=/run/netns/b xdp-filter load eth0 >/tmp/xf.log 2>&1 && loader b | grep -q xdp_dispatcher"
start a 200
start b 100
check "b joined xdp-filter's dispatcher, first by priority" "wait_for 'placement b | grep -q \"libxdp dispatcher, priority 5, 1st of 2\"'"
echo "smoke: node b's recorder: $(placement b)"
check "b records a's adverts beside xdp-filter" "wait_for '[ \"\$(recorded b)\" -ge 2 ]' 50"
check "xdp-loader lists both programs" "loader b | grep -q vrrp_rx_libxdp && loader b | grep -q xdpfilt"
check "a holds the VIP, b does not" "wait_for 'holds a && ! holds b'"
kill -TERM $pid_a
check "b takes over when a stops" "wait_for 'holds b && ! holds a' 50"
kill -TERM $pid_b
check "b exited 0" "wait $pid_b"
check "xdp-filter alone in the dispatcher after xvrrpd left" "loader b | grep -q xdpfilt && ! loader b | grep -q vrrp_rx"
nsenter --net=/run/netns/b xdp-filter ip 192.0.2.1 --mode src >/dev/null 2>&1
check "xdp-filter still filters" "! ping_b"
nsenter --net=/run/netns/b xdp-filter ip 192.0.2.1 --mode src --remove >/dev/null 2>&1
check "and passes what it does not filter" "ping_b"
nsenter --net=/run/netns/b xdp-filter unload eth0 >/dev/null 2>&1

# --- xvrrpd first (attach mode xdp makes the dispatcher), then xdp-filter ---
start b 100 --attach xdp
check "b made a libxdp dispatcher" "wait_for 'placement b | grep -q \"libxdp dispatcher, priority 5, 1st (alone)\"'"
check "xdp-filter load after xvrrpd succeeds" "nsenter --net=/run/netns/b xdp-filter load eth0 >>/tmp/xf.log 2>&1"
start a 200
check "b now 1st of 2 in the dispatcher" "placement b | grep -q '1st of 2'"
check "b records a's adverts after xdp-filter joined" "wait_for '[ \"\$(recorded b)\" -ge 2 ]' 60"
echo "smoke: a alive: $(kill -0 $pid_a 2>/dev/null && echo yes || echo no); a: $(nsenter --net=/run/netns/a xvrrpd status 2>&1 | grep VI_1 | head -n 1)"
dmesg | grep -i -e xvrrpd -e rttime -e killed | tail -n 5
# A killed xvrrpd leaves its component pinned; the next start replaces it.
kill -KILL $pid_b; wait $pid_b
start b 100 --attach xdp
echo "smoke: b restarted at $(date +%T)"
# (The dead one's component is still listed until the new daemon answers.)
check "a restarted b replaced its killed predecessor's component" "wait_for 'nsenter --net=/run/netns/b xvrrpd status >/dev/null 2>&1' 600 && placement b | grep -q '1st of 2' && [ \$(loader b | grep -c vrrp_rx_libxdp) = 1 ]"
echo "smoke: checked at $(date +%T)"
kill -TERM $pid_b
check "b exited 0, xdp-filter still there" "wait $pid_b && loader b | grep -q xdpfilt && ! loader b | grep -q vrrp_rx"
kill -TERM $pid_a; wait $pid_a
nsenter --net=/run/netns/b xdp-filter unload eth0 >/dev/null 2>&1
check "xdp-filter unloaded: the hook is free" "! ip -n b link show eth0 | grep -q xdp"
if [ $failed != 0 ]; then for f in /tmp/*.log /tmp/*.check; do echo "--- $f (end)"; tail -n 40 "$f"; done; fi
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
