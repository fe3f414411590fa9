#!/bin/bash
# Stable identity: the same names after a remount, a saved path works on a fresh mount without
# listing first, and the pool size does not change what is seen.
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
