# shellcheck shell=bash
# Helpers for tests and fixture scripts: network namespaces joined to the host by a veth pair
# stand in for pods on a node. Source this file; every function is idempotent.
#
#   netns_up NAME HOST_IF NS_IF HOST_ADDR/PLEN NS_ADDR/PLEN [MTU]
#   netns_down NAME HOST_IF
#
# Traffic stays on this machine: the addresses live only on the veth pair.

netns_up() {
    local ns=$1 hif=$2 nif=$3 haddr=$4 naddr=$5 mtu=${6:-1500}
    netns_down "$ns" "$hif"
    ip netns add "$ns"
    ip link add "$hif" type veth peer name "$nif"
    ip link set "$nif" netns "$ns"
    ip addr add "$haddr" dev "$hif"
    ip link set "$hif" mtu "$mtu" up
    ip -n "$ns" addr add "$naddr" dev "$nif"
    ip -n "$ns" link set "$nif" mtu "$mtu" up
    ip -n "$ns" link set lo up
    # Offloads would hand tcpdump 64 KiB "packets"; real pod traffic on the wire is MTU-sized.
    if command -v ethtool >/dev/null; then
        ethtool -K "$hif" tso off gso off gro off >/dev/null 2>&1 || true
        ip netns exec "$ns" ethtool -K "$nif" tso off gso off gro off >/dev/null 2>&1 || true
    fi
}

netns_down() {
    local ns=$1 hif=$2
    ip link del "$hif" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
}

# Starts nginx inside a namespace with a config file; prints nothing, fails loudly.
nginx_start() {
    local ns=$1 conf=$2
    ip netns exec "$ns" nginx -c "$conf"
}

nginx_stop() {
    local pidfile=$1
    if [ -s "$pidfile" ]; then
        kill "$(cat "$pidfile")" 2>/dev/null || true
        for _ in $(seq 50); do [ -e "$pidfile" ] || break; sleep 0.1; done
    fi
}

# Waits until something listens on ADDR:PORT (reached from the host).
wait_port() {
    local addr=$1 port=$2
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/$addr/$port") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "nothing listens on $addr:$port" >&2
    return 1
}

# Starts tcpdump on an interface into a file and waits until it is capturing.
tcpdump_start() {
    local iface=$1 out=$2 log=$3
    # Immediate mode: without it, packets still in unretired TPACKET_V3 blocks are lost at exit.
    tcpdump -i "$iface" -n --immediate-mode -U -s 0 -w "$out" >"$log" 2>&1 &
    TCPDUMP_PID=$!
    for _ in $(seq 100); do
        grep -q "listening on" "$log" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "tcpdump did not start: $(cat "$log")" >&2
    return 1
}

# Stops tcpdump; fails if the kernel dropped packets (the capture would not be the truth).
tcpdump_stop() {
    local log=$1
    sleep 0.5
    kill -INT "$TCPDUMP_PID" 2>/dev/null || true
    wait "$TCPDUMP_PID" 2>/dev/null || true
    local dropped
    dropped=$(sed -n 's/^\([0-9]*\) packets dropped by kernel$/\1/p' "$log")
    if [ "${dropped:-0}" != 0 ]; then
        echo "tcpdump: $dropped packets dropped by kernel" >&2
        return 1
    fi
}
