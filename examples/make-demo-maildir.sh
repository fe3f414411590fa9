#!/bin/sh
# Lay out the demo mailbox as a Maildir++ tree (what Dovecot stores on disk):
#   sh examples/make-demo-maildir.sh OUTDIR
# The messages are chosen to exercise what a mail filesystem gets wrong: RFC 2047 subjects
# (UTF-8 and ISO-8859-7), a "/" in a subject, missing Date/Subject, a bare address as sender,
# no final line break, a 1 MB message, CRLF and LF files (Dovecot serves both as CRLF),
# nested folders, a modified-UTF-7 folder name, a \Noselect parent, and \Seen flags.
# Output is deterministic, so names on the mount are the same on every machine.
# POSIX sh plus coreutils, awk and iconv: it runs on a fresh Debian 12.
set -eu

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
out=$1
if [ -e "$out" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ]; then
	echo "$0: $out exists and is not empty" >&2
	exit 1
fi

n=0
# msg FOLDER FLAGS < message: FOLDER is the Maildir++ dir ("" = INBOX, ".Work", ...), FLAGS the
# Maildir info letters (S = \Seen, R = \Answered, F = \Flagged).
msg() {
	n=$((n + 1))
	dir=$out/$1
	mkdir -p "$dir/cur" "$dir/new" "$dir/tmp"
	[ -z "$1" ] || : > "$dir/maildirfolder"
	# Maildir names start with the delivery time; fixed times keep the layout reproducible.
	cat > "$dir/cur/$((1764100000 + n * 60)).M${n}P100.mailfs-demo:2,$2"
}
folder() { # an empty selectable folder
	mkdir -p "$out/$1/cur" "$out/$1/new" "$out/$1/tmp"
	: > "$out/$1/maildirfolder"
}

mkdir -p "$out/cur" "$out/new" "$out/tmp"
# Messages built by a pipeline are staged in a file: msg must run in this shell to count.
stage=$out/tmp/stage

# ---------------------------------------------------------------- INBOX
msg "" S <<'M'
Return-Path: <alice@example.org>
Received: from mx.example.org (mx.example.org [192.0.2.10])
	by imap.example.net with ESMTPS id 4711; Wed, 26 Nov 2025 11:42:09 +0100
From: Alice Smith <alice@example.org>
To: Bob Jones <bob@example.net>
Subject: Lunch on Thursday?
Date: Wed, 26 Nov 2025 11:42:07 +0100
Message-ID: <20251126104207.4711@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 7bit

Hi Bob,

are you free for lunch on Thursday? The new place on Market Street
opens at noon and I would like to try it before it gets busy.

Alice
M

msg "" "" <<'M'
From: Newsletter Team <news@updates.example.com>
To: alice@example.org
Subject: Your weekly digest: 5 new articles
Date: Mon, 24 Nov 2025 07:00:00 +0000
Message-ID: <digest-2025-48@updates.example.com>
List-Unsubscribe: <https://updates.example.com/unsubscribe?u=alice>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="=_alt_7f3a"

This is a multi-part message in MIME format.

--=_alt_7f3a
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

This week:
 * Five ways to keep your inbox small
 * Why IMAP folders are not just directories
 * A short history of the Maildir format
 * Reading mail with grep
 * What RFC 2047 encoded words are for

--=_alt_7f3a
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<html><body>
<h1>This week</h1>
<ul>
<li>Five ways to keep your inbox small</li>
<li>Why IMAP folders are not just directories</li>
<li>A short history of the Maildir format</li>
<li>Reading mail with <code>grep</code></li>
<li>What RFC&nbsp;2047 encoded words are for</li>
</ul>
<p style=3D"color:#777">You receive this because you subscribed.</p>
</body></html>

--=_alt_7f3a--
M

msg "" S <<'M'
From: Bob Jones <bob@example.net>
To: Alice Smith <alice@example.org>
Cc: finance@example.org
Subject: Q3/Q4 budget and/or forecast
Date: Tue, 25 Nov 2025 16:05:31 -0500
Message-ID: <CAB0b.Q3Q4@example.net>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="mixed-b0b"

--mixed-b0b
Content-Type: text/plain; charset=us-ascii

Alice, the numbers for Q3 and the forecast for Q4 are attached.
Rows are in thousands.

Bob

--mixed-b0b
Content-Type: text/csv; name="budget-q3-q4.csv"
Content-Disposition: attachment; filename="budget-q3-q4.csv"
Content-Transfer-Encoding: base64

