#!/bin/sh
# popgate: policy routing for TPROXY interception (IPv4 and IPv6), used together with
# popgate-tproxy.nft or ../iptables/popgate-tproxy.sh.
#
# Packets marked with the divert mark (0x1) by the TPROXY rules must be delivered to the
# local popgate socket although their destination is another host. That takes a routing
# table (100) whose only route is "everything is local", and a rule sending marked packets
# there:
#     ip rule add fwmark 0x1 iif LAN_IF lookup 100
#     ip route add local 0.0.0.0/0 dev lo table 100
# and the same with ip -6. The rule is limited to the intercepted interface(s) (`iif`), so
# packets this host sends itself (iif lo), popgate's upstream connections among them
# (SO_MARK 0x2 anyway), never take table 100 and can never be diverted back to popgate.
#
# Settings come from the environment (defaults in brackets):
#   LAN_IF       intercepted interface(s), space separated               [eth1]
#   RETURN_IF    upstream-facing interface(s) on which the servers' replies arrive; only
#                needed with "spoof_client_address": true, where those replies are
#                addressed to the client and must be delivered to popgate     [none]
#   DIVERT_MARK  the TPROXY divert mark of the firewall rules                 [0x1]
#   ROUTE_TABLE  the routing table used for local delivery                    [100]
#
# Usage:  LAN_IF="eth1" sh popgate-tproxy-routing.sh [up|down]
set -eu

LAN_IF="${LAN_IF:-eth1}"
RETURN_IF="${RETURN_IF:-}"
DIVERT_MARK="${DIVERT_MARK:-0x1}"
ROUTE_TABLE="${ROUTE_TABLE:-100}"
IP="${IP:-ip}"

down() {
	for family in -4 -6; do
		for interface in $LAN_IF $RETURN_IF; do
			while $IP "$family" rule del fwmark "$DIVERT_MARK" iif "$interface" lookup "$ROUTE_TABLE" 2>/dev/null; do :; done
		done
		$IP "$family" route flush table "$ROUTE_TABLE" 2>/dev/null || true
	done
}

up() {
	down
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
