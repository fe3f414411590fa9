#!/bin/bash
# A server whose RFC822.SIZE lies (100 bytes too big or too small for even UIDs). The mount
# must never return short or zero-padded data silently: each file either reads back exactly
# the server's bytes with a matching stat size, or the read fails with EIO and the status
# file says why.
. "$(dirname "$0")/../lib/common.sh"
mf_need_mailfs
mf_need_dovecot

mp=$T/mnt
python3 "$MF_REPO/tests/fake/fakeimap.py" --dump "$T/real"

for sc in size-bigger size-smaller; do
	mf_fake "$sc" --tls || continue
	if ! MAILFS_PASSWORD=secret mf_mount "$mp" -o "cafile=$CA_FILE" -o timeout=10 "imaps://alice@127.0.0.1:$FAKE_PORT"; then
		fail "$sc: mounts" "$(cat "$T/mount.err")"
		mf_fake_stop
		continue
	fi
	ok "$sc: mounts"
	check_eq "$sc: INBOX lists the fake's 4 messages" 4 "$(ls "$mp/INBOX" 2>&1 | grep -c '\.eml$')"
	for f in "$mp"/INBOX/*.eml; do
		[ -e "$f" ] || continue
		id=${f%.eml}; id=${id##*.}
		name="$sc: uid $id"
		if rd "$f" > "$T/out" 2> "$T/err"; then
			if cmp -s "$T/out" "$T/real/$id.eml"; then
				ok "$name: read returns exactly the server's bytes"
			else
				fail "$name: read returns exactly the server's bytes (no short or padded data)" \
					"$(cmp "$T/out" "$T/real/$id.eml" 2>&1; stat -c 'read %s bytes' "$T/out"; stat -c 'server has %s bytes' "$T/real/$id.eml")"
			fi
			check_eq "$name: stat size after the read equals the bytes" \
				"$(stat -c %s "$T/real/$id.eml")" "$(stat -c %s "$f")"
		else
			if grep -q 'Input/output error' "$T/err"; then
				ok "$name: read fails with EIO"
			else
				fail "$name: read fails with EIO (if it fails)" "$(cat "$T/err")"
			fi
			le=$(mf_status "$mp" last_error)
			if [ -n "$le" ] && [ "$le" != none ]; then
				ok "$name: status file gives the reason: $le"
			else
				fail "$name: status file gives the reason" "last_error: $le"
			fi
		fi
	done
	# tar sees what cat saw: no "File shrank ... padding with zeros".
	timeout 120 tar -C "$mp" --exclude=./.mailfs-status -cf /dev/null . 2> "$T/tar.err"
	if grep -q 'shrank\|padding' "$T/tar.err"; then
		fail "$sc: tar never pads with zeros" "$(cat "$T/tar.err")"
	else
		ok "$sc: tar never pads with zeros"
	fi
	pid=$(mf_daemon_pid "$mp")
	check "$sc: daemon still running" test -n "$pid"
	mf_umount "$mp" || fail "$sc: unmount"
	mf_fake_stop
done
mf_finish
