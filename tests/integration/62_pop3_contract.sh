#!/bin/bash
# The POP3 mount against the IMAP mount of the same Dovecot account, and the POP3 promises of
# issue 3: the same message bytes (sha256 sets) and names as the IMAP INBOX, exact sizes before
# any read, one download per message, counters while mounted and on unmount with -d, no
# session held while idle (Dovecot here locks the maildrop per POP3 session), no DELE, flags
# unchanged, APOP only when asked, the password never in the -d log, and every failure before
# daemonizing, as for IMAP.
. "$(dirname "$0")/../lib/common.sh"
mf_need_mailfs
mf_need_dovecot

purl=pop3s://$MAIL_USER@127.0.0.1:$POP3S_PORT
flags_before=$(mf_server_flags)
mf_rawlog_mark

# ---- failures before daemonizing: one line, non-zero, nothing mounted
mp=$T/mnt
mkdir -p "$mp"
attempt() { # attempt DESC PATTERN [VAR=VAL...] -- uses MF_ARGS and $mp
	local desc=$1 pattern=$2
	shift 2
	env "$@" timeout -k 5 "$MF_MOUNT_TIMEOUT" "$MAILFS" "${MF_ARGS[@]}" "$mp" < /dev/null \
		> "$T/mount.out" 2> "$T/mount.err"
	MF_RC=$?
	mf_check_refused "$desc" "$mp" "$pattern"
}
MF_ARGS=(-o "cafile=$CA_FILE" "$purl")
attempt "pop3s: wrong password" "auth|password|login|credential|reject|fail" MAILFS_PASSWORD=wrong-password
MF_ARGS=(-o "cafile=$UNTRUSTED_CA_FILE" "$purl")
attempt "pop3s: certificate from a CA we were not told to trust" "certif|verif|trust|tls|ssl" \
	MAILFS_PASSWORD="$MAIL_PASSWORD"
MF_ARGS=(-o "cafile=$CA_FILE" "pop3s://$MAIL_USER@127.0.0.1:$UNTRUSTED_POP3S_PORT")
attempt "pop3s: server certificate signed by an untrusted CA" "certif|verif|trust|tls|ssl" \
	MAILFS_PASSWORD="$MAIL_PASSWORD"
MF_ARGS=(-o "cafile=$CA_FILE" "pop3s://$MAIL_USER@$MISMATCH_HOST:$POP3S_PORT")
attempt "pop3s: certificate for another host name" "certif|verif|host|name|match|tls|ssl" \
	MAILFS_PASSWORD="$MAIL_PASSWORD"
closed=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
MF_ARGS=(-o "cafile=$CA_FILE" -o timeout=5 "pop3s://$MAIL_USER@127.0.0.1:$closed")
attempt "pop3s: connection refused" "connect|refused|unreach" MAILFS_PASSWORD="$MAIL_PASSWORD"
MF_ARGS=(-o "cafile=$CA_FILE" "$purl")
saved=$mp
mp=$T/does/not/exist
attempt "pop3s: missing mount point" "mount ?point|no such|not exist|directory" MAILFS_PASSWORD="$MAIL_PASSWORD"
mp=$saved
setsid timeout -k 5 30 "$MAILFS" -o "cafile=$CA_FILE" "$purl" "$mp" < /dev/null > "$T/mount.out" 2> "$T/mount.err"
MF_RC=$?
mf_check_refused "pop3s: no password source and no terminal" "$mp" "password|terminal|tty"

# ---- the same account both ways at once
imp=$T/imap
pmp=$T/pop3
cache=$T/pop3-cache
if ! mf_mount_alice "$imp"; then
	fail "IMAP mount of alice" "$(cat "$T/mount.err")"
	exit 1
fi
if ! MAILFS_PASSWORD=$MAIL_PASSWORD mf_mount "$pmp" -o "cafile=$CA_FILE" -o "cache_dir=$cache" "$purl"; then
	fail "POP3 mount of alice" "$(cat "$T/mount.err")"
	exit 1
