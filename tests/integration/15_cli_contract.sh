#!/bin/bash
# The rest of the command line contract of issue 2, against the private Dovecot: default ports
# per scheme, no password in the URL, libfuse options checked before a password is asked for
# and passed through when valid, the password prompt on a terminal, the local login name as
# the default user, the system trust store used together with cafile, and where messages go
# (-f: stderr; in the background: syslog).
. "$(dirname "$0")/../lib/common.sh"
mf_need_mailfs
mf_need_dovecot

mp=$T/mnt
mkdir -p "$mp"
url=imaps://$MAIL_USER@127.0.0.1:$IMAPS_PORT
run_refused() { # run_refused DESC PATTERN ARGS...: mailfs ARGS MOUNTPOINT must be refused
	local desc=$1 pattern=$2
	shift 2
	MAILFS_PASSWORD=${PW:-$MAIL_PASSWORD} timeout -k 5 30 "$MAILFS" "$@" "$mp" < /dev/null \
		> "$T/mount.out" 2> "$T/mount.err"
	MF_RC=$?
	mf_check_refused "$desc" "$mp" "$pattern"
}

# ---- default ports: nothing listens on 993/143/995/110 here, so the error names the port
for pair in imaps:993 imap:143 pop3s:995 pop3:110; do
	scheme=${pair%:*} port=${pair#*:}
	if timeout 2 bash -c "echo > /dev/tcp/127.0.0.1/$port" 2>/dev/null; then
		ok "$scheme:// uses port $port by default # SKIP something listens on $port here"
		continue
	fi
	run_refused "$scheme:// without a port" "127\.0\.0\.1:$port\b" "$scheme://$MAIL_USER@127.0.0.1"
done

# ---- a password in the URL is refused, and not repeated in the message
run_refused "a password in the URL" "password" "imaps://$MAIL_USER:hunter2-in-url@127.0.0.1:$IMAPS_PORT"
check_not "the refusal does not repeat the password" grep -q 'hunter2-in-url' "$T/mount.err"

# ... nor as a mount option: "-o password=" is no option of mailfs, so libfuse refuses it.
MF_USAGE_OK=1 run_refused "-o password=... is not a password source" "option" -o password=hunter2-in-opt "$url"

# ---- libfuse options: a bad one fails before the password is asked for; a good one is used
marker=$T/password-was-asked
rm -f "$marker"
MF_USAGE_OK=1 run_refused "an unknown -o option" "option" -o "password_command=touch '$marker'; echo x" \
	-o no_such_fuse_option "$url"
check_not "an unknown -o option fails before password_command runs" test -e "$marker"
if mf_mount_alice "$mp" -o allow_other; then
	opts=$(awk -v mp="$mp" '$5 == mp { print $6 " " $NF }' /proc/self/mountinfo)
	case $opts in
	*allow_other*) ok "-o allow_other is passed to libfuse ($opts)" ;;
	*) fail "-o allow_other is passed to libfuse" "mount options: $opts" ;;
	esac
	mf_umount "$mp"
else
	fail "-o allow_other mounts" "$(cat "$T/mount.err")"
fi

# ---- the password prompt, when there is a terminal and no other source
if MAILREF_PASSWORD=$MAIL_PASSWORD timeout -k 5 90 python3 "$MF_PY" prompt-run \
	"$MAILFS" -o "cafile=$CA_FILE" "$url" "$mp" > "$T/prompt.out" 2>&1; then
	echo "$mp" >> "$T/mounts"
	ok "password typed at the terminal prompt: mounted"
	check "prompt: INBOX is there" test -d "$mp/INBOX"
	check "prompt: it asked for the password ($(tr -d '\r' < "$T/prompt.out" | head -n 1))" grep -qi 'password' "$T/prompt.out"
	check_not "prompt: the typed password is not echoed" grep -qF "$MAIL_PASSWORD" "$T/prompt.out"
	mf_umount "$mp"
else
	fail "password typed at the terminal prompt: mounted" "$(cat "$T/prompt.out")"
	mf_is_mounted "$mp" && mf_umount "$mp"
fi
# MAILFS_PASSWORD comes before the prompt: with a terminal, no prompt when it is set.
if MAILFS_PASSWORD=$MAIL_PASSWORD MAILREF_PASSWORD=not-typed timeout -k 5 30 python3 "$MF_PY" prompt-run \
	"$MAILFS" -o "cafile=$CA_FILE" "$url" "$mp" > "$T/prompt2.out" 2>&1; then
	fail "MAILFS_PASSWORD set: no prompt even on a terminal" "$(cat "$T/prompt2.out")"
