#!/bin/bash
# The mounted tree: folders (nested, mUTF-7, \Noselect parent), file names, permissions,
# ownership, xattrs, the status file, and that every kind of write fails with EROFS.
. "$(dirname "$0")/../lib/common.sh"
mf_need_mailfs
mf_need_ref

mp=$T/mnt
if ! mf_mount_alice "$mp"; then
	fail "mount imaps://alice" "$(cat "$T/mount.err")"
	exit 1
fi
ok "mount imaps://alice (daemonized, exit 0)"
if [ ! -d "$mp/INBOX" ]; then
	# Every check below would fail, or worse pass on an empty tree: one clear failure instead.
	fail "the mount shows INBOX (nothing else here can be checked without it)" "$(ls -la "$mp" 2>&1)"
	exit 1
fi

# ---- folders
check "folder tree equals the server's LIST" timeout 60 python3 "$MF_PY" tree "$mp" "$MF_REF"
check "INBOX is a directory" test -d "$mp/INBOX"
check "nested folder Archive/2025" test -d "$mp/Archive/2025"
check "nested folder Work/Projects" test -d "$mp/Work/Projects"
check "mUTF-7 folder shows as UTF-8 'Αρχεία'" test -d "$mp/Αρχεία"
check "\\Noselect parent Lists is a directory" test -d "$mp/Lists"
check "\\Noselect parent holds its child Lists/debian" test -d "$mp/Lists/debian"
check_eq "\\Noselect parent Lists has no files" "0" "$(find "$mp/Lists" -maxdepth 1 -type f 2>&1; echo $?)"
check "empty folder Empty is a directory" test -d "$mp/Empty"
check_eq "empty folder has no entries" "0" "$(ls -A "$mp/Empty" 2>&1; echo $?)"

# ---- names
check "every name is safe (UTF-8, no controls/bidi, <= 255 bytes, unique, format)" \
	timeout 60 python3 "$MF_PY" names "$mp"
expect_name() { # expect_name DESC DIR PYTHON-REGEX (on the names in DIR)
	local desc=$1 dir=$2 re=$3 hits
	hits=$(timeout 30 python3 -c '
import os, re, sys
n = [x for x in os.listdir(sys.argv[1]) if re.fullmatch(sys.argv[2], x)]
print(len(n)); [print(x) for x in n]' "$dir" "$re" 2>&1)
	if [ "$(echo "$hits" | head -n 1)" = 1 ]; then
		ok "$desc: $(echo "$hits" | sed -n 2p)"
	else
		fail "$desc" "regex: $re" "matches: $hits" "names: $(ls "$dir" | head -n 40)"
	fi
}
I=$mp/INBOX
expect_name "plain message, Date converted to UTC" "$I" '2025-11-26 1042 Alice Smith - Lunch on Thursday.*\.\d+\.eml'
expect_name "RFC 2047 Q UTF-8 subject and sender decoded" "$I" '2025-11-20 0815 Renée Dubois - Café meeting — résumé\.\d+\.eml'
expect_name "RFC 2047 B UTF-8 subject with emoji" "$I" '2025-11-15 1730 Jürgen Weiß - Grüße aus München 🎉\.\d+\.eml'
expect_name "RFC 2047 B ISO-8859-7 (Greek) subject and sender" "$I" '2025-11-19 1000 Γιώργος Παπαδόπουλος - Συνάντηση την Παρασκευή\.\d+\.eml'
expect_name "'/' in a subject stays in one name" "$I" '2025-11-25 2105 Bob Jones - Q3.Q4 budget and.or forecast\.\d+\.eml'
expect_name "sender with only an address" "$I" '2025-11-13 2210 bob(@example\.net)? - Re: keys\.\d+\.eml'
expect_name "missing Date falls back to INTERNALDATE" "$I" '\d{4}-\d\d-\d\d \d{4} Carol White - Note without a date\.\d+\.eml'
expect_name "missing Subject" "$I" '2025-11-14 0801 Dave Miller - .*\.\d+\.eml'
expect_name "very long subject is cut, id kept" "$I" '2025-11-09 2020 Frank Long - This subject is deliberately far too long.*\.\d+\.eml'
expect_name "hostile subject (RLO, BEL, TAB) made safe" "$I" '2025-11-08 0333 .*invoice.*fdp\.exe.*\.\d+\.eml'
expect_name "8-bit ISO-8859-7 message in Αρχεία" "$mp/Αρχεία" '2025-10-30 1420 Αννα - Αρχείο 2024\.\d+\.eml'
expect_name "subject that looks like a path" "$mp/Work" '2025-11-18 1300 Heidi Lang - .*etc.*passwd is not a subject\.\d+\.eml'
n=$(ls "$I" | grep -c '^2025-11-07 0900 Calendar - Meeting reminder\.[0-9]*\.eml$')
check_eq "two messages with the same date/sender/subject get two names" 2 "$n"
long=$(ls "$I" | grep 'Frank Long')
check_lt "long name fits NAME_MAX (${#long} chars)" "$(printf '%s' "$long" | wc -c)" 256
uidname=$(ls "$I" | grep 'Lunch on Thursday')

# ---- permissions and ownership (the mounting user is root here)
bad=$(find "$mp" -mindepth 1 -type f ! -name .mailfs-status ! -perm 0600 -printf '%m %p\n' | head)
check_eq "message files are 0600" "" "$bad"
bad=$(find "$mp" -type d ! -perm 0700 -printf '%m %p\n' | head)
check_eq "directories are 0700" "" "$bad"
bad=$(find "$mp" \( ! -uid "$(id -u)" -o ! -gid "$(id -g)" \) -printf '%u:%g %p\n' | head)
check_eq "everything is owned by the mounting user" "" "$bad"
check "every message: mtime is its INTERNALDATE; user.imap.uid, uidvalidity, flags (no \\Recent) are the server's" \
	timeout 120 python3 "$MF_PY" meta "$mp" "$MF_REF"
# Copies are the user's own files: cp -a and rsync -a keep the owner-writable modes.
cp -a "$I/$uidname" "$T/copy.eml" && mkdir -p "$T/copydir" && cp -a "$mp/Work" "$T/copydir/"
check_eq "cp -a copies of a message and a folder are 600 and 700 (writable by their owner)" \
	"600 700" "$(stat -c %a "$T/copy.eml") $(stat -c %a "$T/copydir/Work")"

# ---- xattrs
f=$I/$uidname
getfattr -d "$f" > "$T/xattrs" 2>&1
for a in user.mail.from user.mail.to user.mail.subject user.mail.date user.mail.message_id \
	user.imap.uid user.imap.uidvalidity user.imap.flags user.imap.internaldate; do
	if grep -q "^$a=" "$T/xattrs"; then ok "getfattr -d shows $a"; else fail "getfattr -d shows $a" "$(cat "$T/xattrs")"; fi
done
xa() { getfattr --absolute-names --only-values -n "$1" "$2" 2>/dev/null; }
uid=${uidname%.eml}
uid=${uid##*.}
check_eq "user.imap.uid equals the id in the name" "$uid" "$(xa user.imap.uid "$f")"
want_uv=$(python3 -c 'import json,sys; print([f["uidvalidity"] for f in json.load(open(sys.argv[1]))["folders"] if f["path"]=="INBOX"][0])' "$MF_REF/manifest.json")
check_eq "user.imap.uidvalidity equals the server's" "$want_uv" "$(xa user.imap.uidvalidity "$f")"
case $(xa user.imap.flags "$f") in *'\Seen'*) ok "user.imap.flags has \\Seen for a read message" ;; *) fail "user.imap.flags has \\Seen" "$(xa user.imap.flags "$f")" ;; esac
case $(xa user.mail.from "$f") in *"Alice Smith"*alice@example.org*) ok "user.mail.from" ;; *) fail "user.mail.from" "$(xa user.mail.from "$f")" ;; esac
check_eq "user.mail.subject" "Lunch on Thursday?" "$(xa user.mail.subject "$f")"
check_eq "user.mail.message_id" "<20251126104207.4711@example.org>" "$(xa user.mail.message_id "$f")"
g=$(ls "$I" | grep 'Συνάντηση')
check_eq "user.mail.subject is decoded UTF-8 (ISO-8859-7 source)" "Συνάντηση την Παρασκευή" "$(xa user.mail.subject "$I/$g")"
check_not "setfattr is refused" setfattr -n user.mail.subject -v x "$f"

