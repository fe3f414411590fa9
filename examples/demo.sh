#!/bin/sh
# Quick start: build mailfs and mount a demo mailbox served by a private Dovecot.
#   sh examples/demo.sh          (as root on a fresh Debian 12; takes a minute or two)
# Installs the build and server packages, builds, starts Dovecot on free loopback ports with
# the demo mailbox (examples/make-demo-maildir.sh), mounts it and shows a little of it.
# It leaves the mount in place and prints how to unmount and stop.
set -eu
cd "$(dirname "$0")/.."
demo=${MAILFS_DEMO_DIR:-/tmp/mailfs-demo}
mnt=$demo/mnt

if [ "$(id -u)" != 0 ]; then
	echo "demo.sh: run as root (it installs packages and starts a private Dovecot)" >&2
	exit 1
fi

if [ "${MF_DEMO_SKIP_APT:-0}" != 1 ]; then
	echo "== Installing packages"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends build-essential pkg-config \
		libfuse3-dev fuse3 libglib2.0-dev libgmime-3.0-dev libssl-dev \
		dovecot-imapd dovecot-pop3d openssl python3 attr
fi
[ -e /dev/fuse ] || modprobe fuse 2>/dev/null || true

echo "== Building"
./configure
make

# A previous demo run: unmount it and stop its server first.
if grep -q " $mnt fuse" /proc/self/mounts 2>/dev/null; then fusermount3 -u "$mnt"; fi
[ -d "$demo/dovecot" ] && tests/lib/dovecot.sh stop "$demo/dovecot"

echo "== Starting a private Dovecot with the demo mailbox"
mkdir -p "$demo" "$mnt"
tests/lib/dovecot.sh start "$demo/dovecot"
. "$demo/dovecot/env"

echo "== Mounting imaps://$MAIL_USER@127.0.0.1:$IMAPS_PORT at $mnt"
MAILFS_PASSWORD=$MAIL_PASSWORD ./mailfs -o cafile="$CA_FILE" \
	"imaps://$MAIL_USER@127.0.0.1:$IMAPS_PORT" "$mnt"

echo
echo "\$ ls $mnt"
ls "$mnt"
echo
echo "\$ ls -R $mnt | head -n 40"
ls -R "$mnt" | head -n 40
echo
lunch=$(ls "$mnt/INBOX" | grep 'Lunch on Thursday' | head -n 1)
echo "\$ head -n 12 \"$mnt/INBOX/$lunch\""
head -n 12 "$mnt/INBOX/$lunch"
echo
echo "\$ getfattr -d \"$mnt/INBOX/$lunch\""
getfattr -d "$mnt/INBOX/$lunch" 2>/dev/null || true
echo "\$ cat $mnt/.mailfs-status"
cat "$mnt/.mailfs-status"

cat <<DONE

The demo mailbox is mounted read-only at $mnt (try: grep -r periwinkle $mnt).
  Unmount:      fusermount3 -u $mnt
  Stop Dovecot: tests/lib/dovecot.sh stop $demo/dovecot
  POP3 view:    mkdir -p $demo/pop3 && MAILFS_PASSWORD=$MAIL_PASSWORD ./mailfs -o cafile=$CA_FILE pop3s://$MAIL_USER@127.0.0.1:$POP3S_PORT $demo/pop3
DONE
