#!/usr/bin/env bash
# Log lines of the real daemon: the stderr form (human timestamp, level, component, reactor), and the journal form
# ("<N>" syslog priorities, no timestamp) chosen by itself when $JOURNAL_STREAM names its stderr, as under systemd.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
dbk_setup
export DBK_LOG_LEVEL=info

# Something at INFO (bdev registered), NOTICE (transport created) and ERROR (a listener that cannot bind).
exercise() {
	rpc nvmf_create_transport -t TCP >/dev/null || fail "nvmf_create_transport"
	rpc bdev_malloc_create 8 512 -b Malloc0 >/dev/null || fail "bdev_malloc_create"
	rpc nvmf_create_subsystem nqn.2016-06.io.spdk:cnode1 -a >/dev/null || fail "nvmf_create_subsystem"
	expect_rpc_error "" nvmf_subsystem_add_listener nqn.2016-06.io.spdk:cnode1 -t tcp -a 192.0.2.1 -s 4420
}

# 1. Plain stderr.
dbk_start -m '[0,1]'
exercise
dbk_stop
ts='\[[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}\]'
grep -Eq "^$ts INFO bdev \(reactor_0\) bdev\.c:[0-9]+ [a-z_]+: bdev Malloc0 registered" "$DBK_LOG" ||
	fail "no stderr-form INFO line for Malloc0"
grep -Eq "^$ts NOTICE nvmf \(reactor_0\) tgt\.c:[0-9]+ [a-z_]+: NVMe-oF transport TCP created" "$DBK_LOG" ||
	fail "no stderr-form NOTICE line for the transport"
grep -Eq "^$ts ERROR nvmf/tcp \(reactor_[01]\) tcp\.c:[0-9]+ [a-z_]+: nvmf_tcp: cannot listen on 192\.0\.2\.1:4420" "$DBK_LOG" ||
	fail "no stderr-form ERROR line for the listener"
# the date is today's local date, not seconds since the epoch
grep -q "^\[$(date +%Y-%m-%d) " "$DBK_LOG" || grep -q "^\[$(date -d '1 minute ago' +%Y-%m-%d) " "$DBK_LOG" ||
	fail "log dates are not today's"
grep -E '^<[0-9]>' "$DBK_LOG" && fail "priority prefixes without a journal"

# 2. stderr is "the journal": JOURNAL_STREAM=dev:ino of the file the daemon's stderr goes to.
next="$DBK_TMP/tgt.$((DBK_START_COUNT + 1)).log"
: >"$next"
JOURNAL_STREAM=$(stat -c '%d:%i' "$next") dbk_start
exercise
dbk_stop
[ "$DBK_LOG" = "$next" ] || fail "log file naming changed in common.sh"
grep -Eq '^<6>INFO bdev \(reactor_0\) bdev\.c:[0-9]+ [a-z_]+: bdev Malloc0 registered' "$DBK_LOG" ||
	fail "no <6> INFO line"
grep -Eq '^<5>NOTICE nvmf \(reactor_0\) tgt\.c:[0-9]+ [a-z_]+: NVMe-oF transport TCP created' "$DBK_LOG" ||
	fail "no <5> NOTICE line"
grep -Eq '^<3>ERROR nvmf/tcp \(reactor_0\) tcp\.c:[0-9]+ [a-z_]+: nvmf_tcp: cannot listen on 192\.0\.2\.1:4420' "$DBK_LOG" ||
	fail "no <3> ERROR line"
grep -Eq "^$ts" "$DBK_LOG" && fail "journal form carries our own timestamps"

# 3. A JOURNAL_STREAM inherited from a parent whose stderr was the journal, ours is not: plain form.
other="$DBK_TMP/other"
: >"$other"
JOURNAL_STREAM=$(stat -c '%d:%i' "$other") dbk_start
exercise
dbk_stop
grep -Eq "^$ts NOTICE nvmf \(reactor_0\) tgt\.c:[0-9]+ [a-z_]+: NVMe-oF transport TCP created" "$DBK_LOG" ||
	fail "a foreign JOURNAL_STREAM switched the format"
grep -E '^<[0-9]>' "$DBK_LOG" && fail "priority prefixes with a foreign JOURNAL_STREAM"
echo "PASS: log lines on stderr and in journal form"
