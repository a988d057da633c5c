#!/bin/sh
# popgate: transparent interception with TPROXY (iptables + ip6tables, IPv4 and IPv6),
# including the policy routing TPROXY needs.
#
# Use with "interception": "tproxy" in /etc/popgate/popgate.json (SPEC §3).
#
# What this does
#   * POP3 (110) and POP3S (995) connections that arrive on LAN_IF (the intercepted
#     interface(s)) are handed to popgate's listening sockets on the SAME local ports
#     (110 -> 110, 995 -> 995) without rewriting their destination: popgate reads the
#     original destination from the accepted socket's local address.
#   * Diverted packets get the divert mark DIVERT_MARK (0x1), and policy routing delivers
#     them locally:
#         ip rule add fwmark 0x1 iif LAN_IF lookup 100
#         ip route add local 0.0.0.0/0 dev lo table 100      (and the ip -6 equivalents)
#     The rule is limited to the intercepted interface(s), so locally generated packets,
#     popgate's own upstream connections among them, never take table 100.
#   * popgate's own upstream connections carry SO_MARK UPSTREAM_MARK (0x2, popgate.json
#     "upstream_mark"); they are never diverted, even when they loop back through this host.
#   * The return path: later packets of a connection popgate already holds are found with
#     `-m socket --transparent --nowildcard` (nftables: socket transparent 1 socket
#     wildcard 0) and marked too. --nowildcard matters: popgate's listeners are transparent
#     sockets bound to 0.0.0.0/::, and without it any forwarded packet to port 110/995
#     would match them. With "spoof_client_address": true this rule also catches the
#     server's replies to the client's address on the upstream-facing interface: list that
#     interface in RETURN_IF so the routing rule covers it.
#   * Fail closed: a POP3 connection that could not be handed to popgate (popgate not
#     running, or no policy makes it listen on that port) is reset in FORWARD instead of
#     reaching the server uninspected.
#
# Settings come from the environment (defaults in brackets):
#   LAN_IF         intercepted interface(s), space separated                   [eth1]
#   RETURN_IF      upstream-facing interface(s), only for spoof_client_address   [none]
#   POP3_PORT      popgate's POP3 port (policy "ports")                         [110]
#   POP3S_PORT     popgate's POP3S port                                         [995]
#   DIVERT_MARK    TPROXY divert mark                                           [0x1]
#   UPSTREAM_MARK  popgate.json "upstream_mark"                                 [0x2]
#   ROUTE_TABLE    routing table for local delivery                             [100]
#
# Usage:  LAN_IF="eth1" sh popgate-tproxy.sh [up|down]
# Rules live in the chains POPGATE_TPROXY (mangle) and POPGATE_TPROXY_FWD (filter); "up"
# removes an earlier installation first, "down" removes everything this script added.
set -eu

LAN_IF="${LAN_IF:-eth1}"
RETURN_IF="${RETURN_IF:-}"
POP3_PORT="${POP3_PORT:-110}"
POP3S_PORT="${POP3S_PORT:-995}"
DIVERT_MARK="${DIVERT_MARK:-0x1}"
UPSTREAM_MARK="${UPSTREAM_MARK:-0x2}"
ROUTE_TABLE="${ROUTE_TABLE:-100}"
IPTABLES="${IPTABLES:-iptables}"
IP6TABLES="${IP6TABLES:-ip6tables}"
IP="${IP:-ip}"

down() {
	for ipt in "$IPTABLES" "$IP6TABLES"; do
		while $ipt -t mangle -D PREROUTING -j POPGATE_TPROXY 2>/dev/null; do :; done
		$ipt -t mangle -F POPGATE_TPROXY 2>/dev/null || true
		$ipt -t mangle -X POPGATE_TPROXY 2>/dev/null || true
		while $ipt -t filter -D FORWARD -j POPGATE_TPROXY_FWD 2>/dev/null; do :; done
		$ipt -t filter -F POPGATE_TPROXY_FWD 2>/dev/null || true
		$ipt -t filter -X POPGATE_TPROXY_FWD 2>/dev/null || true
	done
	for family in -4 -6; do
		for interface in $LAN_IF $RETURN_IF; do
			while $IP "$family" rule del fwmark "$DIVERT_MARK" iif "$interface" lookup "$ROUTE_TABLE" 2>/dev/null; do :; done
		done
		$IP "$family" route flush table "$ROUTE_TABLE" 2>/dev/null || true
	done
}

up() {
	down
	for ipt in "$IPTABLES" "$IP6TABLES"; do
		$ipt -t mangle -N POPGATE_TPROXY
		# popgate's own upstream traffic is never intercepted.
		$ipt -t mangle -A POPGATE_TPROXY -m mark --mark "$UPSTREAM_MARK" -j RETURN
		# Packets of connections popgate already holds (transparent, not wildcard-bound).
		$ipt -t mangle -A POPGATE_TPROXY -p tcp -m socket --transparent --nowildcard \
			-j MARK --set-mark "$DIVERT_MARK"
		$ipt -t mangle -A POPGATE_TPROXY -m mark --mark "$DIVERT_MARK" -j ACCEPT
		# New connections from the intercepted interface(s): port P to popgate's port P.
		for interface in $LAN_IF; do
			for port in "$POP3_PORT" "$POP3S_PORT"; do
				$ipt -t mangle -A POPGATE_TPROXY -i "$interface" -p tcp --dport "$port" \
					-j TPROXY --on-port "$port" --tproxy-mark "$DIVERT_MARK"
			done
		done
		$ipt -t mangle -A PREROUTING -j POPGATE_TPROXY

		# Fail closed: TPROXY found no popgate listener, the packet is being forwarded.
		$ipt -t filter -N POPGATE_TPROXY_FWD
		for interface in $LAN_IF; do
			$ipt -t filter -A POPGATE_TPROXY_FWD -i "$interface" -p tcp \
				-m multiport --dports "$POP3_PORT,$POP3S_PORT" -j REJECT --reject-with tcp-reset
		done
		$ipt -t filter -I FORWARD -j POPGATE_TPROXY_FWD
	done

	# Policy routing: marked packets from the intercepted interface(s) are delivered locally.
	$IP -4 route add local 0.0.0.0/0 dev lo table "$ROUTE_TABLE"
	$IP -6 route add local ::/0 dev lo table "$ROUTE_TABLE"
	for family in -4 -6; do
		for interface in $LAN_IF $RETURN_IF; do
			$IP "$family" rule add fwmark "$DIVERT_MARK" iif "$interface" lookup "$ROUTE_TABLE"
		done
	done
}

case "${1:-up}" in
	up) up ;;
	down) down ;;
	*) echo "usage: $0 [up|down]" >&2; exit 2 ;;
esac
