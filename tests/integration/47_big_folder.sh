#!/bin/bash
# A folder big enough (4,500 messages) that its first listing is shared by two connections
# (imap_sync.c: UID ranges that each takes from the bottom as it is ready): the listing equals
# the one a single connection makes (-o connections=1), the server saw the ranges on two
# sessions, and the message with the highest UID reads back exactly. The folder is frank's INBOX, which only this test uses, filled here and emptied at
# the end: INBOX, because it is what the mount checks and the second connection examines, so
# the listing meets no EXAMINE of a folder Dovecot has to sync first.
. "$(dirname "$0")/../lib/common.sh"
mf_need_mailfs
mf_need_dovecot

U=$BIG_USER
N=4500
box=$(dirname "$MAILDIR")/$U
url=imaps://$U@127.0.0.1:$IMAPS_PORT
rm -f "$box"/cur/* "$box"/new/*
# Written straight into the Maildir: 4,500 deliveries through doveadm would take a minute.
awk -v n="$N" -v dir="$box/cur" 'BEGIN {
	for (i = 1; i <= n; i++) {
		f = sprintf("%s/%d.M%dP1.mailfs-test:2,S", dir, 1700000000 + i, i)
		printf "From: Sender %d <s%d@example.org>\r\nTo: frank@example.org\r\n", i % 97, i % 97 > f
		printf "Subject: Big folder message %d\r\n", i > f
		printf "Date: Tue, 14 Nov 2023 %02d:%02d:00 +0000\r\n", (i / 60) % 24, i % 60 > f
		printf "Message-ID: <big-%d@example.org>\r\n\r\nBody of message %d.\r\n", i, i > f
		close(f)
	}
}'
chown -R dovecot:dovecot "$box"

# list OUT OPTS...: mount frank with OPTS and a fresh cache, save `ls -l --time-style=+%s` of
# INBOX to OUT
list() {
	local out=$1 before after
	shift
	rm -rf "$T/cache"
	if ! MAILFS_PASSWORD=$BIG_PASSWORD mf_mount "$T/mp" -o "cafile=$CA_FILE" \
		-o "cache_dir=$T/cache" "$@" "$url"; then
		fail "mount $url $*" "$(cat "$T/mount.err")"
		return 1
	fi
	# The second connection is opened after mounting; the listing shares its work with it
	# only once it is there (a late one takes what is left), so wait until the mount has
	# sent nothing for a moment.
	before=$(mf_status "$T/mp" commands)
	for _ in $(seq 50); do
		sleep 0.2
		after=$(mf_status "$T/mp" commands)
		[ "$after" = "$before" ] && break
		before=$after
	done
	ls -l --time-style=+%s "$T/mp/INBOX" > "$out"
}

# First on one connection. This also has Dovecot index the new mail and cache its envelopes,
# which it does under a lock that would make a second session wait for the first: the listing
# below then meets the folder as a long-used one.
if list "$T/one" -o connections=1; then
	check_eq "one connection lists every message" "$N" "$(grep -vc '^total' "$T/one")"
	mf_umount "$T/mp" || fail "unmount (connections=1)"
fi
mark=$T/rawlog.before
find "$RAWLOG_DIR/$U" -name '*.in' > "$mark" 2>/dev/null
if list "$T/two"; then
	check_eq "the mount opened its second connection" 2 "$(mf_status "$T/mp" connections)"
	check "two connections list the same names, sizes and dates" diff "$T/one" "$T/two"
	# The last message by UID is in the last range; it reads back as the server stores it.
	name=$(ls "$T/mp/INBOX" | sed 's/.*\.\([0-9]*\)\.eml$/\1 &/' | sort -n | tail -n 1 | cut -d' ' -f2-)
	mid=$(grep -m 1 '^Message-ID:' "$T/mp/INBOX/$name" | tr -d '\r')
	file=$(grep -l -F -x -e "$mid"$'\r' "$box"/cur/* | head -n 1)
	check "the message with the highest UID reads back exactly" cmp "$T/mp/INBOX/$name" "$file"
	mf_umount "$T/mp" || fail "unmount"
	# The ranges, shared out between two sessions (the server's raw logs).
	new_logs=$(find "$RAWLOG_DIR/$U" -name '*.in' | grep -vxFf "$mark")
	range='UID FETCH [0-9]*:[0-9]* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)'
	check "the lowest range was fetched" grep -q 'UID FETCH 1:[0-9]* (UID FLAGS' $new_logs
	check "and the highest" grep -q 'UID FETCH [0-9]*:4294967295 (UID FLAGS' $new_logs
	check_eq "the ranges were fetched on two sessions" 2 "$(grep -l "$range" $new_logs | wc -l)"
fi
rm -f "$box"/cur/* "$box"/new/*
mf_finish