fi
ok "alice mounted over IMAP and over POP3 at the same time"

# Sizes as listed, before a single body was read: a file must not change size when read.
(cd "$pmp/INBOX" && timeout 60 find . -type f -printf '%s %P\n' | sort -k2) > "$T/sizes-listed"
check_eq "status: no body fetched by the listing" 0 "$(mf_status "$pmp" bodies_whole)"
top=$(mf_status "$pmp" command_top)
rt=$(mf_status "$pmp" round_trips)
n=$(wc -l < "$T/sizes-listed")
check "POP3 INBOX has the demo's messages ($n)" test "$n" -ge 15
check "status while mounted: backend, command_top, command_uidl, activity" \
	grep -q '^command_uidl: [1-9]' "$pmp/.mailfs-status"
check_eq "status while mounted: activity idle after the listing" idle "$(mf_status "$pmp" activity)"
# Dovecot offers PIPELINING: the TOPs of a listing go out in batches, not one per round trip.
check_lt "PIPELINING: the listing took $rt round trips for $top TOP commands" "$rt" "$top"

if timeout 120 python3 "$MF_PY" same-bytes "$imp/INBOX" "$pmp/INBOX" > "$T/same-bytes" 2>&1; then
	ok "POP3 INBOX holds the same message bytes as the IMAP INBOX (sha256 sets): $(head -n 1 "$T/same-bytes")"
	grep '^allowed' "$T/same-bytes" | sed 's/^/# /'
else
	fail "POP3 INBOX holds the same message bytes as the IMAP INBOX (sha256 sets)" "$(cat "$T/same-bytes")"
fi
(cd "$pmp/INBOX" && find . -type f -printf '%s %P\n' | sort -k2) > "$T/sizes-read"
check "sizes listed before any read equal the sizes after reading" diff "$T/sizes-listed" "$T/sizes-read"
bad=$(cd "$pmp/INBOX" && for f in *.eml; do [ "$(stat -c %s "$f")" = "$(rd "$f" | wc -c)" ] || echo "$f"; done)
check_eq "stat size equals bytes read for every POP3 file" "" "$bad"
if timeout 60 python3 "$MF_PY" same-names "$imp/INBOX" "$pmp/INBOX" > "$T/same-names" 2>&1; then
	ok "POP3 names have the same date, sender and subject as the IMAP names ($(tail -n 1 "$T/same-names"))"
	grep '^note' "$T/same-names" | sed 's/^/# /'
else
	fail "POP3 names have the same date, sender and subject as the IMAP names" "$(cat "$T/same-names")"
