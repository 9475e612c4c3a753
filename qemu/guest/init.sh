#!/bin/busybox sh
# PID 1 of a kniv guest (the image qemu/guest-image.ts builds).
#
# Reads its orders from the kernel command line (qemu/guest-image.ts
# guestCmdline() writes them; docs/guests.md describes them):
#
#   kniv.net=eth0:10.1.0.2/24,eth1:10.2.0.2/24   addresses, brought up in order
#   kniv.gw=10.1.0.1                             default route
#   kniv.iperf=1                                 start `iperf3 -s -D`
#   kniv.run=<base64>                            a shell script to run once ready
#   kniv.poweroff=1                              power off after it
#
# and reports on the serial console with lines that start "kniv-guest: ":
# "ready uptime=S", "exit N" (the script's status), "error: ...".
#
# Under nested TCG each process costs a fraction of a second, so this script
# forks little: bin/ already holds the busybox applet links, and builtins do
# what they can.
export PATH=/bin:/usr/bin HOME=/root
mkdir -p /proc /sys /dev /tmp /run

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmp /tmp

say() { echo "kniv-guest: $*"; }

for m in /lib/kniv/modules/*.ko; do
	insmod "$m" || say "error: cannot load $m"
done

hostname kniv-guest
ip link set lo up

net='' gw='' iperf='' run='' off=''
set -f # the command line is split into words, never globbed
read -r cmdline < /proc/cmdline
for word in $cmdline; do
	case "$word" in
	kniv.net=*) net=${word#kniv.net=} ;;
	kniv.gw=*) gw=${word#kniv.gw=} ;;
	kniv.iperf=1) iperf=1 ;;
	kniv.run=*) run=${word#kniv.run=} ;;
	kniv.poweroff=1) off=1 ;;
	esac
done
set +f

IFS_SAVED=$IFS
IFS=,
for item in $net; do
	IFS=$IFS_SAVED
	dev=${item%%:*}
	addr=${item#*:}
	# virtio_net probes its devices when it loads; allow a moment anyway.
	i=0
	while [ ! -e "/sys/class/net/$dev" ] && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if ip link set "$dev" up && ip addr add "$addr" dev "$dev"; then
		read -r mac < "/sys/class/net/$dev/address"
		say "$dev $addr $mac"
	else
		say "error: cannot configure $dev with $addr"
	fi
done
IFS=$IFS_SAVED
if [ -n "$gw" ]; then
	ip route add default via "$gw" || say "error: cannot add the default route via $gw"
fi

if [ -n "$iperf" ]; then
	iperf3 -s -D || say "error: iperf3 -s did not start"
fi

read -r up _ < /proc/uptime
say "ready uptime=$up"

if [ -n "$run" ]; then
	echo "$run" | base64 -d > /tmp/kniv-run || say "error: kniv.run is not base64"
	sh /tmp/kniv-run < /dev/null
	say "exit $?"
fi

if [ -n "$off" ]; then
	poweroff -f
fi
# PID 1 must not exit: the guest idles until it is stopped.
while :; do
	sleep 3600
done
