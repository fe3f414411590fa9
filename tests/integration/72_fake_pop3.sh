#!/bin/bash
# pop3:// against a scripted fake POP3 server: STLS missing, refused or followed by injected
# plaintext must end in a refusal before mounting, with no credentials sent (not even USER);
# -o allow_plaintext is the user's explicit choice; dot-stuffing and a message without a final
# line break read back exactly; a server announcing EXPIRE 0 never sees DELE, RETR, or a QUIT
# after a message was read (any of which could make it delete mail); APOP only when asked.
. "$(dirname "$0")/../lib/common.sh"
mf_need_mailfs
mf_need_dovecot   # for the test CA and its server certificate

mp=$T/mnt
python3 "$MF_REPO/tests/fake/fakepop3.py" --dump "$T/real"
# creds_sent LOG [p|t]: did the client send USER, PASS, AUTH or APOP (in plaintext: p)?
creds_sent() { grep -Eiq "^c[0-9]+ ${2:-[pt]} (USER|PASS|AUTH|APOP)( |\$)" "$1"; }
fake_mount() { # fake_mount SCHEME [mailfs args]
	local scheme=$1
	shift
	MAILFS_PASSWORD=secret mf_mount "$mp" -o "cafile=$CA_FILE" -o timeout=10 "$@" \
		"$scheme://alice@127.0.0.1:$FAKE_PORT"
}
# read_all DESC: every file reads back as the fake's bytes, with a matching size
read_all() {
	local desc=$1 f id n=0
	for f in "$mp"/INBOX/*.eml; do
		[ -e "$f" ] || continue
		n=$((n + 1))
		id=${f%.eml}; id=${id##*.}
		if rd "$f" > "$T/out" 2> "$T/err" && cmp -s "$T/out" "$T/real/$id.eml"; then
			ok "$desc: $id reads back exactly ($(stat -c %s "$T/out") bytes)"
		else
			fail "$desc: $id reads back exactly" "$(cat "$T/err")" "$(cmp "$T/out" "$T/real/$id.eml" 2>&1)"
		fi
		check_eq "$desc: $id: stat size equals the bytes" "$(stat -c %s "$T/real/$id.eml")" "$(stat -c %s "$f")"
	done
	check_eq "$desc: INBOX lists the fake's 3 messages" 3 "$n"
}
never_deletes() { # never_deletes DESC: nothing in FAKE_LOG could make a server delete mail
	local bad
	bad=$(grep -E '^c[0-9]+ [pt] (DELE|RETR)( |$)' "$FAKE_LOG")
	check_eq "$1: no DELE or RETR sent" "" "$bad"
	# A QUIT enters the UPDATE state, where EXPIRE 0 servers delete what was downloaded.
	bad=$(awk '$3 == "TOP" && $5 != "0" { read[$1] = 1 } $3 == "QUIT" && read[$1] { print }' "$FAKE_LOG")
	check_eq "$1: no QUIT in a session that read a message" "" "$bad"
}

# ---- baselines: the fake works with mailfs at all (else the refusals below prove nothing)
mf_fake_pop3 normal --tls
if fake_mount pop3s; then
	ok "fake POP3, pop3s://: mounts"
	read_all "fake POP3, pop3s://"
	never_deletes "fake POP3, pop3s://"
	mf_umount "$mp"
else
	fail "fake POP3, pop3s://: mounts" "$(cat "$T/mount.err")" "$(tail -n 20 "$FAKE_LOG")"
fi
mf_fake_stop

mf_fake_pop3 normal
if fake_mount pop3; then
	ok "fake POP3, pop3:// with STLS: mounts"
	if grep -q 'TLS-ESTABLISHED' "$FAKE_LOG" && ! creds_sent "$FAKE_LOG" p; then
		ok "fake POP3, pop3://: credentials only inside TLS"
	else
		fail "fake POP3, pop3://: credentials only inside TLS" "$(head -n 20 "$FAKE_LOG")"
	fi
	check_not "fake POP3, pop3://: nothing pipelined behind STLS" grep -q CLIENT-PIPELINED "$FAKE_LOG"
	check_not "fake POP3: no APOP unless -o apop" grep -Eq '^c[0-9]+ [pt] APOP' "$FAKE_LOG"
	mf_umount "$mp"
else
	fail "fake POP3, pop3:// with STLS: mounts" "$(cat "$T/mount.err")" "$(tail -n 20 "$FAKE_LOG")"
fi
mf_fake_stop

# ---- refusals
refused() { # refused SCENARIO DESC PATTERN [mailfs args]
	local sc=$1 desc=$2 pattern=$3
	shift 3
	mf_fake_pop3 "$sc" || return
	fake_mount pop3 "$@"
	MF_RC=$?
	mf_check_refused "$desc" "$mp" "$pattern"
	if creds_sent "$FAKE_LOG"; then
		fail "$desc: no credentials sent (not even USER)" "$(cat "$FAKE_LOG")"
	else
		ok "$desc: no credentials sent (not even USER)"
	fi
	mf_fake_stop
}
refused nostls "pop3:// to a server without STLS" "stls|starttls|plaintext|tls|encrypt"
refused stls-no "pop3:// when STLS is refused" "stls|starttls|tls"
refused stls-inject "pop3:// with bytes injected after the STLS answer" "stls|starttls|inject|unexpected|tls|protocol"

# -o apop against a server whose greeting has no timestamp: refused, no password sent.
mf_fake_pop3 no-apop --tls
fake_mount pop3s -o apop
MF_RC=$?
mf_check_refused "-o apop, greeting without an APOP timestamp" "$mp" "apop"
check_not "-o apop: no PASS or AUTH sent instead" grep -Eq '^c[0-9]+ [pt] (PASS|AUTH)( |$)' "$FAKE_LOG"
mf_fake_stop

# ---- allow_plaintext: then it works without TLS
mf_fake_pop3 nostls
if fake_mount pop3 -o allow_plaintext; then
	ok "pop3:// -o allow_plaintext mounts without STLS"
	read_all "allow_plaintext"
	mf_umount "$mp"
else
	fail "pop3:// -o allow_plaintext mounts without STLS" "$(cat "$T/mount.err")" "$(cat "$FAKE_LOG")"
fi
mf_fake_stop

# ---- a server that stalls: the timeout ends it, before the mount and while reading
mf_fake_pop3 stall-greeting --tls
start=$SECONDS
fake_mount pop3s -o timeout=3
MF_RC=$?
MF_USAGE_OK=1 mf_check_refused "POP3 server that never greets (timeout=3)" "$mp" "time|connect|greeting|answer"
check_lt "POP3 server that never greets: gives up within 30 s (took $((SECONDS - start)) s)" $((SECONDS - start)) 30
mf_fake_stop
mf_fake_pop3 stall-read --tls
if MAILFS_PASSWORD=secret mf_mount_fg "$mp" "$T/stall.log" -o "cafile=$CA_FILE" -o timeout=3 \
	"pop3s://alice@127.0.0.1:$FAKE_PORT"; then
	f=$(ls "$mp/INBOX" | head -n 1)
	check "POP3 server that stalls on reads: the listing works" test -n "$f"
	start=$SECONDS
	timeout -k 5 30 cat "$mp/INBOX/$f" > /dev/null 2> "$T/err"
	rc=$?
	if [ $rc -ne 0 ] && [ $rc -lt 124 ] && grep -Eq "Input/output error|Connection timed out" "$T/err"; then
		ok "POP3 server that stalls on reads: the read fails (EIO or ETIMEDOUT) after $((SECONDS - start)) s"
	else
		fail "POP3 server that stalls on reads: the read fails with EIO or ETIMEDOUT" "status $rc: $(cat "$T/err")"
	fi
	check "POP3 server that stalls on reads: the daemon is still running" kill -0 "$MF_FG_PID"
	le=$(mf_status "$mp" last_error)
	check "POP3 server that stalls on reads: status file says why ($le)" test -n "$le" -a "$le" != none
	mf_umount "$mp"
else
	fail "POP3 server that stalls on reads: mounts" "$(tail -n 20 "$T/stall.log")"
fi
mf_fake_stop

# ---- EXPIRE 0: reading everything (twice) never gives the server a reason to delete
mf_fake_pop3 expire0 --tls
if MAILFS_PASSWORD=secret mf_mount_fg "$mp" "$T/expire0.log" -o "cafile=$CA_FILE" -o timeout=10 \
	"pop3s://alice@127.0.0.1:$FAKE_PORT"; then
	ok "EXPIRE 0 server: mounts"
	read_all "EXPIRE 0 server"
	read_all "EXPIRE 0 server, second read"
	never_deletes "EXPIRE 0 server"
	mf_umount "$mp"
	if grep -qi 'expire' "$T/expire0.log"; then
		ok "EXPIRE 0 server: the log warns about it ($(grep -i -m 1 expire "$T/expire0.log" | cut -c 1-80)...)"
	else
		fail "EXPIRE 0 server: the log warns about it" "$(cat "$T/expire0.log")"
	fi
else
	fail "EXPIRE 0 server: mounts" "$(tail -n 20 "$T/expire0.log")"
fi
mf_fake_stop
mf_finish
