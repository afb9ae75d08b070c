#!/bin/sh
# L2 guest init (busybox sh) for the lab's boot scenarios, the demo and the
# benchmark: reports what the guest sees as marker lines that
# tests/lab/l1/helpers.sh (l2_run) parses, then powers off.
# The first line is the benchmark's "reached init" mark: print it first.
echo "LAB-GUEST-INIT"
read -r uptime _ </proc/uptime
echo "=================================================================="
echo " Hello from the L2 guest: a stock Debian kernel, booted by the VMM"
echo "=================================================================="
echo "LAB-GUEST-UNAME=$(uname -a)"
echo "LAB-GUEST-NPROC=$(nproc)"
echo "LAB-GUEST-MEMTOTAL-KB=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
echo "LAB-GUEST-UPTIME=$uptime"
echo "LAB-GUEST-POWEROFF"
# Without a power-off method the kernel ends PID 1 and panics; panic=-1 on
# the command line then reboots, which also ends the VMM.
poweroff -f
