# shellcheck shell=bash disable=SC2154,SC2034,SC2153
# Shared by tests/bench/run and tests/bench/pop3-vs-imap: build, Dovecot, delay proxy, timed
# mounts and the status file. Source it after setting `repo` and `out`. bash only.
#
# Overrides (environment): MAILFS (the binary, default $repo/mailfs), BENCH_TOOLS (directory
# with imap_fetch_baseline and delay_proxy, default $repo/build/tools), BENCH_NO_BUILD=1 (use
# them as they are), MAILFS_OPTS (extra -o options for every mount).

MAILFS=${MAILFS:-$repo/mailfs}
BENCH_TOOLS=${BENCH_TOOLS:-$repo/build/tools}
MAILFS_OPTS=${MAILFS_OPTS:-}

bench_die() { echo "bench: $*" >&2; exit 1; }
bench_log() { echo "bench: $*" >&2; }

# Microseconds since the epoch, without forking.
bench_now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }
bench_secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e6 }'; }
bench_median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
	m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
	if (m == int(m)) print m; else printf "%.3f\n", m }'; }
bench_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
# bench_le A B: true if A <= B (floats).
bench_le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }

# Builds mailfs and the two tools with the project's own Makefile unless told not to.
bench_build() {
	[ "${BENCH_NO_BUILD:-0}" = 1 ] && return 0
	(cd "$repo" && { [ -f Makefile ] || ./configure >/dev/null; } &&
		make -s mailfs "build/tools/imap_fetch_baseline" "build/tools/delay_proxy") ||
		bench_die "build failed (run ./configure && make)"
}

# "mailfs 0.1.0, git abc1234" (what was measured), for reports. Call it when the binary is
# built: other engineers may change the tree while a benchmark runs.
mailfs_version() {
	local v
	v=$("$MAILFS" --version 2>/dev/null | head -n 1 | cut -d' ' -f1-2)
	echo "${v:-mailfs}, git ${BENCH_GIT:-$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)}"
}

# mailfs_build_id: the version plus the binary's own checksum, which tells apart two builds of
# a "-dirty" tree.
mailfs_build_id() {
	echo "$(mailfs_version), binary sha256 $(sha256sum "$MAILFS" | cut -c1-12)"
}

# bench_load_note: a warning line if the 1-minute load average is above 1 (someone else is
# using the CPUs, so times are noisy), else nothing.
bench_load_note() {
	local load
	load=$(cut -d' ' -f1 /proc/loadavg)
	bench_le "$load" 1 && return 0
	echo "NOTE: load average $load at start (> 1, $(nproc) CPUs): the machine was busy, so times" \
		"are noisy; bytes and round trips are not. Measure figures to publish on a quiet machine."
}

bench_check_binaries() {
	[ -x "$MAILFS" ] || bench_die "no mailfs binary at $MAILFS"
	[ -x "$BENCH_TOOLS/imap_fetch_baseline" ] || bench_die "no $BENCH_TOOLS/imap_fetch_baseline"
	[ -x "$BENCH_TOOLS/delay_proxy" ] || bench_die "no $BENCH_TOOLS/delay_proxy"
	[ "$(id -u)" = 0 ] || bench_die "must run as root (private Dovecot, FUSE)"
	[ -e /dev/fuse ] || bench_die "no /dev/fuse"
}

# Copies of the binaries in $out/run/bin, used for the whole run: other engineers may rebuild
# mailfs in the tree meanwhile, and a run must measure one build, the one it names. Call it
# after bench_build and before mailfs_build_id, with $out/run created.
BENCH_GIT=
bench_freeze_binaries() {
	# The tree's name now, i.e. when the copy is made.
	BENCH_GIT=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)
	mkdir -p "$out/run/bin"
	cp "$MAILFS" "$out/run/bin/mailfs"
	cp "$BENCH_TOOLS/imap_fetch_baseline" "$BENCH_TOOLS/delay_proxy" "$out/run/bin/"
	MAILFS=$out/run/bin/mailfs BENCH_TOOLS=$out/run/bin
}

BENCH_DOVECOT_DIR=
# bench_start_dovecot DIR MAILDIR: the test Dovecot with the corpus, its env sourced.
bench_start_dovecot() {
	BENCH_DOVECOT_DIR=$1
	"$repo/tests/lib/dovecot.sh" start "$1" "$2" || bench_die "Dovecot did not start"
	# shellcheck disable=SC1091
	. "$1/env"
	# The tests' raw session log would write every byte served to disk, a cost no real
	# server has; the benchmark turns it off.
	sed -i '/^rawlog_dir/d' "$DOVECOT_CONF"
	doveadm -c "$DOVECOT_CONF" reload || bench_die "doveadm reload failed"
	sleep 0.5
	export MAILFS_PASSWORD=$MAIL_PASSWORD
}

