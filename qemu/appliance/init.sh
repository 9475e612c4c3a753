#!/bin/busybox sh
# PID 1 of the kniv appliance VM.
#
# Loads the modules packed into the initramfs, mounts the host's root (9p,
# read-only) under a tmpfs overlay, loads kni.ko, runs the command the host
# passed through fw_cfg inside that root, reports its exit status on hvc2 and
# powers off. /run/kniv-config (from fw_cfg opt/kniv/config) sets KNIV_*.
# bin/ holds a link to busybox for each applet (qemu/initramfs.ts).
export PATH=/bin
mkdir -p /proc /sys /dev /run /mnt/host /mnt/rw /newroot

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

say() { echo "kniv-init: $*"; }
status() { echo "$1" > "$2"; poweroff -f; }

for m in /lib/kniv/modules/*.ko; do
	insmod "$m" || say "cannot load $m"
done

fwcfg=/sys/firmware/qemu_fw_cfg/by_name/opt/kniv
base64 -d "$fwcfg/config/raw" > /run/kniv-config || { say "no config in fw_cfg"; status 125 /dev/hvc2; }
. /run/kniv-config

mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=524288 host /mnt/host ||
	{ say "cannot mount the host root over 9p"; status 125 /dev/hvc2; }
mount -t tmpfs -o mode=0755 rw /mnt/rw
mkdir -p /mnt/rw/upper /mnt/rw/work
mount -t overlay overlay -o lowerdir=/mnt/host,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work /newroot ||
	{ say "cannot mount the overlay root"; status 125 /dev/hvc2; }
for d in proc sys dev; do
	mount --move "/$d" "/newroot/$d"
done
# The overlay makes the whole root writable, /tmp included: the host's /tmp
# stays visible (a project may live there). /run gets a fresh tmpfs so that
# nothing talks to the host's sockets.
mount -t tmpfs -o mode=0755 run /newroot/run
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
mount -t tmpfs -o mode=1777 shm /newroot/dev/shm
# The service's state directory, shared read-write from the host at the same
# path, so that what the service keeps survives the VM.
if [ -n "$KNIV_STATE_DIR" ]; then
	mkdir -p "/newroot$KNIV_STATE_DIR"
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 state "/newroot$KNIV_STATE_DIR" ||
		{ say "cannot mount the state directory over 9p"; status 125 /dev/hvc2; }
fi
# Where tests keep evidence (consoles of faulted guests), likewise.
if [ -n "$KNIV_ARTIFACTS_DIR" ]; then
	mkdir -p "/newroot$KNIV_ARTIFACTS_DIR"
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 artifacts "/newroot$KNIV_ARTIFACTS_DIR" ||
		{ say "cannot mount the artifacts directory over 9p"; status 125 /dev/hvc2; }
fi
# modprobe inside the VM finds the appliance kernel's own module tree.
mkdir -p "/newroot/lib/modules/$KNIV_RELEASE"
mount --bind "/mnt/host$KNIV_MODULES" "/newroot/lib/modules/$KNIV_RELEASE"

hostname kniv-appliance
ip link set lo up
if [ -n "$KNIV_NET" ]; then
	ip link set eth0 up
	ip addr add 10.0.2.15/24 dev eth0
	ip route add default via 10.0.2.2
fi

if [ "$KNIV_LOAD_KNI" = 1 ]; then
	# shellcheck disable=SC2086 # KNIV_KNI_PARAMS is a list of name=value words
	insmod /lib/kniv/kni.ko $KNIV_KNI_PARAMS || say "kni.ko did not load"
fi

# The virtio consoles are ttys: raw mode passes the command's bytes unchanged
# (no \n -> \r\n). hvc resets its termios on the last close, so init holds
# them open on fds 3-5 for the whole run.
exec 3> /newroot/dev/hvc0 4> /newroot/dev/hvc1 5> /newroot/dev/hvc2
for fd in 3 4 5; do
	stty raw -echo 0<&"$fd"
done
base64 -d "/newroot$fwcfg/command/raw" > /newroot/run/kniv-command
# The command's root is its mount namespace's root (the overlay moved onto /
# in a namespace of its own, as switch_root does), not a chroot into a
# directory: the kernel refuses user namespaces to a chrooted process, and
# the tests make them as container runtimes do.
unshare -m /bin/sh -c 'cd /newroot && mount --move . / && exec chroot . /bin/sh /run/kniv-command' \
	< /dev/null >&3 2>&4 3>&- 4>&- 5>&-
echo "$?" >&5
poweroff -f
