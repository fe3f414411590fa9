#!/bin/bash
# Contents: every file is byte-for-byte the server's BODY[] (fetched independently with
# imaplib), sizes are exact, listing does not fetch bodies, partial reads are partial, and
# the usual tools (tar, cp -r, rsync -a, grep -r) see exactly the mail. Nothing is marked read.
. "$(dirname "$0")/../lib/common.sh"
mf_need_mailfs
mf_need_ref

flags_before=$(mf_server_flags)
mp=$T/mnt
if ! mf_mount_alice "$mp"; then
	fail "mount imaps://alice" "$(cat "$T/mount.err")"
	exit 1
fi
if [ -z "$(ls "$mp/INBOX" 2>/dev/null)" ]; then
	# Most checks below compare counters before and after: on an empty tree they would pass.
	fail "the mount shows INBOX with messages (nothing here can be checked without them)" "$(ls -la "$mp" 2>&1)"
	exit 1
fi

# ---- metadata only: ls -l / stat / find must not fetch a single body
# (A size probe, BODY.PEEK[]<size-1.2>, is allowed: it is how exact sizes can be checked.)
b0=$(mf_status "$mp" bodies_whole); i0=$(mf_status "$mp" bytes_in)
mf_rawlog_mark
timeout 120 ls -lR "$mp" > "$T/ls-lR" 2>&1
timeout 120 find "$mp" -type f -exec stat -c '%s %n' {} + > "$T/stat-all" 2>&1
timeout 120 getfattr -R -d "$mp" > /dev/null 2>&1
b1=$(mf_status "$mp" bodies_whole); i1=$(mf_status "$mp" bytes_in)
check_eq "ls -lR + stat + getfattr of everything fetch no whole body (status file)" "$b0" "$b1"
mf_rawlog_since > "$T/rawlog-listing"
check "the listing sent commands (Dovecot rawlog works)" grep -q 'EXAMINE' "$T/rawlog-listing"
check_eq "ls -lR + stat + getfattr send no body FETCH beyond 2-byte size probes (rawlog)" \
	"" "$(mf_body_fetches < "$T/rawlog-listing" | sort | uniq -c)"
