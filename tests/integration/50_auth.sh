#!/bin/bash
# Where the password comes from, that it never shows up in ps or in the -d protocol log,
# awkward passwords and user names, and imap:// with STARTTLS.
. "$(dirname "$0")/../lib/common.sh"
mf_need_mailfs
mf_need_dovecot

mp=$T/mnt
url=imaps://$MAIL_USER@127.0.0.1:$IMAPS_PORT

# ---- MAILFS_PASSWORD
if MAILFS_PASSWORD=$MAIL_PASSWORD mf_mount "$mp" -o "cafile=$CA_FILE" "$url"; then
	ok "MAILFS_PASSWORD works"
	check "INBOX visible" test -d "$mp/INBOX"
	mf_umount "$mp"
else
	fail "MAILFS_PASSWORD works" "$(cat "$T/mount.err")"
fi

# ---- password_command (first line of its output; the rest is ignored)
printf '%s\nsecond line is ignored\n' "$MAIL_PASSWORD" > "$T/pwfile"
chmod 600 "$T/pwfile"
if mf_mount "$mp" -o "cafile=$CA_FILE" -o "password_command=cat '$T/pwfile'" "$url"; then
	ok "password_command works (first line of its output)"
	mf_umount "$mp"
else
	fail "password_command works" "$(cat "$T/mount.err")"
fi
# password_command wins over MAILFS_PASSWORD.
if MAILFS_PASSWORD=wrong-password mf_mount "$mp" -o "cafile=$CA_FILE" -o "password_command=cat '$T/pwfile'" "$url"; then
	ok "password_command takes precedence over MAILFS_PASSWORD"
	mf_umount "$mp"
else
	fail "password_command takes precedence over MAILFS_PASSWORD" "$(cat "$T/mount.err")"
fi

# ---- a password with spaces, quotes and a backslash (LOGIN quoting / literal)
turl=imaps://$TRICKY_USER@127.0.0.1:$IMAPS_PORT
if MAILFS_PASSWORD=$TRICKY_PASSWORD mf_mount "$mp" -o "cafile=$CA_FILE" "$turl"; then
	ok "password with spaces, quotes and a backslash"
	# ps must not show it, neither while mounted nor in the daemon's argv.
	# ps output goes to a file first: a grep in the same pipeline would show the password itself.
	ps -eo args > "$T/ps.all"
	printf '%s\n' "$TRICKY_PASSWORD" > "$T/pw.pattern"
	if grep -F -f "$T/pw.pattern" "$T/ps.all" > "$T/ps.out"; then
		fail "password absent from ps output" "$(cat "$T/ps.out")"
	else
		ok "password absent from ps output"
	fi
	pid=$(mf_daemon_pid "$mp")
	if [ -n "$pid" ] && ! tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -e "$TRICKY_PASSWORD"; then
		ok "password absent from the daemon's command line"
	else
		fail "password absent from the daemon's command line" "pid=$pid"
	fi
	mf_umount "$mp"
else
	fail "password with spaces, quotes and a backslash" "$(cat "$T/mount.err")"
fi

# ---- a user name with '@', percent-encoded in the URL
aurl="imaps://${ADDR_USER/@/%40}@127.0.0.1:$IMAPS_PORT"
if MAILFS_PASSWORD=$ADDR_PASSWORD mf_mount "$mp" -o "cafile=$CA_FILE" "$aurl"; then
	ok "user name with %40 in the URL ($aurl)"
	mf_umount "$mp"
else
	fail "user name with %40 in the URL ($aurl)" "$(cat "$T/mount.err")"
fi

