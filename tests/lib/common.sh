# shellcheck shell=bash
# Shared helpers for tests/integration/*.sh (bash). Source it first:
#   . "$(dirname "$0")/../lib/common.sh"
# Gives: check/ok/fail assertions that print "ok - ..." / "FAIL - ...", a private Dovecot (the
# runner's, or one started for this script), server reference data, and mounts that are always
# unmounted on exit, with timeouts on everything that could hang.
set -u

MF_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MAILFS=${MAILFS:-$MF_REPO/mailfs}
case $MAILFS in /*) ;; *) MAILFS=$PWD/$MAILFS ;; esac
MF_OUT=${MF_OUT:-$MF_REPO/tests/out}
MF_NAME=$(basename "$0" .sh)
T=$MF_OUT/$MF_NAME            # this script's scratch dir
MF_LIB=$MF_REPO/tests/lib
MF_PY=$MF_LIB/mailref.py
# Seconds: mounting (connect + login + LIST), reading one file, and anything else.
MF_MOUNT_TIMEOUT=${MF_MOUNT_TIMEOUT:-60}
MF_READ_TIMEOUT=${MF_READ_TIMEOUT:-60}
MF_PASSES=0
unset MAILFS_PASSWORD     # each test says where the password comes from
# A private body cache per script (mailfs keeps bodies under $XDG_CACHE_HOME/mailfs).
export XDG_CACHE_HOME=$T/cache
MF_FAILS=0

mkdir -p "$MF_OUT"
rm -rf "$T"
mkdir -p "$T"
: > "$T/mounts"
: > "$T/pids"

# ---------------------------------------------------------------- assertions
ok() { MF_PASSES=$((MF_PASSES + 1)); echo "ok - $MF_NAME: $1"; }
# fail DESC [DETAIL...]: details go on "#" lines after the FAIL line
fail() {
	MF_FAILS=$((MF_FAILS + 1))
	echo "FAIL - $MF_NAME: $1"
	shift
	local d
	for d in "$@"; do
		printf '%s\n' "$d" | head -n 30 | sed 's/^/#   /'
	done
}
# check DESC CMD...: passes when CMD exits 0; its output is shown on failure
check() {
	local desc=$1
	shift
	if "$@" > "$T/check.out" 2>&1; then
		ok "$desc"
	else
		fail "$desc" "command: $*" "$(cat "$T/check.out")"
	fi
}
# check_not DESC CMD...: passes when CMD exits non-zero
check_not() {
	local desc=$1
	shift
	if "$@" > "$T/check.out" 2>&1; then
		fail "$desc" "command unexpectedly succeeded: $*" "$(cat "$T/check.out")"
	else
		ok "$desc"
	fi
}
check_eq() { # check_eq DESC EXPECTED ACTUAL
	if [ "$2" = "$3" ]; then ok "$1"; else fail "$1" "expected: $2" "actual:   $3"; fi
}
check_lt() { # check_lt DESC A B: A < B (integers)
	if [ "$2" -lt "$3" ] 2>/dev/null; then ok "$1"; else fail "$1" "expected $2 < $3"; fi
}
# The script's exit status: non-zero when any check failed.
mf_finish() {
	[ "$MF_FAILS" -eq 0 ]
}

# ---------------------------------------------------------------- cleanup
MF_EXIT_CMDS=()
mf_on_exit() { MF_EXIT_CMDS+=("$1"); } # mf_on_exit 'SHELL CODE': run it on exit, after unmounting
mf_cleanup() {
	local mp pid c
	trap - EXIT INT TERM
	if [ -s "$T/mounts" ]; then
		while read -r mp; do mf_is_mounted "$mp" && mf_umount "$mp"; done < "$T/mounts"
	fi
	if [ -s "$T/pids" ]; then
		while read -r pid; do
			kill "$pid" 2>/dev/null && { sleep 0.2; kill -9 "$pid" 2>/dev/null; }
		done < "$T/pids"
	fi
	for c in "${MF_EXIT_CMDS[@]}"; do eval "$c"; done
	[ -n "${MF_OWN_DOVECOT:-}" ] && "$MF_LIB/dovecot.sh" stop "$MF_OWN_DOVECOT"
	true
}
trap mf_cleanup EXIT
trap 'exit 130' INT TERM

mf_track_pid() { echo "$1" >> "$T/pids"; [ -n "${MF_PIDS_FILE:-}" ] && echo "$1" >> "$MF_PIDS_FILE"; true; }

# ---------------------------------------------------------------- Dovecot and reference data
# Use the runner's Dovecot (MF_DOVECOT_ENV) or start one for this script alone.
mf_need_dovecot() {
	if [ -z "${MF_DOVECOT_ENV:-}" ] || [ ! -s "$MF_DOVECOT_ENV" ]; then
		MF_OWN_DOVECOT=$T/dovecot
		"$MF_LIB/dovecot.sh" start "$MF_OWN_DOVECOT" || { fail "start dovecot"; exit 1; }
		MF_DOVECOT_ENV=$MF_OWN_DOVECOT/env
	fi
	# shellcheck disable=SC1090
	. "$MF_DOVECOT_ENV"
	MF_REF=$DOVECOT_DIR/ref-imap
	MF_REF_POP3=$DOVECOT_DIR/ref-pop3
}

# The server's own bytes for every message, fetched once per Dovecot with python imaplib.
mf_need_ref() {
	mf_need_dovecot
	if [ ! -s "$MF_REF/manifest.json" ]; then
		rm -rf "$MF_REF"
		MAILREF_PASSWORD=$MAIL_PASSWORD timeout 120 python3 "$MF_PY" imap-dump 127.0.0.1 \
			"$IMAPS_PORT" "$CA_FILE" "$MAIL_USER" "$MF_REF" > "$T/ref.err" 2>&1 ||
			{ fail "reference dump over IMAP" "$(cat "$T/ref.err")"; exit 1; }
	fi
}
mf_need_ref_pop3() {
	mf_need_dovecot
	if [ ! -s "$MF_REF_POP3/manifest.json" ]; then
		rm -rf "$MF_REF_POP3"
		MAILREF_PASSWORD=$MAIL_PASSWORD timeout 120 python3 "$MF_PY" pop3-dump 127.0.0.1 \
			"$POP3S_PORT" "$CA_FILE" "$MAIL_USER" "$MF_REF_POP3" > "$T/ref.err" 2>&1 ||
			{ fail "reference dump over POP3" "$(cat "$T/ref.err")"; exit 1; }
	fi
}

# Flags of every message as Dovecot stores them (\Recent is session state, so dropped).
mf_server_flags() {
	doveadm -c "$DOVECOT_CONF" fetch -u "${1:-$MAIL_USER}" 'mailbox uid flags' all 2>&1 |
		sed -e 's/ *\\Recent//' -e 's/ *$//'
}

# ---------------------------------------------------------------- mounts
mf_is_mounted() { # the mount point field of /proc/self/mountinfo (spaces are \040 there)
	awk -v mp="$(printf '%s' "$1" | sed 's/ /\\040/g')" '$5 == mp { found = 1 } END { exit !found }' \
		/proc/self/mountinfo
}

# The mailfs process serving MP, found by its exact mount point argument.
mf_daemon_pid() {
	local p arg
	for p in /proc/[0-9]*; do
		[ -r "$p/cmdline" ] || continue
		case $(tr '\0' '\n' 2>/dev/null < "$p/cmdline" | head -n 1) in
		*mailfs) ;;
		*) continue ;;
		esac
		while IFS= read -r arg; do
			if [ "$arg" = "$1" ]; then echo "${p#/proc/}"; return 0; fi
		done < <(tr '\0' '\n' 2>/dev/null < "$p/cmdline")
	done
	return 1
}

# mf_mount MP [mailfs args...]: run mailfs (which daemonizes once the account works) with a
# timeout. stderr goes to $T/mount.err. Returns mailfs's exit status.
mf_mount() {
	local mp=$1 rc
	shift
	mkdir -p "$mp" 2>/dev/null
	echo "$mp" >> "$T/mounts"
	timeout -k 5 "$MF_MOUNT_TIMEOUT" "$MAILFS" "$@" "$mp" < /dev/null > "$T/mount.out" 2> "$T/mount.err"
	rc=$?
	[ $rc -eq 0 ] || return $rc
	local i
	for i in $(seq 1 50); do
		mf_is_mounted "$mp" && return 0
		sleep 0.1
	done
	echo "mailfs exited 0 but $mp is not mounted" >> "$T/mount.err"
	return 99
}
# mf_mount_fg MP LOG [mailfs args...]: run "mailfs -f" in the background (stderr to LOG), for
# tests that need the daemon's pid or its log; waits until mounted. Sets MF_FG_PID.
mf_mount_fg() {
	local mp=$1 log=$2 i
	shift 2
	mkdir -p "$mp" 2>/dev/null
	echo "$mp" >> "$T/mounts"
	"$MAILFS" -f "$@" "$mp" < /dev/null > "$log" 2>&1 &
	MF_FG_PID=$!
	mf_track_pid "$MF_FG_PID"
	for i in $(seq 1 $((MF_MOUNT_TIMEOUT * 10))); do
		mf_is_mounted "$mp" && return 0
		kill -0 "$MF_FG_PID" 2>/dev/null || { wait "$MF_FG_PID"; return $?; }
		sleep 0.1
	done
	return 98
}
# The usual account: alice over imaps on the test Dovecot.
mf_url_alice() { echo "imaps://$MAIL_USER@127.0.0.1:$IMAPS_PORT"; }
mf_mount_alice() { # mf_mount_alice MP [extra mailfs args...]
	local mp=$1
	shift
	MAILFS_PASSWORD=$MAIL_PASSWORD mf_mount "$mp" -o "cafile=$CA_FILE" "$@" "$(mf_url_alice)"
}

# Unmount, and if the daemon does not let go: kill it, lazy-unmount, abort the connection.
mf_umount() {
	local mp=$1 pid dev i
	timeout -k 2 20 fusermount3 -u "$mp" 2>/dev/null && {
		# fusermount returns before the daemon exits; give it a moment (sanitizer reports).
		for i in $(seq 1 50); do mf_daemon_pid "$mp" > /dev/null || return 0; sleep 0.1; done
		return 0
	}
	dev=$(awk -v mp="$mp" '$5 == mp { print $3 }' /proc/self/mountinfo | head -n 1)
	pid=$(mf_daemon_pid "$mp") && kill -9 "$pid" 2>/dev/null
	if [ -n "$dev" ] && [ -w "/sys/fs/fuse/connections/${dev#*:}/abort" ]; then
		echo 1 > "/sys/fs/fuse/connections/${dev#*:}/abort"
	fi
	timeout -k 2 10 fusermount3 -u -z "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null
	! mf_is_mounted "$mp"
}

# mf_status MP KEY: one counter of MP/.mailfs-status ("" if missing)
mf_status() {
	timeout 20 python3 "$MF_PY" status "$1/.mailfs-status" "$2" 2>/dev/null
}

# rd FILE...: cat with a timeout (a hung read must not hang the suite)
rd() { timeout -k 5 "$MF_READ_TIMEOUT" cat "$@"; }

# The mailfs error contract: non-zero exit, exactly one non-empty line on stderr, nothing
# mounted. mf_check_refused DESC MP [PATTERN]: after an mf_mount that should have failed
# with exit status $MF_RC. MF_USAGE_OK=1: several lines are fine too (a usage text, or
# warnings before the final error).
mf_check_refused() {
	local desc=$1 mp=$2 pattern=${3:-} lines
	if [ "$MF_RC" -eq 0 ]; then
		fail "$desc: exits non-zero" "exit status 0; stderr: $(cat "$T/mount.err")"
		mf_umount "$mp"
		return
	fi
	if [ "$MF_RC" -ge 124 ]; then
		fail "$desc: exits non-zero by itself" "exit status $MF_RC (timeout or signal)" "$(cat "$T/mount.err")"
	else
		ok "$desc: exits non-zero ($MF_RC)"
	fi
	lines=$(grep -c . "$T/mount.err")
	if [ "${MF_USAGE_OK:-0}" = 1 ] && [ "$lines" -ge 1 ]; then
		ok "$desc: says why ($(tail -n 1 "$T/mount.err"))"
	elif [ "$lines" -eq 1 ]; then
		ok "$desc: one-line message: $(cat "$T/mount.err")"
	else
		fail "$desc: one-line message on stderr" "got $lines lines:" "$(cat "$T/mount.err")"
	fi
	if [ -n "$pattern" ]; then
		if grep -Eqi -- "$pattern" "$T/mount.err"; then
			ok "$desc: message says /$pattern/"
		else
			fail "$desc: message says /$pattern/" "$(cat "$T/mount.err")"
		fi
	fi
	if mf_is_mounted "$mp"; then
		fail "$desc: nothing mounted" "$mp is mounted"
		mf_umount "$mp"
	else
		ok "$desc: nothing mounted"
	fi
	if grep -q 'Sanitizer\|runtime error' "$T/mount.err"; then
		fail "$desc: no sanitizer report" "$(cat "$T/mount.err")"
	fi
}

# Fail early (one clear FAIL) when there is no binary to test.
mf_need_mailfs() {
	if [ ! -x "$MAILFS" ]; then
		fail "mailfs binary $MAILFS exists (build it: ./configure && make)"
		exit 1
	fi
}

# ---------------------------------------------------------------- fake IMAP and POP3 servers
# mf_fake SCENARIO [--tls]: start tests/fake/fakeimap.py; sets FAKE_PORT, FAKE_LOG, FAKE_PID.
# mf_fake_pop3 SCENARIO [--tls]: the same with tests/fake/fakepop3.py.
mf_fake() { mf_fake_start fakeimap "$@"; }
mf_fake_pop3() { mf_fake_start fakepop3 "$@"; }
mf_fake_start() {
	local prog=$1 sc=$2 i
	shift 2
	FAKE_LOG=$T/$prog-$sc.log
	rm -f "$T/fake.port" "$FAKE_LOG"
	python3 "$MF_REPO/tests/fake/$prog.py" --scenario "$sc" --port-file "$T/fake.port" \
		--log "$FAKE_LOG" --cert "$DOVECOT_DIR/test-server.crt" --key "$DOVECOT_DIR/test-server.key" \
		"$@" > "$T/$prog-$sc.out" 2>&1 &
	FAKE_PID=$!
	mf_track_pid "$FAKE_PID"
	for i in $(seq 1 100); do
		[ -s "$T/fake.port" ] && break
		sleep 0.05
	done
	FAKE_PORT=$(cat "$T/fake.port" 2>/dev/null)
	[ -n "$FAKE_PORT" ] || { fail "$prog ($sc) starts" "$(cat "$T/$prog-$sc.out")"; return 1; }
}
mf_fake_stop() {
	kill "$FAKE_PID" 2>/dev/null
	wait "$FAKE_PID" 2>/dev/null
	true
}

# ---------------------------------------------------------------- Dovecot rawlog
# What clients sent after login, per session file (RAWLOG_DIR/<user>/*.in). mark, then since:
# only the lines sent in between.
mf_rawlog_mark() {
	find "$RAWLOG_DIR/${1:-$MAIL_USER}" -name '*.in' -printf '%p %s\n' 2>/dev/null > "$T/rawlog.mark"
}
mf_rawlog_since() {
	local f size
	sleep 0.3 # let Dovecot write out the last lines
	for f in "$RAWLOG_DIR/${1:-$MAIL_USER}"/*.in; do
		[ -e "$f" ] || continue
		size=$(awk -v f="$f" '$1 == f { print $2 }' "$T/rawlog.mark")
		tail -c +"$(( ${size:-0} + 1 ))" "$f"
	done | sed 's/^[0-9.]* //'
}
# Body fetches in rawlog lines on stdin, except size probes of at most 2 octets (<off.2>).
mf_body_fetches() {
	grep -oE 'BODY(\.PEEK)?\[\](<[0-9]+\.[0-9]+>)?' | awk -F'[.<>]' '!/</ { print; next } $(NF-1) > 2 { print }'
}
