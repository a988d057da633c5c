#!/bin/sh
# popgate: transparent interception with NAT REDIRECT (iptables + ip6tables, IPv4 and IPv6).
#
# Use with "interception": "redirect" in /etc/popgate/popgate.json (SPEC §3).
#
# What this does
#   * POP3 (110) and POP3S (995) connections that arrive on LAN_IF (the intercepted
#     interface(s)) are redirected to popgate's listening sockets on the SAME local ports
#     (110 -> 110, 995 -> 995). The destination address is rewritten to this host's
#     address on that interface; popgate asks conntrack for the original destination
#     (SO_ORIGINAL_DST, IP6T_SO_ORIGINAL_DST for IPv6) and connects there.
#   * popgate's own upstream connections carry SO_MARK UPSTREAM_MARK (0x2, popgate.json
#     "upstream_mark") and are never redirected, even when they loop back through this
#     host (e.g. an upstream on this host, or if you add an OUTPUT rule for clients running
#     on the gateway itself: exempt the mark there too).
#   * No policy routing is needed, and no divert mark is used.
#   * Fails closed by itself: a redirected connection to a port popgate does not listen on
#     is reset by the local TCP stack; it never reaches the server.
#
# Settings come from the environment (defaults in brackets):
#   LAN_IF         intercepted interface(s), space separated                   [eth1]
#   POP3_PORT      popgate's POP3 port (policy "ports")                         [110]
#   POP3S_PORT     popgate's POP3S port                                         [995]
#   UPSTREAM_MARK  popgate.json "upstream_mark"                                 [0x2]
#
# Usage:  LAN_IF="eth1" sh popgate-redirect.sh [up|down]
# Rules live in the chain POPGATE_REDIRECT (nat); "up" removes an earlier installation
# first, "down" removes everything this script added.
set -eu

LAN_IF="${LAN_IF:-eth1}"
POP3_PORT="${POP3_PORT:-110}"
POP3S_PORT="${POP3S_PORT:-995}"
UPSTREAM_MARK="${UPSTREAM_MARK:-0x2}"
IPTABLES="${IPTABLES:-iptables}"
IP6TABLES="${IP6TABLES:-ip6tables}"

down() {
	for ipt in "$IPTABLES" "$IP6TABLES"; do
		while $ipt -t nat -D PREROUTING -j POPGATE_REDIRECT 2>/dev/null; do :; done
		$ipt -t nat -F POPGATE_REDIRECT 2>/dev/null || true
		$ipt -t nat -X POPGATE_REDIRECT 2>/dev/null || true
	done
}

up() {
	down
	for ipt in "$IPTABLES" "$IP6TABLES"; do
		$ipt -t nat -N POPGATE_REDIRECT
		# popgate's own upstream traffic is never intercepted.
		$ipt -t nat -A POPGATE_REDIRECT -m mark --mark "$UPSTREAM_MARK" -j RETURN
		# New connections from the intercepted interface(s): port P to popgate's port P.
		for interface in $LAN_IF; do
			for port in "$POP3_PORT" "$POP3S_PORT"; do
				$ipt -t nat -A POPGATE_REDIRECT -i "$interface" -p tcp --dport "$port" \
					-j REDIRECT --to-ports "$port"
			done
		done
		$ipt -t nat -A PREROUTING -j POPGATE_REDIRECT
	done
}

case "${1:-up}" in
	up) up ;;
	down) down ;;
	*) echo "usage: $0 [up|down]" >&2; exit 2 ;;
esac
