#!/bin/bash
# Hostile and broken servers (scripted fake): stalls end in a timeout error, garbage, huge
# literal lengths, deep nesting and endless lines end in a clean error: no crash, no hang, no
# giant allocation. Before mounting: refused with one line. After mounting: the operation
# fails with EIO, the daemon stays up and says why in the status file.
. "$(dirname "$0")/../lib/common.sh"
mf_need_mailfs
mf_need_dovecot

mp=$T/mnt
TMO=3     # -o timeout=TMO for every mount here
LIMIT=30  # seconds within which any of these must give up

# ---- broken before the mount: refused cleanly and in time
before_mount() { # before_mount SCENARIO DESC
	local sc=$1 desc=$2 start took
	mf_fake "$sc" --tls || return
	start=$(date +%s)
	MAILFS_PASSWORD=secret mf_mount "$mp" -o "cafile=$CA_FILE" -o timeout=$TMO \
		"imaps://alice@127.0.0.1:$FAKE_PORT"
	MF_RC=$?
	took=$(( $(date +%s) - start ))
	# Warnings about a retry may precede the error here, so more than one line is fine.
	MF_USAGE_OK=1 mf_check_refused "$desc" "$mp"
	check_lt "$desc: gives up within ${LIMIT}s (took ${took}s)" "$took" "$LIMIT"
	mf_fake_stop
}
before_mount stall-greeting "server that never greets"
before_mount stall-login "server that never answers LOGIN"
before_mount garbage-greeting "binary garbage instead of a greeting"
before_mount garbage-list "binary garbage in the LIST answer"
before_mount huge-literal-list "LIST answer announcing a 2^64-1 byte literal"
before_mount deep-nesting-list "LIST answer with 100000 nested parentheses"
before_mount long-line "LIST answer that is a 64 MiB line"

# ---- broken after the mount: the operation fails with EIO, the daemon survives
# after_mount SCENARIO DESC WHAT [ERRNO-TEXT]: WHAT = "read" (cat a message) or "list"
# (ls INBOX); the operation must fail with ERRNO-TEXT (default: EIO's).
after_mount() {
	local sc=$1 desc=$2 what=$3 errtext=${4:-Input/output error} log=$T/daemon-$1.log start took rc f le
	mf_fake "$sc" --tls || return
	if ! MAILFS_PASSWORD=secret mf_mount_fg "$mp" "$log" -o "cafile=$CA_FILE" -o timeout=$TMO \
		"imaps://alice@127.0.0.1:$FAKE_PORT"; then
		fail "$desc: mounts" "$(tail -n 5 "$log")"
		mf_fake_stop
		return
	fi
	start=$(date +%s)
	if [ "$what" = read ]; then
		f=$(timeout -k 5 $LIMIT find "$mp/INBOX" -name '*.eml' | head -n 1)
		if [ -z "$f" ]; then
			fail "$desc: ls INBOX works (envelopes are fine)" "$(tail -n 5 "$log")"
		fi
		timeout -k 5 $LIMIT cat "$f" > "$T/out" 2> "$T/err"
		rc=$?
	else
		timeout -k 5 $LIMIT ls "$mp/INBOX" > "$T/out" 2> "$T/err"
		rc=$?
	fi
	took=$(( $(date +%s) - start ))
	if [ $rc -ge 124 ]; then
		fail "$desc: $what does not hang" "killed after ${LIMIT}s"
	elif [ $rc -ne 0 ] && grep -Eq "$errtext" "$T/err"; then
		ok "$desc: $what fails ($(grep -Eo "$errtext" "$T/err" | head -n 1)) after ${took}s"
	elif [ $rc -ne 0 ]; then
		fail "$desc: $what fails with /$errtext/" "$(cat "$T/err")"
	else
		fail "$desc: $what fails" "it succeeded: $(head -c 300 "$T/out")"
	fi
	if kill -0 "$MF_FG_PID" 2>/dev/null; then
		ok "$desc: daemon still running"
		le=$(mf_status "$mp" last_error)
		if [ -n "$le" ] && [ "$le" != none ]; then
			ok "$desc: status file says why: $le"
		else
			fail "$desc: status file says why" "last_error: $le"
		fi
		check "$desc: the mount still answers stat" timeout 10 stat "$mp/INBOX"
	else
		wait "$MF_FG_PID"
		fail "$desc: daemon still running" "exit status $?" "$(tail -n 20 "$log")"
	fi
	mf_umount "$mp"
	wait "$MF_FG_PID" 2>/dev/null
	rc=$?
	check_lt "$desc: daemon exits without a signal (status $rc)" "$rc" 128
	if grep -q 'Sanitizer\|runtime error' "$log"; then
		fail "$desc: no sanitizer report" "$(grep -A 10 'Sanitizer\|runtime error' "$log")"
	fi
	mf_fake_stop
}
after_mount stall-fetch "server that stalls on a body FETCH" read 'Input/output error|Connection timed out'
after_mount huge-literal-fetch "body FETCH answer announcing a 2^64-1 byte literal" read
after_mount bye-fetch "BYE on every body FETCH" read
after_mount deep-nesting-fetch "FETCH answers with 100000 nested parentheses" list

