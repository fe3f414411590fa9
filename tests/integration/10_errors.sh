#!/bin/bash
# Everything that must fail before mounting: one line on stderr, non-zero exit, nothing mounted,
# and no hang. Uses the private Dovecot (trusted CA, untrusted CA, wrong host name).
. "$(dirname "$0")/../lib/common.sh"
mf_need_mailfs
mf_need_dovecot

mp=$T/mnt
mkdir -p "$mp"
url=imaps://$MAIL_USER@127.0.0.1:$IMAPS_PORT

# attempt DESC PATTERN [env VAR=VAL...] -- MAILFS ARGS (without the mount point)
attempt() {
	local desc=$1 pattern=$2 start
	shift 2
	start=$(date +%s)
	env "$@" timeout -k 5 "$MF_MOUNT_TIMEOUT" "$MAILFS" "${MF_ARGS[@]}" "$mp" < /dev/null \
		> "$T/mount.out" 2> "$T/mount.err"
	MF_RC=$?
	mf_check_refused "$desc" "$mp" "$pattern"
	echo "# $desc: $(( $(date +%s) - start ))s"
}

# Sanity first: the good account mounts (else every refusal below proves nothing).
mf_mount_alice "$mp"
rc=$?
if [ $rc -eq 0 ]; then ok "the good account mounts (baseline)"; else fail "the good account mounts (baseline)" "$(cat "$T/mount.err")"; fi
check "baseline: INBOX is there" test -d "$mp/INBOX"
mf_umount "$mp"

MF_ARGS=(-o "cafile=$UNTRUSTED_CA_FILE" "$url")
attempt "certificate from a CA we were not told to trust" "certif|verif|trust|tls|ssl" \
	MAILFS_PASSWORD="$MAIL_PASSWORD"
MF_ARGS=(-o "cafile=$CA_FILE" "imaps://$MAIL_USER@127.0.0.1:$UNTRUSTED_IMAPS_PORT")
attempt "server certificate signed by an untrusted CA" "certif|verif|trust|tls|ssl" \
	MAILFS_PASSWORD="$MAIL_PASSWORD"
MF_ARGS=("imaps://$MAIL_USER@127.0.0.1:$IMAPS_PORT")
attempt "test CA not given (system trust store only)" "certif|verif|trust|tls|ssl" \
	MAILFS_PASSWORD="$MAIL_PASSWORD"
MF_ARGS=(-o "cafile=$CA_FILE" "imaps://$MAIL_USER@$MISMATCH_HOST:$IMAPS_PORT")
attempt "certificate for another host name ($MISMATCH_HOST)" "certif|verif|host|name|match|tls|ssl" \
	MAILFS_PASSWORD="$MAIL_PASSWORD"
MF_ARGS=(-o "cafile=$CA_FILE" "$url")
attempt "wrong password" "auth|password|login|credential|reject" MAILFS_PASSWORD=wrong-password
MF_ARGS=(-o "cafile=$CA_FILE" "imaps://nosuchuser@127.0.0.1:$IMAPS_PORT")
attempt "unknown user" "auth|password|login|credential|reject" MAILFS_PASSWORD=whatever
MF_ARGS=(-o "cafile=$CA_FILE" "$url")
saved=$mp
mp=$T/does/not/exist
attempt "missing mount point" "mount ?point|no such|not exist|directory" \
	MAILFS_PASSWORD="$MAIL_PASSWORD"
mp=$T/a-file
: > "$mp"
attempt "mount point that is a file" "mount ?point|not a directory|directory" \
	MAILFS_PASSWORD="$MAIL_PASSWORD"
mp=$saved

# Unreachable: refused port, unresolvable name, and a black hole (needs the timeout).
closed=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
MF_ARGS=(-o "cafile=$CA_FILE" -o timeout=5 "imaps://$MAIL_USER@127.0.0.1:$closed")
attempt "connection refused" "connect|refused|unreach" MAILFS_PASSWORD="$MAIL_PASSWORD"
MF_ARGS=(-o "cafile=$CA_FILE" -o timeout=5 "imaps://$MAIL_USER@no-such-host.invalid")
attempt "host name that does not resolve" "resolv|host|name|unknown|not known" \
	MAILFS_PASSWORD="$MAIL_PASSWORD"
# 192.0.2.0/24 is TEST-NET-1: packets go nowhere, so only the timeout can end the attempt.
MF_ARGS=(-o "cafile=$CA_FILE" -o timeout=3 "imaps://$MAIL_USER@192.0.2.1:993")
start=$(date +%s)
attempt "host that never answers (timeout=3)" "timeout|timed out|connect|unreach|no answer" \
	MAILFS_PASSWORD="$MAIL_PASSWORD"
took=$(( $(date +%s) - start ))
check_lt "black hole: gives up within 20s with timeout=3 (took ${took}s)" "$took" 20
# Where TEST-NET is unreachable at once (no route), the line above proves little: a loopback
# port whose accept queue is full never completes connect(), so only the timeout ends it.
python3 "$MF_PY" blackhole "$T/blackhole.port" &
mf_track_pid $!
for i in $(seq 1 50); do [ -s "$T/blackhole.port" ] && break; sleep 0.1; done
MF_ARGS=(-o "cafile=$CA_FILE" -o timeout=3 "imaps://$MAIL_USER@127.0.0.1:$(cat "$T/blackhole.port")")
start=$(date +%s)
attempt "connect() that never completes (timeout=3)" "timeout|timed out|connect|no answer" \
	MAILFS_PASSWORD="$MAIL_PASSWORD"
took=$(( $(date +%s) - start ))
check "connect() that never completes: gives up after about 3 s, within 20 s (took ${took}s)" \
	test "$took" -ge 2 -a "$took" -lt 20

# Password sources that do not work.
MF_ARGS=(-o "cafile=$CA_FILE" -o "password_command=exit 3" "$url")
attempt "password_command that fails" "password"
MF_ARGS=(-o "cafile=$CA_FILE" -o "password_command=true" "$url")
attempt "password_command that prints nothing" "password"
# No password source and no terminal: a clear error, not a prompt that waits forever.
MF_ARGS=(-o "cafile=$CA_FILE" "$url")
desc="no password source and no terminal"
setsid timeout -k 5 30 "$MAILFS" "${MF_ARGS[@]}" "$mp" < /dev/null > "$T/mount.out" 2> "$T/mount.err"
MF_RC=$?
mf_check_refused "$desc" "$mp" "password|terminal|tty"

# Plaintext: imap:// without allow_plaintext must use STARTTLS; pop3:// likewise (STLS).
# Dovecot offers STARTTLS, so these mount; the refusal cases are in 70_fake_tls.sh.
mf_finish
