#!/bin/bash
# The mailbox changes under a mount (erin's account; the changes are made with doveadm, as
# another mail client would make them): with -o refresh=SECONDS new mail appears, expunged mail
# disappears and flag changes show in user.imap.flags, over IMAP and over POP3; names never
# depend on flags; a remount that starts from the envelope index in cache_dir/index still sees
# what changed while nothing was mounted.
. "$(dirname "$0")/../lib/common.sh"
mf_need_mailfs
mf_need_dovecot

U=$MUT_USER
state=$T/state
WAIT=20   # seconds a change may take to show with refresh=2

dove() { doveadm -c "$DOVECOT_CONF" "$@" -u "$U" >> "$T/doveadm.log" 2>&1; }
# deliver N: a new message "Fresh mail N" in erin's INBOX; its bytes in $T/fresh-N.eml
deliver() {
	printf 'From: Fresh Sender <fresh@example.org>\r\nTo: erin@example.org\r\nSubject: Fresh mail %s\r\nDate: Thu, 26 Nov 2026 1%s:00:00 +0000\r\nMessage-ID: <fresh-%s@example.org>\r\n\r\nNew mail number %s.\r\n' \
		"$1" "$1" "$1" "$1" > "$T/fresh-$1.eml"
	doveadm -c "$DOVECOT_CONF" save -u "$U" -m INBOX < "$T/fresh-$1.eml" >> "$T/doveadm.log" 2>&1
}
# wait_for DESC CMD...: poll CMD (every 0.5 s, up to WAIT s) until it succeeds
wait_for() {
	local desc=$1 i start=$SECONDS
	shift
	for i in $(seq 1 $((WAIT * 2))); do
		if "$@" > "$T/wait.out" 2>&1; then
			ok "$desc (after $((SECONDS - start)) s)"
			return 0
		fi
		sleep 0.5
	done
	fail "$desc (within ${WAIT} s)" "$(cat "$T/wait.out")" "$(ls "$mp/INBOX" 2>&1)"
	return 1
}
count_is() { [ "$(ls "$mp/INBOX" | wc -l)" = "$1" ]; }
has_file() { ls "$mp/INBOX" | grep -q -- "$1"; }
no_file() { ! ls "$mp/INBOX" | grep -q -- "$1"; }
xa() { getfattr --absolute-names --only-values -n "$1" "$2" 2>/dev/null; }
flags_have() { xa user.imap.flags "$mp/INBOX/$(ls "$mp/INBOX" | grep -F -- "$1")" | grep -qF -- "$2"; }
uid_of() { basename "$1" .eml | sed 's/.*\.//'; }
url_imap=imaps://$U@127.0.0.1:$IMAPS_PORT
url_pop3=pop3s://$U@127.0.0.1:$POP3S_PORT

# ---------------------------------------------------------------- IMAP
mp=$T/imap
if ! MAILFS_PASSWORD=$MUT_PASSWORD mf_mount "$mp" -o "cafile=$CA_FILE" -o refresh=2 \
	-o "cache_dir=$state" "$url_imap"; then
	fail "mount $url_imap -o refresh=2" "$(cat "$T/mount.err")"
	exit 1
fi
ls "$mp/INBOX" > "$T/names0"
n0=$(wc -l < "$T/names0")
check "erin's INBOX has messages to change ($n0)" test "$n0" -ge 4
flagged=$(sed -n 2p "$T/names0")    # gets \Flagged while mounted, \Answered while not
gone1=$(sed -n 3p "$T/names0")      # expunged while mounted
gone2=$(sed -n 4p "$T/names0")      # expunged while not mounted
check "the index directory is made in cache_dir" test -d "$state/index"

deliver 1
wait_for "IMAP, refresh=2: new mail appears" has_file 'Fresh mail 1'
f=$(ls "$mp/INBOX" | grep 'Fresh mail 1')
check "IMAP: the new message reads back exactly" cmp "$mp/INBOX/$f" "$T/fresh-1.eml"

