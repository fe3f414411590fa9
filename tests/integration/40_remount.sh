#!/bin/bash
# Stable identity: the same names after a remount, a saved path works on a fresh mount without
# listing first, and the pool size does not change what is seen. The state kept between mounts
# (cache_dir/index: envelopes; cache_dir/bodies: bodies that were read) makes a remount cheap,
# and holds only what the user read, not what read-ahead fetched.
. "$(dirname "$0")/../lib/common.sh"
mf_need_mailfs
mf_need_ref

mp=$T/mnt
mf_mount_alice "$mp" || { fail "first mount" "$(cat "$T/mount.err")"; exit 1; }
(cd "$mp" && timeout 120 find . | sort) > "$T/names1"
(cd "$mp" && timeout 120 find . -type f ! -name .mailfs-status -printf '%s %p\n' | sort -k2) > "$T/sizes1"
(cd "$mp" && timeout 120 find . -printf '%i %p\n' | sort -k2) > "$T/inodes1"
deep=$(grep -m 1 '^\./Archive/2025/.*\.eml$' "$T/names1")
greek=$(grep -m 1 '^\./Αρχεία/.*\.eml$' "$T/names1")
big=$(grep -m 1 'Server logs from last night' "$T/names1")
mf_umount "$mp" || fail "unmount after the first listing"

mf_mount_alice "$mp" || { fail "second mount" "$(cat "$T/mount.err")"; exit 1; }
# No ls first: the kernel has never seen these directories in this mount.
check "stat of a saved deep path on a fresh mount ($deep)" timeout 60 stat "$mp/$deep"
check "cat of a saved path in a mUTF-7 folder on a fresh mount" \
	cmp <(rd "$mp/$greek") "$MF_REF/bodies/Αρχεία/$(basename "$greek" .eml | sed 's/.*\.//').eml"
check "head of the 1 MB message by its saved path on a fresh mount" \
	timeout 60 sh -c "head -c 100 '$mp/$big' | grep -q '^From: Ops Robot'"
check_not "a name that never existed is ENOENT" timeout 60 stat "$mp/INBOX/2025-01-01 0000 Nobody - Nothing.999999.eml"
check_not "a folder that never existed is ENOENT" timeout 60 stat "$mp/NoSuchFolder"
(cd "$mp" && timeout 120 find . | sort) > "$T/names2"
(cd "$mp" && timeout 120 find . -type f ! -name .mailfs-status -printf '%s %p\n' | sort -k2) > "$T/sizes2"
(cd "$mp" && timeout 120 find . -printf '%i %p\n' | sort -k2) > "$T/inodes2"
check "names identical across remounts" diff "$T/names1" "$T/names2"
check "sizes identical across remounts" diff "$T/sizes1" "$T/sizes2"
check "inode numbers identical across remounts (rsync/backup friendly)" diff "$T/inodes1" "$T/inodes2"
mf_umount "$mp" || fail "unmount after the second listing"

# ---- the default state directory: $XDG_CACHE_HOME/mailfs/<account>/{index,bodies}
check "default cache_dir: an envelope index under \$XDG_CACHE_HOME/mailfs/*/index" \
	sh -c "ls -d '$XDG_CACHE_HOME'/mailfs/*/index/* > /dev/null"

# ---- -o cache_dir: a remount starts from the index and from the bodies read before
state=$T/state
mf_mount_alice "$mp" -o "cache_dir=$state" || fail "mount with cache_dir" "$(cat "$T/mount.err")"
i0=$(mf_status "$mp" bytes_in)
(cd "$mp" && timeout 120 ls -lR > /dev/null)
i1=$(mf_status "$mp" bytes_in)
# Three messages read in a row (read-ahead may fetch more behind them: those stay in memory).
ls "$mp/INBOX" | grep -v 'Server logs' | head -n 3 > "$T/read3"
while IFS= read -r f; do rd "$mp/INBOX/$f" > /dev/null; done < "$T/read3"
mf_umount "$mp" || fail "unmount (cache_dir)"
check "cache_dir/index holds the envelope index" sh -c "ls '$state/index' | grep -q ."
nb=$(find "$state/bodies" -type f ! -name '.*' 2>/dev/null | wc -l)
check_eq "cache_dir/bodies holds exactly the 3 bodies that were read (not read-ahead)" 3 "$nb"
mf_umount "$mp" 2>/dev/null
mf_mount_alice "$mp" -o "cache_dir=$state" || fail "remount with cache_dir" "$(cat "$T/mount.err")"
j0=$(mf_status "$mp" bytes_in)
(cd "$mp" && timeout 120 ls -lR > /dev/null)
j1=$(mf_status "$mp" bytes_in)
echo "# ls -lR received $((i1 - i0)) bytes on the first mount, $((j1 - j0)) after a remount"
check_lt "remount: ls -lR from the index receives less than half ($((j1 - j0)) of $((i1 - i0)) bytes)" \
	"$((2 * (j1 - j0)))" "$((i1 - i0))"
j0=$(mf_status "$mp" bytes_in)
while IFS= read -r f; do rd "$mp/INBOX/$f" > /dev/null; done < "$T/read3"
j1=$(mf_status "$mp" bytes_in)
check_eq "remount: the 3 bodies read before come from cache_dir (0 bytes received)" 0 "$((j1 - j0))"
uid=$(sed -n 1p "$T/read3"); uid=${uid%.eml}; uid=${uid##*.}
check "remount: a body from cache_dir is the server's" cmp <(rd "$mp/INBOX/$(sed -n 1p "$T/read3")") "$MF_REF/bodies/INBOX/$uid.eml"
mf_umount "$mp" || fail "unmount (cache_dir, second)"

# One connection, then eight: same names, same bytes.
for n in 1 8; do
	if mf_mount_alice "$mp" -o "connections=$n"; then
		ok "mount with -o connections=$n"
		(cd "$mp" && timeout 120 find . | sort) > "$T/names-c$n"
		check "connections=$n: same names" diff "$T/names1" "$T/names-c$n"
		rel=${deep#./}
		uid=$(basename "$rel" .eml); uid=${uid##*.}
		check "connections=$n: contents of $rel" cmp <(rd "$mp/$rel") "$MF_REF/bodies/Archive/2025/$uid.eml"
		# Parallel readers on one mount (more readers than connections).
		(cd "$mp" && timeout 300 find . -type f -name '*.eml' -print0 | xargs -0 -P 6 -n 3 cat > /dev/null 2> "$T/par.err")
		check_eq "connections=$n: 6 parallel readers succeed" "0 " "$? $(cat "$T/par.err")"
		mf_umount "$mp" || fail "unmount (connections=$n)"
	else
		fail "mount with -o connections=$n" "$(cat "$T/mount.err")"
	fi
done
mf_finish
