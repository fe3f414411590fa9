#!/bin/bash
# STARTTLS against a scripted fake server: no STARTTLS offered, STARTTLS refused, plaintext
# injected after the STARTTLS OK (CVE-2020-14954), a plaintext PREAUTH (CVE-2020-14093). In
# every bad case: refused before mounting, and no credentials ever sent.
. "$(dirname "$0")/../lib/common.sh"
mf_need_mailfs
mf_need_dovecot   # for the test CA and its server certificate

mp=$T/mnt
# creds_sent LOG: did the client send LOGIN or AUTHENTICATE?
creds_sent() { grep -Eiq '^c[0-9]+ [^ ]+ (LOGIN|AUTHENTICATE)( |$)' "$1"; }
fake_mount() { # fake_mount SCHEME [mailfs args]
	local scheme=$1
	shift
	MAILFS_PASSWORD=secret mf_mount "$mp" -o "cafile=$CA_FILE" -o timeout=10 "$@" \
		"$scheme://alice@127.0.0.1:$FAKE_PORT"
}

# Baselines: the fake works with mailfs at all (else the refusals below prove nothing).
mf_fake normal --tls
if fake_mount imaps; then
	ok "fake server, imaps://: mounts"
	f=$(find "$mp/INBOX" -name '*.eml' | head -n 1)
	check "fake server, imaps://: a message can be read" rd "$f"
	mf_umount "$mp"
else
	fail "fake server, imaps://: mounts" "$(cat "$T/mount.err")" "$(tail -n 20 "$FAKE_LOG")"
fi
mf_fake_stop

mf_fake normal
if fake_mount imap; then
	ok "fake server, imap:// with STARTTLS: mounts"
	if grep -q 'TLS-ESTABLISHED' "$FAKE_LOG" && ! grep -q 'AUTH-OK plaintext=1' "$FAKE_LOG"; then
		ok "fake server, imap://: logged in only after TLS"
	else
		fail "fake server, imap://: logged in only after TLS" "$(cat "$FAKE_LOG")"
	fi
	check_not "fake server, imap://: nothing pipelined behind STARTTLS" grep -q CLIENT-PIPELINED "$FAKE_LOG"
	mf_umount "$mp"
else
	fail "fake server, imap:// with STARTTLS: mounts" "$(cat "$T/mount.err")" "$(tail -n 20 "$FAKE_LOG")"
fi
mf_fake_stop

refused() { # refused SCENARIO DESC PATTERN [mailfs args]
	local sc=$1 desc=$2 pattern=$3
	shift 3
	mf_fake "$sc" || return
	fake_mount imap "$@"
	MF_RC=$?
	mf_check_refused "$desc" "$mp" "$pattern"
	if creds_sent "$FAKE_LOG"; then
		fail "$desc: no credentials sent" "$(cat "$FAKE_LOG")"
	else
		ok "$desc: no credentials sent"
	fi
	mf_fake_stop
}
refused nostarttls "imap:// to a server without STARTTLS" "starttls|plaintext|tls|encrypt"
refused starttls-no "imap:// when STARTTLS is refused" "starttls|tls"
refused starttls-inject "imap:// with bytes injected after the STARTTLS OK" "starttls|inject|unexpected|tls|protocol"
refused preauth "imap:// with a plaintext PREAUTH greeting" "preauth|starttls|plaintext|tls"

# allow_plaintext: the user's explicit choice; then it works without TLS.
mf_fake nostarttls
if fake_mount imap -o allow_plaintext; then
	ok "imap:// -o allow_plaintext mounts without STARTTLS"
	f=$(find "$mp/INBOX" -name '*.eml' | head -n 1)
	check "allow_plaintext: a message can be read" rd "$f"
	mf_umount "$mp"
else
	fail "imap:// -o allow_plaintext mounts without STARTTLS" "$(cat "$T/mount.err")" "$(cat "$FAKE_LOG")"
fi
mf_fake_stop
mf_finish