cXVhcnRlcixpdGVtLGFtb3VudApRMyxzYWxhcmllcywxMjAKUTMsdHJhdmVsLDE0ClEzLGhhcmR3
YXJlLDMxClE0LHNhbGFyaWVzLDEyNQpRNCx0cmF2ZWwsOQpRNCxoYXJkd2FyZSw0Mgo=

--mixed-b0b--
M

msg "" "" <<'M'
From: =?UTF-8?Q?Ren=C3=A9e_Dubois?= <renee@example.fr>
To: alice@example.org
Subject: =?UTF-8?Q?Caf=C3=A9_meeting_=E2=80=94_r=C3=A9sum=C3=A9?=
Date: Thu, 20 Nov 2025 09:15:00 +0100
Message-ID: <cafe.20251120@example.fr>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Bonjour Alice,

voici le résumé de notre réunion au café : nous reprenons le projet
en décembre, et Zoë prépare le budget.

Renée
M

msg "" "" <<'M'
From: =?UTF-8?B?SsO8cmdlbiBXZWnDnw==?= <juergen@example.de>
To: alice@example.org
Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgTcO8bmNoZW4g8J+OiQ==?=
Date: Sat, 15 Nov 2025 18:30:00 +0100
Message-ID: <gruesse-muenchen@example.de>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Hallo Alice,

viele Gr=C3=BC=C3=9Fe aus M=C3=BCnchen! Das Wetter ist sch=C3=B6n und der W=
eihnachtsmarkt =C3=B6ffnet n=C3=A4chste Woche.

J=C3=BCrgen
M

msg "" S <<'M'
From: =?ISO-8859-7?B?w+n+8ePv8iDQ4fDh5Pzw7/Xr7/I=?= <giorgos@example.gr>
To: alice@example.org
Subject: =?ISO-8859-7?B?0/Xt3O305/PnIPTn7SDQ4fHh8+rl9d4=?=
Date: Wed, 19 Nov 2025 12:00:00 +0200
Message-ID: <synantisi.19112025@example.gr>
MIME-Version: 1.0
Content-Type: text/plain; charset=iso-8859-7
Content-Transfer-Encoding: quoted-printable

=CA=E1=EB=E7=EC=DD=F1=E1 =F3=E1=F2,

=D3=E1=F2 =F3=F4=DD=EB=ED=F9 =F4=EF =F0=F1=FC=E3=F1=E1=EC=EC=E1 =F4=E7=F2 =
=F3=F5=ED=DC=ED=F4=E7=F3=E7=F2 =F4=E7=F2 =D0=E1=F1=E1=F3=EA=E5=F5=DE=F2. =
=C8=E1 =EE=E5=EA=E9=ED=DE=F3=EF=F5=EC=E5 =F3=F4=E9=F2 10:00 =F3=F4=E7=ED =
=E1=DF=E8=EF=F5=F3=E1 =C2.
=D0=E1=F1=E1=EA=E1=EB=FE =F6=DD=F1=F4=E5 =F4=E9=F2 =F3=E7=EC=E5=E9=FE=F3=E5=
=E9=F2 =F3=E1=F2 =E1=F0=FC =F4=E7=ED =F0=F1=EF=E7=E3=EF=FD=EC=E5=ED=E7 =E5=
=E2=E4=EF=EC=DC=E4=E1.

=D6=E9=EB=E9=EA=DC,
=C3=E9=FE=F1=E3=EF=F2
M

msg "" "" <<'M'
From: Carol White <carol@example.org>
To: alice@example.org
Subject: Note without a date
Message-ID: <no-date@example.org>

This message has no Date header, so its file name uses the time the
server received it (INTERNALDATE).
M

msg "" "" <<'M'
From: Dave Miller <dave@example.com>
To: alice@example.org
Date: Fri, 14 Nov 2025 08:01:00 +0000
Message-ID: <no-subject@example.com>

(this message has no Subject header)
M

msg "" RS <<'M'
From: bob@example.net
To: alice@example.org
Subject: Re: keys
Date: Thu, 13 Nov 2025 22:10:00 +0000
Message-ID: <keys-reply@example.net>
In-Reply-To: <keys@example.org>
References: <keys@example.org>

I left the keys with the neighbours.
M