# Nonsense sizes: the listing may fail (EIO) or show the messages; if shown, every read must
# return exactly the server's bytes or fail with EIO, never something else.
desc="RFC822.SIZE of -5 and of 30 digits"
log=$T/daemon-bad-numbers.log
python3 "$MF_REPO/tests/fake/fakeimap.py" --dump "$T/real"
if mf_fake bad-numbers --tls && MAILFS_PASSWORD=secret mf_mount_fg "$mp" "$log" -o "cafile=$CA_FILE" \
	-o timeout=$TMO "imaps://alice@127.0.0.1:$FAKE_PORT"; then
	if timeout -k 5 $LIMIT ls "$mp/INBOX" > "$T/out" 2> "$T/err"; then
		n=$(wc -l < "$T/out")
		ok "$desc: listing succeeds, shows $n of 4 messages"
		if [ "$n" -lt 4 ]; then
			le=$(mf_status "$mp" last_error)
			if [ -n "$le" ] && [ "$le" != none ]; then
				ok "$desc: skipped messages are reported in the status file: $le"
			else
				fail "$desc: skipped messages are reported in the status file (not only in the log)" \
					"last_error: $le" "$(grep -i skip "$log" | head -n 3)"
			fi
		fi
		for f in "$mp"/INBOX/*.eml; do
			[ -e "$f" ] || continue
			id=${f%.eml}; id=${id##*.}
			if timeout -k 5 $LIMIT cat "$f" > "$T/body" 2> "$T/err"; then
				if cmp -s "$T/body" "$T/real/$id.eml" && [ "$(stat -c %s "$f")" = "$(stat -c %s "$T/body")" ]; then
					ok "$desc: uid $id reads back exactly, with a matching size"
				else
					fail "$desc: uid $id reads back exactly, with a matching size" \
						"$(cmp "$T/body" "$T/real/$id.eml" 2>&1; stat -c 'stat %s' "$f")"
				fi
			elif grep -q 'Input/output error' "$T/err"; then
				ok "$desc: uid $id fails with EIO"
			else
				fail "$desc: uid $id: exact bytes or EIO" "$(cat "$T/err")"
			fi
		done
	elif grep -q 'Input/output error' "$T/err"; then
		ok "$desc: listing fails with EIO"
	else
		fail "$desc: listing succeeds or fails with EIO" "$(cat "$T/err")"
	fi
	check "$desc: daemon still running" kill -0 "$MF_FG_PID"
	mf_umount "$mp"
	wait "$MF_FG_PID" 2>/dev/null
	rc=$?
	check_lt "$desc: daemon exits without a signal (status $rc)" "$rc" 128
else
	fail "$desc: mounts" "$(tail -n 5 "$log")"
fi
mf_fake_stop
mf_finish
