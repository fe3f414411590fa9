#!/bin/bash
# Runs last: proof from the server's side that nothing in this run changed any mailbox.
# Dovecot's rawlog holds every byte every client sent after login; the mail_log plugin logs
# every flag change, expunge, copy and save; the logout lines count deletions.
. "$(dirname "$0")/../lib/common.sh"
mf_need_dovecot

ins=$(find "$RAWLOG_DIR" -name '*.in' | wc -l)
if [ "$ins" -eq 0 ]; then
	ok "rawlog: no Dovecot sessions in this run # SKIP nothing to check"
	exit 0
fi
ok "rawlog recorded $ins sessions"
# "<tag> [UID] <COMMAND>" for commands that change state; FETCH of BODY[ (not .PEEK),
# RFC822 and RFC822.TEXT set \Seen. POP3: DELE.
bad=$(find "$RAWLOG_DIR" -name '*.in' -exec cat {} + |
	sed 's/^[0-9.]* //' |
	grep -Ei '^[^ ]+ (UID )?(STORE|EXPUNGE|COPY|MOVE|APPEND|CREATE|DELETE|RENAME|SUBSCRIBE|UNSUBSCRIBE|SELECT|SETACL|SETQUOTA|SETMETADATA)( |$)|BODY\[|(RFC822|RFC822\.TEXT)[ )]|^DELE ' |
	grep -v 'BODY\.PEEK\[' | head -n 20)
check_eq "no client sent a state-changing command (rawlog)" "" "$bad"
body_nopeek=$(find "$RAWLOG_DIR" -name '*.in' -exec cat {} + | grep -Eio 'BODY\[[^]]*\]' | grep -vi 'BODY\.PEEK' | head)
check_eq "no FETCH BODY[...] without .PEEK (rawlog)" "" "$body_nopeek"
imap=$(find "$RAWLOG_DIR" -name '*.in' -exec grep -li ' LIST ' {} + | wc -l)
exam=$(find "$RAWLOG_DIR" -name '*.in' -exec cat {} + | grep -ci ' EXAMINE ')
if [ "$imap" -gt 0 ]; then
	check "IMAP mailboxes were opened with EXAMINE ($exam times in $imap sessions)" test "$exam" -gt 0
fi
events=$(grep -E 'Info: (flag_change|expunge|delete|undelete|copy|save|mailbox_create|mailbox_delete|mailbox_rename):' "$DOVECOT_LOG" | head -n 20)
check_eq "Dovecot mail_log: no flag change, expunge, copy, save or delete" "" "$events"
bad=$(grep -E 'Logged out|Disconnected' "$DOVECOT_LOG" | grep -E 'imap\(' | grep -Ev 'deleted=0 expunged=0' | grep -E 'deleted=|expunged=' | head)
check_eq "IMAP logout counters: deleted=0 expunged=0 for every session" "" "$bad"
bad=$(grep -E 'pop3\(' "$DOVECOT_LOG" | grep -E 'del=' | grep -Ev 'del=0/' | head)
check_eq "POP3 logout counters: del=0 for every session" "" "$bad"
# RETR makes Dovecot mark a message \Seen (even without QUIT); the tests' own POP3 clients use
# TOP and STAT only, so a RETR could only come from mailfs.
bad=$(grep -E 'pop3\(' "$DOVECOT_LOG" | grep -E 'retr=' | grep -Ev 'retr=0/' | head)
check_eq "POP3 logout counters: retr=0 for every session" "" "$bad"
n=$(grep -c 'pop3(' "$DOVECOT_LOG")
echo "# POP3 session log lines: $n"
mf_finish