# No final line break: the last line ends the file without LF.
printf '%s\n' \
	'From: Erin Brooks <erin@example.com>' \
	'To: alice@example.org' \
	'Subject: Quick question (no trailing newline)' \
	'Date: Wed, 12 Nov 2025 14:14:14 +0000' \
	'Message-ID: <no-eol@example.com>' \
	'' \
	'Is the meeting still on?' > "$stage"
printf 'Thanks, Erin' >> "$stage"
msg "" "" < "$stage"

# The 1 MB message: a log file attached as text, so "head -c 1000" on the mount can show that
# only a small part of the body travels.
{
	cat <<'M'
From: Ops Robot <ops@example.com>
To: alice@example.org
Subject: Server logs from last night
Date: Tue, 11 Nov 2025 06:00:00 +0000
Message-ID: <logs-20251111@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="logs-b0undary"

--logs-b0undary
Content-Type: text/plain; charset=us-ascii

Attached: the web server access log from last night (about 1 MB).

--logs-b0undary
Content-Type: text/plain; charset=us-ascii; name="access.log"
Content-Disposition: attachment; filename="access.log"
Content-Transfer-Encoding: 7bit

M
	awk 'BEGIN {
		for (i = 0; i < 11200; i++)
			printf "198.51.100.%d - - [11/Nov/2025:%02d:%02d:%02d +0000] \"GET /static/app-%05d.js HTTP/1.1\" 200 %d\n",
				i % 250, int(i / 3600) % 24, int(i / 60) % 60, i % 60, i, 1000 + (i * 7919) % 90000
	}'
	printf '\n--logs-b0undary--\n'
} > "$stage"
msg "" S < "$stage"

# Stored with CRLF line ends (most are LF); the server must serve both as CRLF.
sed 's/$/\r/' > "$stage" <<'M'
From: Billing <billing@example.com>
To: alice@example.org
Subject: Invoice #4711 (stored with CRLF)
Date: Mon, 10 Nov 2025 10:10:10 +0000
Message-ID: <invoice-4711@example.com>

Invoice 4711: 3 hours of consulting, 360.00 EUR.
Payable within 30 days.
M
msg "" FS < "$stage"

msg "" "" <<'M'
From: Frank Long <frank@example.com>
To: alice@example.org
Subject: This subject is deliberately far too long for a file name because it goes on and on about the agenda for the annual general meeting, the minutes of the previous meeting, the treasurer's report, the election of the new committee, the proposed changes to the constitution, any other business, and the date of the next meeting
Date: Sun, 09 Nov 2025 20:20:20 +0000
Message-ID: <long-subject@example.com>

The subject of this message is longer than a file name may be.
M

msg "" "" <<'M'
From: "Mallory =?UTF-8?Q?=E2=80=AE?=" <mallory@example.com>
To: alice@example.org
Subject: =?UTF-8?Q?invoice_=E2=80=AEfdp.exe_and_a_bell=07_and_a_tab=09here?=
Date: Sat, 08 Nov 2025 03:33:33 +0000
Message-ID: <hostile-subject@example.com>

A subject with a right-to-left override and control characters; a safe
file name must not contain any of them.
M

# Two messages with the same sender, date and subject: only the UID tells their names apart.
for i in 1 2; do
	msg "" "" <<M
From: Calendar <calendar@example.org>
To: alice@example.org
Subject: Meeting reminder
Date: Fri, 07 Nov 2025 09:00:00 +0000
Message-ID: <reminder-$i@example.org>

Reminder $i: team meeting at 10:00.
M
done

msg "" "" <<'M'
From: Grace Park <grace@example.org>
To: alice@example.org
Subject: Garden plans
Date: Thu, 06 Nov 2025 17:45:00 -0800
Message-ID: <garden@example.org>

For the corner by the fence I would plant periwinkle-octopus, the
creeping one with the blue flowers, and some ferns behind it.
M

# ---------------------------------------------------------------- Archive, Archive/2025
msg .Archive S <<'M'
From: Alice Smith <alice@example.org>
To: Bob Jones <bob@example.net>
Subject: Holiday photos 2024
Date: Mon, 30 Dec 2024 19:00:00 +0000
Message-ID: <photos-2024@example.org>

The photos are on the shared drive.
M

msg .Archive S <<'M'
From: Landlord <rent@example.net>
To: alice@example.org
Subject: Rent increase from January
Date: Sun, 01 Dec 2024 12:00:00 +0000
Message-ID: <rent-2025@example.net>

Dear tenant, the rent changes from 1 January.
M

