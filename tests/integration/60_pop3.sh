#!/bin/bash
# The read-only POP3 backend: one INBOX/ directory, every file equal to what the server sends
# for it (TOP n <all>, un-dot-stuffed, without the CRLF added only to frame a message that
# lacks a final line break), exact sizes, and nothing deleted or marked read.
. "$(dirname "$0")/../lib/common.sh"
mf_need_mailfs
mf_need_ref_pop3

flags_before=$(mf_server_flags)
mp=$T/mnt
if ! MAILFS_PASSWORD=$MAIL_PASSWORD mf_mount "$mp" -o "cafile=$CA_FILE" "pop3s://$MAIL_USER@127.0.0.1:$POP3S_PORT"; then
	fail "mount pop3s://alice" "$(cat "$T/mount.err")"
	exit 1
fi
ok "mount pop3s://alice"
check_eq "the root holds INBOX (and the status file) only" "INBOX" "$(ls "$mp")"
check_eq "status file says backend: pop3" "pop3" "$(mf_status "$mp" backend)"
check "every name is safe" timeout 60 python3 "$MF_PY" names "$mp"
if timeout 120 python3 "$MF_PY" expect "$mp" "$MF_REF_POP3" "$T/expect" > "$T/expect.out" 2>&1; then
	ok "every message (by UIDL) appears exactly once"
else
	fail "every message (by UIDL) appears exactly once" "$(cat "$T/expect.out")"
fi
bad=$(find "$mp" -mindepth 1 -type f ! -name .mailfs-status ! -perm 0600 | head)
check_eq "files are 0600" "" "$bad"
check_eq "directories are 0700" "" "$(find "$mp" -type d ! -perm 0700 | head)"

while IFS= read -r rel; do
	if rd "$mp/$rel" > "$T/cat.out" 2> "$T/cat.err" && cmp -s "$T/cat.out" "$T/expect/$rel"; then
		ok "cat equals the server's message: $rel"
	else
		fail "cat equals the server's message: $rel" "$(cat "$T/cat.err"; cmp "$T/cat.out" "$T/expect/$rel" 2>&1)"
	fi
	check_eq "stat size equals bytes read: $rel" "$(stat -c %s "$T/cat.out")" "$(stat -c %s "$mp/$rel")"
done < "$T/expect.list"

f=$(head -n 1 "$T/expect.list")
touch "$mp/$f" 2> "$T/w.err"
if grep -q 'Read-only' "$T/w.err"; then ok "writes fail with EROFS"; else fail "writes fail with EROFS" "$(cat "$T/w.err")"; fi
mkdir -p "$T/tar"
timeout 300 tar -C "$mp" --exclude=./.mailfs-status -cf - . 2> "$T/tar.err" | tar -C "$T/tar" -xf -
check_eq "tar c is quiet" "" "$(cat "$T/tar.err")"
check "tar x gives the server's bytes" diff -r "$T/expect" "$T/tar"
mf_umount "$mp" || fail "unmount"

# pop3:// upgrades with STLS.
if MAILFS_PASSWORD=$MAIL_PASSWORD mf_mount "$mp" -o "cafile=$CA_FILE" "pop3://$MAIL_USER@127.0.0.1:$POP3_PORT"; then
	ok "pop3:// mounts (STLS)"
	rel=$(sed -n 2p "$T/expect.list")
	check "pop3://: a message reads back exactly" cmp <(rd "$mp/$rel") "$T/expect/$rel"
	mf_umount "$mp"
else
	fail "pop3:// mounts (STLS)" "$(cat "$T/mount.err")"
fi

flags_after=$(mf_server_flags)
if [ "$flags_before" = "$flags_after" ]; then
	ok "server flags unchanged after reading everything over POP3"
else
	fail "server flags unchanged after reading everything over POP3 (Dovecot sets \\Seen on RETR unless the client avoids it)" \
		"$(diff <(echo "$flags_before") <(echo "$flags_after") | head -n 20)"
fi
n=$(doveadm -c "$DOVECOT_CONF" mailbox status -u "$MAIL_USER" messages INBOX 2>&1)
check_eq "INBOX still has every message" "INBOX messages=$(wc -l < "$T/expect.list")" "$n"
mf_finish