# ---- status file
st=$mp/.mailfs-status
check "status file .mailfs-status exists at the root" test -f "$st"
rd "$st" > "$T/status" 2>&1
for k in backend bytes_in bytes_out connections commands round_trips bodies_whole bodies_partial cache_hits \
	cache_misses last_error activity; do
	if grep -q "^$k: " "$T/status"; then ok "status file has $k"; else fail "status file has $k" "$(cat "$T/status")"; fi
done
check_not "status file is read-only" sh -c "echo x > '$st'"
check_eq "status file: backend is imap" imap "$(mf_status "$mp" backend)"
check "status file: commands counted by kind (command_uid_fetch or command_fetch)" \
	grep -Eq '^command_(uid_)?fetch: [1-9]' "$T/status"
check_eq "status file: activity is idle when nothing is going on" idle "$(mf_status "$mp" activity)"
# The status file's name cannot clash with a folder: IMAP folder names starting with "." are
# shown with the dot escaped (see include/name.h), so no folder can be called .mailfs-status.

# ---- writes fail with EROFS
erofs() { # erofs DESC CMD...: fails, and says "Read-only file system"
	local desc=$1
	shift
	if "$@" > "$T/w.out" 2>&1; then
		fail "$desc fails" "succeeded: $*"
	elif grep -q 'Read-only file system' "$T/w.out"; then
		ok "$desc fails with EROFS"
	else
		fail "$desc fails with EROFS" "$(cat "$T/w.out")"
	fi
}
erofs "touch of a new file" touch "$I/new-file"
erofs "touch of an existing message" touch "$f"
erofs "echo > an existing message" sh -c "echo x > '$f'"
erofs "echo >> an existing message" sh -c "echo x >> '$f'"
erofs "mkdir" mkdir "$I/newdir"
erofs "rmdir of a folder" rmdir "$mp/Empty"
erofs "rm of a message" rm -f "$f"
erofs "mv (rename) of a message" mv "$f" "$I/renamed.eml"
erofs "chmod" chmod 0644 "$f"
erofs "ln -s" ln -s x "$I/link"
erofs "truncate" truncate -s 0 "$f"
check "the message is still there after all that" test -f "$f"

if mf_umount "$mp"; then ok "fusermount3 -u unmounts"; else fail "fusermount3 -u unmounts"; fi
mf_finish