msg .Archive.2025 S <<'M'
From: Bob Jones <bob@example.net>
To: Alice Smith <alice@example.org>
Subject: Tickets for March
Date: Fri, 14 Feb 2025 11:11:11 +0000
Message-ID: <tickets-march@example.net>

I booked the tickets for March.
M

msg .Archive.2025 "" <<'M'
From: Insurance <noreply@insurance.example>
To: alice@example.org
Subject: Your policy documents
Date: Wed, 02 Jul 2025 08:30:00 +0200
Message-ID: <policy-2025@insurance.example>

Your policy documents for 2025 are available online.
M

# ---------------------------------------------------------------- Work, Work/Projects
msg .Work S <<'M'
From: Heidi Lang <heidi@work.example>
To: alice@example.org
Subject: ../../etc/passwd is not a subject
Date: Tue, 18 Nov 2025 13:00:00 +0000
Message-ID: <dotdot@work.example>

A subject that looks like a path must stay one file name.
M

msg .Work "" <<'M'
From: Ivan Petrov <ivan@work.example>
To: alice@example.org
Subject: Standup notes
Date: Mon, 17 Nov 2025 09:30:00 +0000
Message-ID: <standup-1117@work.example>

Yesterday: reviewed the parser. Today: the FUSE layer.
M

msg .Work.Projects "" <<'M'
From: Judy Chen <judy@work.example>
To: alice@example.org
Subject: Project mailfs: milestones
Date: Sun, 16 Nov 2025 21:00:00 +0000
Message-ID: <milestones@work.example>

1. Mount read-only. 2. Lazy bodies. 3. POP3 for comparison.
M

# ---------------------------------------------------------------- "Αρχεία" (mUTF-7 on disk)
msg '.&A5EDwQPHA7UDrwOx-' S <<'M'
From: =?ISO-8859-7?B?w+n+8ePv8iDQ4fDh5Pzw7/Xr7/I=?= <giorgos@example.gr>
To: alice@example.org
Subject: =?UTF-8?B?zqDPgc6/z4PPhs6/z4HOrDogzrXOuc+DzrnPhM6uz4HOuc6xIM6zzrnOsSDOmM61z4PPg86xzrvOv869zq/Ous63?=
Date: Fri, 31 Oct 2025 10:00:00 +0200
Message-ID: <prosfora@example.gr>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Καλησπέρα! Βρήκα φθηνά εισιτήρια για Θεσσαλονίκη τον Δεκέμβριο.
M

# This one is stored as 8-bit ISO-8859-7, bytes that are not UTF-8, to test byte fidelity.
iconv -f UTF-8 -t ISO-8859-7 > "$stage" <<'M'
From: =?ISO-8859-7?Q?=C1=ED=ED=E1?= <anna@example.gr>
To: alice@example.org
Subject: =?ISO-8859-7?Q?=C1=F1=F7=E5=DF=EF_2024?=
Date: Thu, 30 Oct 2025 16:20:00 +0200
Message-ID: <archeio-2024@example.gr>
MIME-Version: 1.0
Content-Type: text/plain; charset=iso-8859-7
Content-Transfer-Encoding: 8bit

Σου στέλνω το αρχείο του 2024 με όλες τις αποδείξεις.
Άννα
M
msg '.&A5EDwQPHA7UDrwOx-' "" < "$stage"

# ---------------------------------------------------------------- Lists/debian (Lists: \Noselect)
# There is no ".Lists" directory, only ".Lists.debian": Dovecot shows Lists as \Noselect.
msg .Lists.debian S <<'M'
From: Debian Security <security@debian.example>
To: debian-security-announce@lists.debian.example
Subject: [SECURITY] [DSA 9999-1] example security update
Date: Tue, 04 Nov 2025 20:00:00 +0000
Message-ID: <dsa-9999-1@debian.example>
List-Id: <debian-security-announce.lists.debian.example>

Package: example
An example vulnerability was fixed.
M

msg .Lists.debian "" <<'M'
From: Debian Project <press@debian.example>
To: debian-announce@lists.debian.example
Subject: Debian 12 updated: 12.99 released
Date: Sat, 01 Nov 2025 12:00:00 +0000
Message-ID: <point-release@debian.example>
List-Id: <debian-announce.lists.debian.example>

The Debian project is pleased to announce another point release.
M

folder .Empty
rm -f "$stage"

echo "$out: $n messages"
