#!/bin/bash
# The command line itself: --version, --help, and usage errors (no server needed).
. "$(dirname "$0")/../lib/common.sh"
mf_need_mailfs

out=$(timeout 10 "$MAILFS" -V 2>&1); rc=$?
check_eq "-V exits 0" 0 "$rc"
case $out in
*0.*) ok "-V prints a version ($out)" ;;
*) fail "-V prints a version" "$out" ;;
esac
out2=$(timeout 10 "$MAILFS" --version 2>&1)
check_eq "--version prints the same as -V" "$out" "$out2"

help=$(timeout 10 "$MAILFS" -h 2>&1); rc=$?
check_eq "-h exits 0" 0 "$rc"
for word in imaps:// imap:// pop3s:// pop3:// cafile password_command allow_plaintext connections timeout \
	refresh cache_dir cache_size memory_cache apop MAILFS_PASSWORD fusermount3 MOUNTPOINT; do
	case $help in
	*"$word"*) ok "-h mentions $word" ;;
	*) fail "-h mentions $word" "$help" ;;
	esac
done
help2=$(timeout 10 "$MAILFS" --help 2>&1)
check_eq "--help prints the same as -h" "$help" "$help2"

# Usage errors: non-zero, one line, nothing mounted, and quickly (no network involved).
mp=$T/mnt
mkdir -p "$mp"
refuse() { # refuse DESC PATTERN ARGS...: the arguments are rejected
	local desc=$1 pattern=$2
	shift 2
	MAILFS_PASSWORD=x timeout -k 5 20 "$MAILFS" "$@" < /dev/null > "$T/mount.out" 2> "$T/mount.err"
	MF_RC=$?
	mf_check_refused "$desc" "$mp" "$pattern"
}
# Missing arguments may print the whole usage text.
MF_USAGE_OK=1 refuse "no arguments" "usage|mountpoint|url"
MF_USAGE_OK=1 refuse "URL without mount point" "usage|mountpoint" imaps://alice@127.0.0.1
refuse "unknown scheme" "scheme|url|unsupported" http://alice@127.0.0.1 "$mp"
refuse "bad port" "port|url" imaps://alice@127.0.0.1:99999 "$mp"
refuse "empty host" "host|url" imaps://alice@ "$mp"
refuse "bad connections= value" "connections" -o connections=0 imaps://alice@127.0.0.1 "$mp"
refuse "bad timeout= value" "timeout" -o timeout=abc imaps://alice@127.0.0.1 "$mp"
refuse "timeout=0" "timeout" -o timeout=0 imaps://alice@127.0.0.1 "$mp"
refuse "connections=17" "connections" -o connections=17 imaps://alice@127.0.0.1 "$mp"
MF_USAGE_OK=1 refuse "bad refresh= value" "refresh|option" -o refresh=soon imaps://alice@127.0.0.1 "$mp"
refuse "a path after the host" "path|url" imaps://alice@127.0.0.1/INBOX "$mp"
MF_USAGE_OK=1 refuse "a third argument" "argument|usage" imaps://alice@127.0.0.1 "$mp" extra
MF_USAGE_OK=1 refuse "unknown option letter" "option|usage|invalid" -Z imaps://alice@127.0.0.1 "$mp"
mf_finish
