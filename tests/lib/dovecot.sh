#!/bin/bash
# A private Dovecot for tests and the demo: its own config, CA, ports and mail, on loopback.
#   tests/lib/dovecot.sh start DIR [MAILDIR_SOURCE]   (prints nothing but errors; writes DIR/env)
#   tests/lib/dovecot.sh stop DIR
# MAILDIR_SOURCE is a Maildir++ tree copied in as alice's mail (default: the demo mailbox made
# by examples/make-demo-maildir.sh). Needs root (Dovecot drops to the dovecot user for mail).
# Two instances run: the main one (imap, imaps, pop3, pop3s) and a second one whose only imaps
# listener presents a certificate from a CA that nobody trusts, because Dovecot 2.3 cannot pick
# a certificate per port.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

die() { echo "dovecot.sh: $*" >&2; exit 1; }

# Ports are picked by binding port 0, so two runs on one machine do not collide.
free_ports() {
	python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

make_ca() { # make_ca DIR NAME: DIR/NAME-ca.{crt,key} and DIR/NAME-server.{crt,key}
	local d=$1 n=$2
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=mailfs test CA $n" \
		-keyout "$d/$n-ca.key" -out "$d/$n-ca.crt" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
		-keyout "$d/$n-server.key" -out "$d/$n-server.csr" 2>/dev/null
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
		> "$d/$n-server.ext"
	openssl x509 -req -in "$d/$n-server.csr" -CA "$d/$n-ca.crt" -CAkey "$d/$n-ca.key" \
		-CAcreateserial -days 3650 -extfile "$d/$n-server.ext" -out "$d/$n-server.crt" 2>/dev/null
	chmod 600 "$d"/*.key
}

# The settings both instances share. $1 = instance dir, $2 = server cert name.
common_conf() {
	cat <<CONF
base_dir = $1/run
instance_name = mailfs-test-$(basename "$1")
log_path = $1/dovecot.log
listen = 127.0.0.1
ssl = yes
ssl_cert = <$D/$2-server.crt
ssl_key = <$D/$2-server.key
disable_plaintext_auth = no
auth_mechanisms = plain login apop
auth_failure_delay = 0
mail_location = maildir:$D/mail/%u
first_valid_uid = 1
default_internal_user = dovecot
default_login_user = dovenull
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $D/passwd
}
userdb {
  driver = static
  args = uid=dovecot gid=dovecot home=$D/home/%u
}
service anvil {
  chroot =
}
service imap-login {
  chroot =
}
service pop3-login {
  chroot =
}
CONF
}

start() {
	local dir=$1 src=${2:-}
	command -v dovecot >/dev/null || die "dovecot not installed (apt-get install dovecot-imapd dovecot-pop3d)"
	[ "$(id -u)" = 0 ] || die "must run as root (Dovecot switches to the dovecot user)"
	[ -e "$dir/run/master.pid" ] && stop "$dir"
	mkdir -p "$dir"
	D=$(cd "$dir" && pwd)
	rm -rf "${D:?}/mail" "${D:?}/home" "${D:?}/rawlog" "${D:?}/untrusted" "${D:?}/run" "${D:?}/dovecot.log"
	mkdir -p "$D/mail" "$D/home" "$D/rawlog" "$D/run" "$D/untrusted/run"
	chmod 755 "$D"

	[ -s "$D/test-ca.crt" ] || make_ca "$D" test
	[ -s "$D/untrusted-ca.crt" ] || make_ca "$D" untrusted

	# Dovecot reads the passwd-file as root, so the file may stay private. carol's password has
	# the characters that break naive LOGIN quoting; it is also distinctive enough to grep for.
	# erin's mailbox is the one tests may change (new mail, flags, expunges; through doveadm,
	# never through mailfs); the login name's account tests the default user of a URL.
	login=$(id -un)
	cat > "$D/passwd" <<'PW'
alice:{PLAIN}secret
bob:{PLAIN}hunter2
carol:{PLAIN}Tr0ub4dor "&3" \x q
dave@example.org:{PLAIN}d4ve-pw
erin:{PLAIN}erin-pw
frank:{PLAIN}frank-pw
PW
	case $login in
	alice | bob | carol | dave@example.org | erin | frank) ;;
	*) printf '%s:{PLAIN}login-pw\n' "$login" >> "$D/passwd" ;;
	esac
	chgrp dovecot "$D/passwd"
	chmod 640 "$D/passwd"

	if [ -z "$src" ]; then
		src=$D/demo-maildir
		rm -rf "$src"
		sh "$repo/examples/make-demo-maildir.sh" "$src" >/dev/null
	fi
	[ -d "$src/cur" ] || die "$src is not a Maildir (no cur/)"
	cp -a "$src" "$D/mail/alice"
	# bob and frank have empty mailboxes (frank's INBOX is filled by 47_big_folder); carol has a
	# copy of alice's INBOX (only to test logins); erin
	# has the first five of its messages (in file-name order).
	users="alice bob carol dave@example.org erin frank"
	case " $users " in *" $login "*) ;; *) users="$users $login" ;; esac
	for u in $users; do
		[ "$u" = alice ] || mkdir -p "$D/mail/$u/cur" "$D/mail/$u/new" "$D/mail/$u/tmp"
		mkdir -p "$D/rawlog/$u"
	done
	cp -a "$src"/cur/* "$D/mail/carol/cur/" 2>/dev/null || true
	find "$src/cur" -type f | sort | head -n 5 | while read -r f; do cp -a "$f" "$D/mail/erin/cur/"; done
	chown -R dovecot:dovecot "$D/mail" "$D/home" "$D/rawlog"

	read -r imap imaps pop3 pop3s untrusted untrusted_pop3s <<EOP
$(free_ports 6)
EOP

	# pop3_lock_session: one POP3 session per maildrop at a time, as many servers do, so a test
	# can tell whether a mount holds a session open while idle (Dovecot's default does not lock).
	# rawlog_dir keeps every session's bytes (DIR/rawlog/<user>/*.in = what the client sent), so
	# tests can prove no STORE/EXPUNGE/DELE was ever sent. mail_log logs every flag change,
	# expunge and save, and the logout formats count deletions, as a second, server-side proof.
	{
		common_conf "$D" test
		cat <<CONF
protocols = imap pop3
listen = 127.0.0.1, 127.0.0.2
pop3_lock_session = yes
rawlog_dir = $D/rawlog/%u
mail_plugins = \$mail_plugins notify mail_log
plugin {
  mail_log_events = delete undelete expunge copy save flag_change mailbox_create mailbox_delete mailbox_rename
  mail_log_fields = uid box msgid flags
}
imap_logout_format = in=%i out=%o deleted=%{deleted} expunged=%{expunged} trashed=%{trashed}
pop3_logout_format = top=%t/%p retr=%r/%b del=%d/%m size=%s
service imap-login {
  inet_listener imap {
    port = $imap
  }
  inet_listener imaps {
    port = $imaps
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    port = $pop3
  }
  inet_listener pop3s {
    port = $pop3s
    ssl = yes
  }
}
CONF
	} > "$D/dovecot.conf"

	{
		common_conf "$D/untrusted" untrusted
		cat <<CONF
protocols = imap pop3
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = $untrusted
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    port = 0
  }
  inet_listener pop3s {
    port = $untrusted_pop3s
    ssl = yes
  }
}
CONF
	} > "$D/untrusted/dovecot.conf"

	# Dovecot keeps the stderr it was started with: give it a file, never our caller's pipe
	# (a pipeline reading our output would otherwise wait until Dovecot stops).
	dovecot -c "$D/dovecot.conf" < /dev/null > "$D/dovecot.stderr" 2>&1 ||
		die "dovecot failed to start: $(cat "$D/dovecot.stderr"); see $D/dovecot.log"
	dovecot -c "$D/untrusted/dovecot.conf" < /dev/null > "$D/untrusted/dovecot.stderr" 2>&1 ||
		die "untrusted dovecot failed to start: $(cat "$D/untrusted/dovecot.stderr")"
	wait_ready "$imap" "$imaps" "$pop3" "$pop3s" "$untrusted" "$untrusted_pop3s" || {
		tail -n 20 "$D/dovecot.log" >&2
		die "dovecot does not answer"
	}

	cat > "$D/env" <<ENV
# Written by tests/lib/dovecot.sh; source it.
DOVECOT_DIR=$D
IMAPS_PORT=$imaps
IMAP_PORT=$imap
POP3S_PORT=$pop3s
POP3_PORT=$pop3
UNTRUSTED_IMAPS_PORT=$untrusted
UNTRUSTED_POP3S_PORT=$untrusted_pop3s
MISMATCH_HOST=127.0.0.2
CA_FILE=$D/test-ca.crt
UNTRUSTED_CA_FILE=$D/untrusted-ca.crt
MAIL_USER=alice
MAIL_PASSWORD=secret
TRICKY_USER=carol
TRICKY_PASSWORD='Tr0ub4dor "&3" \\x q'
EMPTY_USER=bob
ADDR_USER=dave@example.org
ADDR_PASSWORD=d4ve-pw
EMPTY_PASSWORD=hunter2
MUT_USER=erin
MUT_PASSWORD=erin-pw
BIG_USER=frank
BIG_PASSWORD=frank-pw
LOGIN_USER=$login
LOGIN_PASSWORD='$(awk -F'{PLAIN}' -v u="$login" '$1 == u ":" { print $2 }' "$D/passwd")'
MAILDIR=$D/mail/alice
DOVECOT_CONF=$D/dovecot.conf
DOVECOT_LOG=$D/dovecot.log
RAWLOG_DIR=$D/rawlog
ENV
}

# Every listener must send its greeting; TLS ones are probed with openssl s_client.
wait_ready() {
	local i
	for i in $(seq 1 100); do
		if python3 - "$@" <<'PY' 2>/dev/null
import socket, ssl, sys
imap, imaps, pop3, pop3s, untrusted, untrusted_pop3s = map(int, sys.argv[1:])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
def greet(port, tls, want):
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    if tls:
        s = ctx.wrap_socket(s)
    line = s.recv(200)
    s.close()
    assert line.startswith(want), line
for port, tls, want in ((imap, 0, b"* OK"), (imaps, 1, b"* OK"), (pop3, 0, b"+OK"),
                        (pop3s, 1, b"+OK"), (untrusted, 1, b"* OK"), (untrusted_pop3s, 1, b"+OK")):
    greet(port, tls, want)
PY
		then return 0; fi
		sleep 0.1
	done
	return 1
}

stop_one() { # stop_one BASE_DIR: kill the master named in its pid file and wait for it
	local pidfile=$1/master.pid pid i
	[ -s "$pidfile" ] || return 0
	pid=$(cat "$pidfile")
	if kill "$pid" 2>/dev/null; then
		for i in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
	fi
	rm -f "$pidfile"
}

stop() {
	local D
	D=$(cd "$1" 2>/dev/null && pwd) || return 0
	stop_one "$D/untrusted/run"
	stop_one "$D/run"
}

case ${1:-} in
start) [ $# -ge 2 ] || die "usage: $0 start DIR [MAILDIR_SOURCE]"; start "$2" "${3:-}" ;;
stop) [ $# -eq 2 ] || die "usage: $0 stop DIR"; stop "$2" ;;
*) echo "usage: $0 start DIR [MAILDIR_SOURCE] | stop DIR" >&2; exit 2 ;;
esac