BENCH_PROXY_PIDS=()
BENCH_PROXY_PORT=
# bench_start_proxy DELAY_MS TARGET_PORT: one more proxy; sets BENCH_PROXY_PORT.
bench_start_proxy() {
	local portfile=$out/run/proxy-$2.port i
	rm -f "$portfile"
	"$BENCH_TOOLS/delay_proxy" -d "$1" 127.0.0.1 "$2" > "$portfile" &
	BENCH_PROXY_PIDS+=("$!")
	for i in $(seq 1 100); do
		[ -s "$portfile" ] && break
		sleep 0.05
	done
	BENCH_PROXY_PORT=$(awk '{ print $2 }' "$portfile")
	[ -n "$BENCH_PROXY_PORT" ] || bench_die "delay_proxy did not start"
}

# Stops every proxy this script started.
bench_stop_proxy() {
	local pid
	for pid in "${BENCH_PROXY_PIDS[@]}"; do
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	BENCH_PROXY_PIDS=()
}

bench_is_mounted() { grep -qs " $1 fuse" /proc/self/mounts; }

BENCH_MAILFS_PID=
BENCH_MOUNT=
BENCH_MOUNT_S=
BENCH_MOUNT_N=0
BENCH_CACHE=
BENCH_KEEP_CACHE=
# bench_mount URL MNT LOG [CACHE_DIR]: mounts in the foreground process (so its pid is known),
# times until the mount point is live, sets BENCH_MOUNT_S. Fails loudly if mailfs exits instead.
# mailfs keeps envelopes and bodies on disk between mounts (cache_dir), and a timed item must
# start cold: each mount gets an empty directory, removed at unmount, unless CACHE_DIR is given
# (then it is kept, to measure a warm remount).
bench_mount() {
	local url=$1 mnt=$2 log=$3 t0 t1 i opts
	BENCH_MOUNT_N=$((BENCH_MOUNT_N + 1))
	if [ -n "${4:-}" ]; then
		BENCH_CACHE=$4 BENCH_KEEP_CACHE=1
	else
		BENCH_CACHE=$out/run/cache/$BENCH_MOUNT_N BENCH_KEEP_CACHE=
		rm -rf "$BENCH_CACHE"
	fi
	opts="cafile=$CA_FILE,cache_dir=$BENCH_CACHE"
	[ -n "$MAILFS_OPTS" ] && opts="$opts,$MAILFS_OPTS"
	mkdir -p "$mnt"
	bench_is_mounted "$mnt" && bench_die "$mnt is already mounted"
	t0=$(bench_now_us)
	"$MAILFS" -f -o "$opts" "$url" "$mnt" >> "$log" 2>&1 &
	BENCH_MAILFS_PID=$!
	BENCH_MOUNT=$mnt
	for ((i = 0; i < 30000; i++)); do
		bench_is_mounted "$mnt" && break
		if ! kill -0 "$BENCH_MAILFS_PID" 2>/dev/null; then
			tail -n 5 "$log" >&2
			bench_die "mailfs exited instead of mounting $url (log: $log)"
		fi
		sleep 0.002
	done
	t1=$(bench_now_us)
	bench_is_mounted "$mnt" || bench_die "mailfs did not mount $url within a minute"
	BENCH_MOUNT_S=$(bench_secs "$t0" "$t1")
}

# mailfs exits only when its cache's write-behind queue is on disk and its index is saved,
# which after reading the whole mailbox takes a while: give it BENCH_UMOUNT_TIMEOUT seconds
# (default 120) before killing it, since a kill would lose the saved index a remount measures.
bench_umount() {
	local i t0 limit=$((${BENCH_UMOUNT_TIMEOUT:-120} * 20))
	[ -n "$BENCH_MOUNT" ] || return 0
	t0=$(bench_now_us)
	fusermount3 -u "$BENCH_MOUNT" 2>/dev/null || fusermount3 -uz "$BENCH_MOUNT" 2>/dev/null
	for ((i = 0; i < limit; i++)); do
		kill -0 "$BENCH_MAILFS_PID" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$BENCH_MAILFS_PID" 2>/dev/null; then
		bench_log "mailfs (pid $BENCH_MAILFS_PID) did not exit within ${BENCH_UMOUNT_TIMEOUT:-120} s of unmount; killing it"
		kill "$BENCH_MAILFS_PID" 2>/dev/null
	elif [ "$i" -ge 100 ]; then
		bench_log "mailfs took $(bench_secs "$t0" "$(bench_now_us)") s to exit after unmount"
	fi
	wait "$BENCH_MAILFS_PID" 2>/dev/null
	[ -n "$BENCH_KEEP_CACHE" ] || rm -rf "$BENCH_CACHE"
	BENCH_MOUNT=
	BENCH_MAILFS_PID=
}

# bench_status MNT KEY: one counter from the status file ("key: value" lines).
bench_status() {
	awk -v k="$2:" '$1 == k { print $2; found = 1 } END { if (!found) print "?" }' \
		"$1/.mailfs-status"
}

bench_cleanup() {
	bench_umount
	bench_stop_proxy
	[ -n "$BENCH_DOVECOT_DIR" ] && "$repo/tests/lib/dovecot.sh" stop "$BENCH_DOVECOT_DIR"
	BENCH_DOVECOT_DIR=
}

# Sum of sizes and number of regular files under a directory.
bench_tree_bytes() { find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }
bench_tree_files() { find "$1" -type f | wc -l; }

# Only what the benchmark itself wrote: its page cache must not be flushed in a timed step.
bench_settle() { sync; }