fi
bad=$(cd "$pmp/INBOX" && for f in *.eml; do
	id=${f%.eml}; id=${id##*.}
	x=$(getfattr --absolute-names -d "$f" 2>&1)
	printf '%s\n' "$x" | grep -qx "user.pop3.id=\"$id\"" || echo "$f: no user.pop3.id=\"$id\""
	printf '%s\n' "$x" | grep -q '^user.mail.from=' || echo "$f: no user.mail.from"
	printf '%s\n' "$x" | grep -q '^user.imap' && echo "$f: IMAP attributes on a POP3 file"
done)
check_eq "xattrs: user.pop3.id is the id in the name, user.mail.* are there, no user.imap.*" "" "$bad"
check_eq "status: last_error none after reading everything" none "$(mf_status "$pmp" last_error)"
mf_umount "$imp"

# ---- bodies are cached: a second read of everything downloads nothing
i0=$(mf_status "$pmp" bytes_in); w0=$(mf_status "$pmp" bodies_whole); h0=$(mf_status "$pmp" cache_hits)
cat "$pmp"/INBOX/*.eml > /dev/null
i1=$(mf_status "$pmp" bytes_in); w1=$(mf_status "$pmp" bodies_whole); h1=$(mf_status "$pmp" cache_hits)
check_eq "second read of everything: no bytes from the server" "$i0 $w0" "$i1 $w1"
echo "# cache_hits $h0 -> $h1 (the kernel page cache may answer first)"

# ---- a remount starts from cache_dir: no TOP for headers already known, no body downloaded again
mf_umount "$pmp"
if MAILFS_PASSWORD=$MAIL_PASSWORD mf_mount "$pmp" -o "cafile=$CA_FILE" -o "cache_dir=$cache" "$purl"; then
	ls -l "$pmp/INBOX" > /dev/null
	check_eq "remount from cache_dir/index: the listing sends no TOP" 0 "$(mf_status "$pmp" command_top | grep . || echo 0)"
	i0=$(mf_status "$pmp" bytes_in)
	cat "$pmp"/INBOX/*.eml > /dev/null
	i1=$(mf_status "$pmp" bytes_in)
	check_eq "remount: reading everything again receives nothing (bodies from cache_dir)" 0 "$((i1 - i0))"
else
	fail "POP3 remount with the same cache_dir" "$(cat "$T/mount.err")"
fi

# ---- idle: the mount holds no POP3 session, so another client can log in
if [ "$(doveconf -c "$DOVECOT_CONF" -h pop3_lock_session 2>&1)" = yes ]; then
	ok "test Dovecot locks the maildrop for each POP3 session (pop3_lock_session = yes)"
else
	fail "test Dovecot locks the maildrop for each POP3 session (pop3_lock_session = yes)"
fi
for i in $(seq 1 50); do [ "$(mf_status "$pmp" activity)" = idle ] && break; sleep 0.1; done
if MAILREF_PASSWORD=$MAIL_PASSWORD timeout 30 python3 "$MF_PY" pop3-login 127.0.0.1 "$POP3S_PORT" \
	"$CA_FILE" "$MAIL_USER" > "$T/second.out" 2>&1; then
	ok "a second POP3 client logs in while the mount is idle ($(cat "$T/second.out"))"
else
	fail "a second POP3 client logs in while the mount is idle" "$(cat "$T/second.out")"
fi
# ... and right after a read of a message not yet cached (the mount's session must be over).
rm -rf "$T/cache2"
mf_umount "$pmp"
MAILFS_PASSWORD=$MAIL_PASSWORD mf_mount "$pmp" -o "cafile=$CA_FILE" -o "cache_dir=$T/cache2" "$purl" ||
	fail "POP3 remount with an empty cache" "$(cat "$T/mount.err")"
f=$(ls "$pmp/INBOX" | head -n 1)
w0=$(mf_status "$pmp" bodies_whole)
rd "$pmp/INBOX/$f" > /dev/null
w1=$(mf_status "$pmp" bodies_whole)
rd "$pmp/INBOX/$f" > /dev/null
w2=$(mf_status "$pmp" bodies_whole)
check "the first read of a message downloads it ($w0 -> $w1 bodies)" test "$w1" -gt "$w0"
check_eq "the second read of that message downloads nothing" "$w1" "$w2"
if MAILREF_PASSWORD=$MAIL_PASSWORD timeout 30 python3 "$MF_PY" pop3-login 127.0.0.1 "$POP3S_PORT" \
	"$CA_FILE" "$MAIL_USER" > "$T/second.out" 2>&1; then
	ok "a second POP3 client logs in right after a read"
else
	fail "a second POP3 client logs in right after a read" "$(cat "$T/second.out")"
fi
mf_umount "$pmp"

# ---- -d: the protocol, the counters on unmount, and never the password (carol has a copy of
# alice's INBOX and a password with quotes, spaces and a backslash)
log=$T/debug.log
if MAILFS_PASSWORD=$TRICKY_PASSWORD mf_mount_fg "$pmp" "$log" -d -o "cafile=$CA_FILE" \
	"pop3s://$TRICKY_USER@127.0.0.1:$POP3S_PORT"; then
	ok "pop3s -d mounts (foreground)"
	f=$(ls "$pmp/INBOX" | head -n 1)
	rd "$pmp/INBOX/$f" > /dev/null
	mf_umount "$pmp"
	wait "$MF_FG_PID" 2>/dev/null
	check_eq "pop3s -d: exits 0 after fusermount3 -u" 0 "$?"
	check "pop3s -d: the log shows the protocol (CAPA, UIDL, TOP)" \
		sh -c "grep -q CAPA '$log' && grep -q UIDL '$log' && grep -q TOP '$log'"
	summary=$(sed -n '/unmounted/,$p' "$log")
	for k in backend bytes_in bytes_out round_trips commands command_top bodies_whole cache_hits; do
		if printf '%s\n' "$summary" | grep -q "^$k: "; then
			ok "pop3s -d: counters printed on unmount: $k"
		else
			fail "pop3s -d: counters printed on unmount: $k" "$(tail -n 30 "$log")"
		fi
	done
	b64=$(printf '\0%s\0%s' "$TRICKY_USER" "$TRICKY_PASSWORD" | base64 -w0)
	b64u=$(printf '%s\0%s\0%s' "$TRICKY_USER" "$TRICKY_USER" "$TRICKY_PASSWORD" | base64 -w0)
	b64p=$(printf '%s' "$TRICKY_PASSWORD" | base64 -w0)
	if grep -F -e "$TRICKY_PASSWORD" -e "$b64" -e "$b64u" -e "$b64p" -e 'Tr0ub4dor' "$log" > "$T/leak"; then
		fail "pop3s -d: password absent from the log (plain and base64)" "$(cat "$T/leak")"
	else
		ok "pop3s -d: password absent from the log (plain and base64)"
	fi
	check_not "pop3s -d: no APOP without -o apop" grep -q '> APOP' "$log"
	check_not "pop3s -d: no DELE in the protocol log" grep -Eq '> DELE( |$)' "$log"
else
	fail "pop3s -d mounts (foreground)" "$(tail -n 20 "$log")"
fi

# ---- APOP, only when asked (Dovecot here offers it: auth_mechanisms has apop)
log=$T/apop.log
if MAILFS_PASSWORD=$MAIL_PASSWORD mf_mount_fg "$pmp" "$log" -d -o "cafile=$CA_FILE" -o apop "$purl"; then
	ok "pop3s -o apop mounts"
	check "-o apop: logs in with APOP" grep -q '> APOP' "$log"
	check_not "-o apop: no USER/PASS or AUTH" grep -Eq '> (PASS|AUTH)( |$)' "$log"
	check_not "-o apop: password absent from the log" grep -qF -e "$MAIL_PASSWORD" "$log"
	mf_umount "$pmp"
	wait "$MF_FG_PID" 2>/dev/null
else
	fail "pop3s -o apop mounts" "$(tail -n 20 "$log")"
fi

# ---- the maildrop, as the other clients see it: nothing deleted, no flag changed
flags_after=$(mf_server_flags)
if [ "$flags_before" = "$flags_after" ]; then
	ok "flags of every message unchanged (doveadm fetch flags)"
else
	fail "flags of every message unchanged (doveadm fetch flags)" \
		"$(diff <(echo "$flags_before") <(echo "$flags_after") | head -n 20)"
fi
check_eq "INBOX still holds every message" "INBOX messages=$n" \
	"$(doveadm -c "$DOVECOT_CONF" mailbox status -u "$MAIL_USER" messages INBOX 2>&1)"
mf_rawlog_since > "$T/rawlog"
check "rawlog: this script's POP3 sessions sent TOP (the rawlog sees them)" grep -q '^TOP ' "$T/rawlog"
check_eq "rawlog: no DELE in any session of this script" "" "$(grep -i '^DELE' "$T/rawlog")"
mf_finish