dove flags add '\Flagged' mailbox INBOX uid "$(uid_of "$flagged")"
wait_for "IMAP: a flag set by another client shows in user.imap.flags" flags_have "$flagged" '\Flagged'
check "IMAP: the file keeps its name when its flags change" test -f "$mp/INBOX/$flagged"

dove expunge mailbox INBOX uid "$(uid_of "$gone1")"
wait_for "IMAP: a message expunged by another client disappears" no_file "$gone1"
check_not "IMAP: the expunged message's saved path is ENOENT" stat "$mp/INBOX/$gone1"
ls "$mp/INBOX" > "$T/names1"
mf_umount "$mp" || fail "IMAP unmount"
check "the envelope index was written to cache_dir/index" sh -c "ls '$state/index' | grep -q ."

# While nothing is mounted: new mail, a flag change, an expunge. The remount starts from the
# index, and must not serve what the index remembers.
deliver 2
dove flags add '\Answered' mailbox INBOX uid "$(uid_of "$flagged")"
dove expunge mailbox INBOX uid "$(uid_of "$gone2")"
if MAILFS_PASSWORD=$MUT_PASSWORD mf_mount "$mp" -o "cafile=$CA_FILE" -o "cache_dir=$state" "$url_imap"; then
	check "remount from the index: mail that came meanwhile is there" has_file 'Fresh mail 2'
	check "remount from the index: mail expunged meanwhile is gone" no_file "$gone2"
	check "remount from the index: flags changed meanwhile show" flags_have "$flagged" '\Answered'
	grep -vF -e "$gone2" "$T/names1" > "$T/names1-kept"
	ls "$mp/INBOX" | grep -v 'Fresh mail 2' > "$T/names2"
	check "remount: every other name is unchanged" diff "$T/names1-kept" "$T/names2"
	rm -rf "$T/ref"
	if MAILREF_PASSWORD=$MUT_PASSWORD timeout 120 python3 "$MF_PY" imap-dump 127.0.0.1 "$IMAPS_PORT" \
		"$CA_FILE" "$U" "$T/ref" > "$T/ref.out" 2>&1; then
		check "remount: mtime and user.imap.* of every message equal the server's now" \
			timeout 60 python3 "$MF_PY" meta "$mp" "$T/ref"
	else
		fail "reference dump of erin" "$(cat "$T/ref.out")"
	fi
	mf_umount "$mp" || fail "IMAP unmount after the remount"
else
	fail "remount $url_imap with the same cache_dir" "$(cat "$T/mount.err")"
fi

# ---------------------------------------------------------------- POP3
mp=$T/pop3
if MAILFS_PASSWORD=$MUT_PASSWORD mf_mount "$mp" -o "cafile=$CA_FILE" -o refresh=2 "$url_pop3"; then
	n=$(ls "$mp/INBOX" | wc -l)
	want=$(doveadm -c "$DOVECOT_CONF" mailbox status -u "$U" messages INBOX | sed 's/.*=//')
	check_eq "POP3: the mount shows every message" "$want" "$n"
	deliver 3
	wait_for "POP3, refresh=2: new mail appears" has_file 'Fresh mail 3'
	f=$(ls "$mp/INBOX" | grep 'Fresh mail 3')
	check "POP3: the new message reads back exactly" cmp "$mp/INBOX/$f" "$T/fresh-3.eml"
	old=$(ls "$mp/INBOX" | grep 'Fresh mail 1')
	dove expunge mailbox INBOX header Subject 'Fresh mail 1'
	wait_for "POP3: a message deleted by another client disappears" no_file "$old"
	check "POP3: the others are still there" has_file 'Fresh mail 3'
	mf_umount "$mp" || fail "POP3 unmount"
else
	fail "mount $url_pop3 -o refresh=2" "$(cat "$T/mount.err")"
fi
mf_finish