# ---- -d: the protocol is logged, the password is not (not even base64 in AUTHENTICATE PLAIN)
log=$T/debug.log
if MAILFS_PASSWORD=$TRICKY_PASSWORD mf_mount_fg "$mp" "$log" -d -o "cafile=$CA_FILE" "$turl"; then
	ok "mount with -d (foreground)"
	timeout 60 ls -R "$mp" > /dev/null 2>&1
	f=$(find "$mp/INBOX" -name '*.eml' | head -n 1)
	rd "$f" > /dev/null 2>&1
	mf_umount "$mp"
	wait "$MF_FG_PID" 2>/dev/null
	check_eq "-d daemon exits 0 after fusermount3 -u" 0 "$?"
	summary=$(sed -n '/unmounted/,$p' "$log")
	for k in backend bytes_in bytes_out round_trips commands bodies_whole bodies_partial cache_hits last_error; do
		if printf '%s\n' "$summary" | grep -q "^$k: "; then
			ok "-d: counters printed on unmount: $k"
		else
			fail "-d: counters printed on unmount: $k" "$(tail -n 25 "$log")"
		fi
	done
	if grep -Eq 'LOGIN|AUTHENTICATE|EXAMINE|FETCH' "$log"; then
		ok "-d log shows the protocol"
	else
		fail "-d log shows the protocol" "$(head -n 20 "$log")"
	fi
	b64=$(printf '\0%s\0%s' "$TRICKY_USER" "$TRICKY_PASSWORD" | base64 -w0)
	b64u=$(printf '%s\0%s\0%s' "$TRICKY_USER" "$TRICKY_USER" "$TRICKY_PASSWORD" | base64 -w0)
	b64p=$(printf '%s' "$TRICKY_PASSWORD" | base64 -w0)
	if grep -F -e "$TRICKY_PASSWORD" -e "$b64" -e "$b64u" -e "$b64p" -e 'Tr0ub4dor' "$log" > "$T/leak"; then
		fail "password absent from the -d log" "$(cat "$T/leak")"
	else
		ok "password absent from the -d log (plain and base64)"
	fi
	if grep -q 'Sanitizer\|runtime error' "$log"; then
		fail "no sanitizer report in the -d log" "$(grep -A5 'Sanitizer\|runtime error' "$log")"
	fi
else
	fail "mount with -d (foreground)" "$(tail -n 20 "$log")"
fi

# ---- imap:// upgrades with STARTTLS (Dovecot offers it); the login happens inside TLS
before=$(wc -l < "$DOVECOT_LOG")
if MAILFS_PASSWORD=$MAIL_PASSWORD mf_mount "$mp" -o "cafile=$CA_FILE" "imap://$MAIL_USER@127.0.0.1:$IMAP_PORT"; then
	ok "imap:// mounts (STARTTLS)"
	f=$(find "$mp/INBOX" -name '*.eml' | head -n 1)
	check "imap://: a message can be read" rd "$f"
	logins=$(tail -n +"$((before + 1))" "$DOVECOT_LOG" | grep "imap-login: Info: Login: user=<$MAIL_USER>")
	if [ -n "$logins" ] && ! echo "$logins" | grep -v ', TLS' > /dev/null; then
		ok "imap://: every login was inside TLS (Dovecot log)"
	else
		fail "imap://: every login was inside TLS (Dovecot log)" "$logins"
	fi
	mf_umount "$mp"
else
	fail "imap:// mounts (STARTTLS)" "$(cat "$T/mount.err")"
fi
# imap:// with the wrong CA: STARTTLS verification must fail too, not fall back.
MAILFS_PASSWORD=$MAIL_PASSWORD mf_mount "$mp" -o "cafile=$UNTRUSTED_CA_FILE" "imap://$MAIL_USER@127.0.0.1:$IMAP_PORT"
MF_RC=$?
mf_check_refused "imap:// STARTTLS with an untrusted certificate" "$mp" "certif|verif|trust|tls|ssl"

# ---- host name 'localhost' (certificate SAN DNS:localhost; may resolve to ::1 first)
if MAILFS_PASSWORD=$MAIL_PASSWORD mf_mount "$mp" -o "cafile=$CA_FILE" "imaps://$MAIL_USER@localhost:$IMAPS_PORT"; then
	ok "imaps://alice@localhost works (tries every address)"
	mf_umount "$mp"
else
	fail "imaps://alice@localhost works (tries every address)" "$(cat "$T/mount.err")"
fi
mf_finish