total=$(find "$MF_REF/bodies" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
check_lt "listing everything read $((i1 - i0)) bytes, far less than the mail ($total)" \
	"$((i1 - i0))" "$((total / 4))"

# ---- the expected tree: the server's bytes under the mount's names
if timeout 120 python3 "$MF_PY" expect "$mp" "$MF_REF" "$T/expect" > "$T/expect.out" 2>&1; then
	ok "every server message appears exactly once, and nothing else"
else
	fail "every server message appears exactly once, and nothing else" "$(cat "$T/expect.out")"
fi
nfiles=$(wc -l < "$T/expect.list")
check "found the demo messages ($nfiles)" test "$nfiles" -ge 20 || exit 1

# ---- a partial read of the 1 MB message moves far less than 1 MB (fresh file, cold cache)
big=$(grep 'Server logs from last night' "$T/expect.list" | head -n 1)
i0=$(mf_status "$mp" bytes_in); w0=$(mf_status "$mp" bodies_whole)
timeout -k 5 60 head -c 1000 "$mp/$big" > "$T/head1000"
i1=$(mf_status "$mp" bytes_in); w1=$(mf_status "$mp" bodies_whole)
check "head -c 1000 of the 1 MB message returns its first 1000 bytes" \
	cmp "$T/head1000" <(head -c 1000 "$T/expect/$big")
check_lt "head -c 1000 of the 1 MB message transferred $((i1 - i0)) bytes (< 512 KiB)" \
	"$((i1 - i0))" 524288
check_eq "head -c 1000 did not fetch the whole body" "$w0" "$w1"
# The tail, also without reading what comes before.
i0=$(mf_status "$mp" bytes_in)
timeout -k 5 60 tail -c 1000 "$mp/$big" > "$T/tail1000"
i1=$(mf_status "$mp" bytes_in)
check "tail -c 1000 of the 1 MB message returns its last 1000 bytes" \
	cmp "$T/tail1000" <(tail -c 1000 "$T/expect/$big")
echo "# tail -c 1000 of the 1 MB message transferred $((i1 - i0)) bytes"
# Random access in the middle (dd with skip), compared with the server's bytes.
timeout -k 5 60 dd if="$mp/$big" bs=1 skip=500000 count=3000 status=none > "$T/mid" 2>&1
check "dd from the middle of the 1 MB message" \
	cmp "$T/mid" <(dd if="$T/expect/$big" bs=1 skip=500000 count=3000 status=none)

# ---- every message: cat == server BODY[], stat size == bytes read
while IFS= read -r rel; do
	if rd "$mp/$rel" > "$T/cat.out" 2> "$T/cat.err"; then
		if cmp -s "$T/cat.out" "$T/expect/$rel"; then
			ok "cat equals the server's BODY[]: $rel"
		else
			fail "cat equals the server's BODY[]: $rel" \
				"$(cmp "$T/cat.out" "$T/expect/$rel" 2>&1; stat -c 'mount %s' "$T/cat.out"; stat -c 'server %s' "$T/expect/$rel")"
		fi
	else
		fail "cat equals the server's BODY[]: $rel" "cat failed: $(cat "$T/cat.err")"
	fi
	s=$(stat -c %s "$mp/$rel")
	n=$(stat -c %s "$T/cat.out")
	check_eq "stat size equals bytes read ($n): $rel" "$n" "$s"
done < "$T/expect.list"

# A second read of everything is served from cache: no more bodies fetched.
w0=$(mf_status "$mp" bodies_whole); p0=$(mf_status "$mp" bodies_partial)
while IFS= read -r rel; do rd "$mp/$rel" > /dev/null 2>&1; done < "$T/expect.list"
w1=$(mf_status "$mp" bodies_whole); p1=$(mf_status "$mp" bodies_partial)
check_eq "a second cat of everything fetches nothing again" "$w0 $p0" "$w1 $p1"

# ---- grep -r finds a word that only occurs in one body
hits=$(cd "$mp" && timeout 120 grep -rl 'periwinkle-octopus' . 2>&1)
check_eq "grep -r finds the body-only word in exactly one file" \
	"./$(grep 'Garden plans' "$T/expect.list")" "$hits"

# ---- tar, cp -r, rsync -a
mkdir -p "$T/tar"
timeout 300 tar -C "$mp" --exclude=./.mailfs-status -cf - . 2> "$T/tar.err" | tar -C "$T/tar" -xf - 2>> "$T/tar.err"
rc=${PIPESTATUS[0]}
check_eq "tar c of the mount exits 0" 0 "$rc"
check_eq "tar reports nothing (no 'file shrank', no padding)" "" "$(cat "$T/tar.err")"
check "tar x gives files identical to the server's" diff -r "$T/expect" "$T/tar"
timeout 300 tar -C "$mp" -cf /dev/null . > "$T/tar2.err" 2>&1
check_eq "tar c of the whole mount (with .mailfs-status) exits 0 and is quiet" "0 " "$? $(cat "$T/tar2.err")"

timeout 300 cp -r "$mp" "$T/cp" > "$T/cp.err" 2>&1
check_eq "cp -r of the mount exits 0" "0 " "$? $(cat "$T/cp.err")"
check "cp -r copy is identical to the server's bytes" diff -r -x .mailfs-status "$T/expect" "$T/cp"
timeout 300 rsync -a "$mp/" "$T/rsync/" > "$T/rsync.err" 2>&1
check_eq "rsync -a of the mount exits 0" "0 " "$? $(cat "$T/rsync.err")"
check "rsync -a copy is identical to the server's bytes" diff -r -x .mailfs-status "$T/expect" "$T/rsync"
mt=$(timeout 60 rsync -a --dry-run --itemize-changes --exclude=.mailfs-status "$mp/" "$T/rsync/" 2>&1)
check_eq "a second rsync -a finds nothing to do (stable sizes and mtimes)" "" "$mt"

# ---- nothing was marked \Seen (or changed at all) on the server
flags_after=$(mf_server_flags)
if [ "$flags_before" = "$flags_after" ]; then
	ok "server flags unchanged after reading everything (doveadm fetch flags)"
else
	fail "server flags unchanged after reading everything" "$(diff <(echo "$flags_before") <(echo "$flags_after"))"
fi
check_eq "status file last_error is none" "none" "$(mf_status "$mp" last_error)"

if mf_umount "$mp"; then ok "unmount"; else fail "unmount"; fi

# ---- a whole-file read goes in large pipelined chunks, not one FETCH per kernel read
if mf_mount_alice "$mp" -o "cache_dir=$T/cold"; then
	stat "$mp/$big" > /dev/null   # the folder listing is not what is measured here
	r0=$(mf_status "$mp" round_trips)
	mf_rawlog_mark
	rd "$mp/$big" > "$T/big.out"
	r1=$(mf_status "$mp" round_trips)
	check "cat of the 1 MB message on a cold mount gives the server's bytes" cmp "$T/big.out" "$T/expect/$big"
	n=$(mf_rawlog_since | mf_body_fetches | wc -l)
	size=$(stat -c %s "$T/expect/$big")
	check "cat of the 1 MB message: $n body FETCHes, at least 256 KiB each on average" \
		test "$n" -ge 1 -a "$n" -le $((size / 262144 + 1))
	check "cat of the 1 MB message: $((r1 - r0)) round trips for $n FETCHes" test $((r1 - r0)) -le "$n"
	mf_umount "$mp" || fail "unmount (cold cache)"
else
	fail "mount with an empty cache_dir" "$(cat "$T/mount.err")"
fi

# ---- with no disk cache and no memory cache (cache_size=0, memory_cache=0) reads are still
# exact, and nothing is written to cache_dir/bodies.
if mf_mount_alice "$mp" -o "cache_dir=$T/nocache" -o cache_size=0 -o memory_cache=0; then
	ok "mount with cache_size=0 memory_cache=0"
	bad=0
	while IFS= read -r rel; do
		rd "$mp/$rel" | cmp -s - "$T/expect/$rel" || { bad=1; echo "# differs: $rel"; }
		rd "$mp/$rel" | cmp -s - "$T/expect/$rel" || { bad=1; echo "# differs on a second read: $rel"; }
	done < <(sed -n '1,6p' "$T/expect.list"; echo "$big")
	check_eq "cache_size=0 memory_cache=0: seven messages (one of 1 MB) read twice are exact both times" 0 "$bad"
	mf_umount "$mp" || fail "unmount (no caches)"
	check_eq "cache_size=0: no body was written to cache_dir/bodies" "" "$(find "$T/nocache" -path '*bodies*' -type f 2>/dev/null)"
else
	fail "mount with cache_size=0 memory_cache=0" "$(cat "$T/mount.err")"
fi
mf_finish