else
	if mf_is_mounted "$mp" && ! grep -qi 'password' "$T/prompt2.out"; then
		ok "MAILFS_PASSWORD set: no prompt even on a terminal"
	else
		fail "MAILFS_PASSWORD set: no prompt even on a terminal" "$(cat "$T/prompt2.out")"
	fi
fi
echo "$mp" >> "$T/mounts"
mf_is_mounted "$mp" && mf_umount "$mp"

# ---- the user defaults to the local login name
if MAILFS_PASSWORD=$LOGIN_PASSWORD mf_mount "$mp" -o "cafile=$CA_FILE" "imaps://127.0.0.1:$IMAPS_PORT"; then
	ok "URL without a user: logs in as the login name ($LOGIN_USER)"
	check "no user: INBOX is there" test -d "$mp/INBOX"
	mf_umount "$mp"
else
	fail "URL without a user: logs in as the login name ($LOGIN_USER)" "$(cat "$T/mount.err")"
fi

# ---- the system trust store (OpenSSL's default, which SSL_CERT_FILE replaces) is always used
if SSL_CERT_FILE=$CA_FILE MAILFS_PASSWORD=$MAIL_PASSWORD mf_mount "$mp" "$url"; then
	ok "a CA in the system trust store is trusted without cafile"
	mf_umount "$mp"
else
	fail "a CA in the system trust store is trusted without cafile" "$(cat "$T/mount.err")"
fi
# cafile adds to the store: with the test CA in the store and the untrusted CA as cafile, both
# servers are trusted.
for port in "$IMAPS_PORT" "$UNTRUSTED_IMAPS_PORT"; do
	if SSL_CERT_FILE=$CA_FILE MAILFS_PASSWORD=$MAIL_PASSWORD mf_mount "$mp" -o "cafile=$UNTRUSTED_CA_FILE" \
		"imaps://$MAIL_USER@127.0.0.1:$port"; then
		ok "cafile adds to the system store (server on port $port trusted)"
		mf_umount "$mp"
	else
		fail "cafile adds to the system store (server on port $port trusted)" "$(cat "$T/mount.err")"
	fi
done

# ---- messages: -f writes them to stderr; in the background they go to syslog
log=$T/fg.log
if MAILFS_PASSWORD=$MAIL_PASSWORD mf_mount_fg "$mp" "$log" -o "cafile=$CA_FILE" "$url"; then
	sleep 0.3
	check "-f: messages go to stderr (the mount is announced)" grep -q 'mounted' "$log"
	check_not "-f without -d: no protocol trace" grep -Eq 'EXAMINE|LOGIN|debug' "$log"
	mf_umount "$mp"
	wait "$MF_FG_PID" 2>/dev/null
else
	fail "-f mounts" "$(cat "$log")"
fi
if [ -e /dev/log ]; then
	ok "background messages go to syslog # SKIP /dev/log exists; not replacing the system's logger"
else
	# A stand-in for the system logger, only for this check, removed again on exit.
	python3 "$MF_PY" syslog-listen /dev/log "$T/syslog" &
	lpid=$!
	mf_track_pid "$lpid"
	mf_on_exit 'kill $lpid 2>/dev/null; [ -S /dev/log ] && rm -f /dev/log'
	for i in $(seq 1 50); do [ -S /dev/log ] && break; sleep 0.05; done
	if mf_mount_alice "$mp"; then
		ls "$mp/INBOX" > /dev/null
		for i in $(seq 1 30); do grep -q mounted "$T/syslog" 2>/dev/null && break; sleep 0.1; done
		if grep -q 'mailfs.*mounted' "$T/syslog" 2>/dev/null; then
			ok "background: messages go to syslog ($(grep -m 1 mounted "$T/syslog" | cut -c 1-70)...)"
		else
			fail "background: messages go to syslog" "$(cat "$T/syslog" 2>&1)"
		fi
		check_eq "background: nothing on the terminal after the start" "" "$(cat "$T/mount.out" "$T/mount.err")"
		mf_umount "$mp"
	else
		fail "mount for the syslog check" "$(cat "$T/mount.err")"
	fi
	kill "$lpid" 2>/dev/null
	wait "$lpid" 2>/dev/null
	[ -S /dev/log ] && rm -f /dev/log
fi
mf_finish
