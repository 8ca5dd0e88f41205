#!/bin/bash
# save_config -> restart with -c -> the same bdevs with the same UUIDs; load_config replays;
# bad config files make the daemon exit non-zero naming the entry.
. "$(dirname "$0")/../lib/common.sh"
dbk_setup
dbk_start -m 0x1

truncate -s 4M "$DBK_TMP/u.img"
rpc bdev_malloc_create 8 4096 -b M0 >/dev/null || fail "create M0"
rpc bdev_malloc_create 2 512 -b M1 -u 0b0bd3ff-2aa5-4ad6-8c06-a1a1cf6e07f2 >/dev/null || fail "create M1"
rpc bdev_null_create N0 4 4096 >/dev/null || fail "create N0"
rpc bdev_uring_create "$DBK_TMP/u.img" U0 512 >/dev/null || fail "create U0"
before=$(rpc bdev_get_bdevs) || fail "bdev_get_bdevs"
rpc save_config >"$DBK_TMP/config.json" || fail "save_config"
json_get "$(cat "$DBK_TMP/config.json")" '[s["subsystem"] for s in j["subsystems"]]' | grep -q "'bdev', 'nvmf'" ||
	fail "save_config subsystems: $(cat "$DBK_TMP/config.json")"
dbk_stop

summary='sorted((b["name"], b["uuid"], b["block_size"], b["num_blocks"], b["product_name"]) for b in j)'
want=$(json_get "$before" "$summary")

# Restart from the saved file.
dbk_start -m 0x1 -c "$DBK_TMP/config.json"
got=$(json_get "$(rpc bdev_get_bdevs)" "$summary")
[ "$got" = "$want" ] || fail "after -c: $got, want $want"
grep -q "daosblk-tgt: ready" "$DBK_LOG" || fail "no ready line"
dbk_stop

# load_config on an empty daemon (client-side replay, also --json long option).
dbk_start -m 0x1
rpc load_config <"$DBK_TMP/config.json" || fail "load_config"
got=$(json_get "$(rpc bdev_get_bdevs)" "$summary")
[ "$got" = "$want" ] || fail "after load_config: $got, want $want"
# Replaying again fails on the first duplicate, naming it.
err=$(rpc load_config <"$DBK_TMP/config.json" 2>&1) && fail "second load_config succeeded"
case "$err" in *"subsystem 'bdev' entry 0 (bdev_malloc_create)"*) ;; *) fail "load_config error: $err" ;; esac
dbk_stop

# A config whose 2nd bdev entry fails: non-zero exit, the entry named, clean shutdown.
cat >"$DBK_TMP/bad.json" <<'JSON'
{"subsystems":[{"subsystem":"bdev","config":[
 {"method":"bdev_malloc_create","params":{"name":"A","num_blocks":256,"block_size":4096}},
 {"method":"bdev_malloc_create","params":{"name":"B","num_blocks":256,"block_size":1000}}]}]}
JSON
"$DBK_TGT" -m 0x1 -r "$DBK_SOCK" -c "$DBK_TMP/bad.json" >"$DBK_TMP/bad.log" 2>&1
rc=$?
[ "$rc" -ne 0 ] || fail "bad config: exit status 0"
grep -q "subsystem 'bdev' entry 1 (bdev_malloc_create)" "$DBK_TMP/bad.log" || fail "bad config: entry not named: $(cat "$DBK_TMP/bad.log")"
grep -qi "error\|sanitizer" "$DBK_TMP/bad.log" || true
grep -q "Sanitizer" "$DBK_TMP/bad.log" && fail "sanitizer report: $(cat "$DBK_TMP/bad.log")"
[ ! -e "$DBK_SOCK" ] || fail "socket left behind after a failed start"

# Unknown method, bad params type, not JSON, wrong shape, missing file.
printf '%s' '{"subsystems":[{"subsystem":"bdev","config":[{"method":"bdev_nope","params":{}}]}]}' >"$DBK_TMP/b2.json"
printf '%s' '{"subsystems":[{"subsystem":"bdev","config":[{"method":"bdev_malloc_create","params":{"name":"A","num_blocks":"x","block_size":512}}]}]}' >"$DBK_TMP/b3.json"
printf '%s' '{"subsystems":[' >"$DBK_TMP/b4.json"
printf '%s' '{"subsystem":"bdev"}' >"$DBK_TMP/b5.json"
for f in b2:"bdev_nope" b3:"num_blocks" b4:"b4.json" b5:"subsystems" missing:"missing.json"; do
	file="$DBK_TMP/${f%%:*}.json"
	"$DBK_TGT" -m 0x1 -r "$DBK_SOCK" --json "$file" >"$DBK_TMP/b.log" 2>&1 && fail "$file: exit status 0"
	grep -q "${f#*:}" "$DBK_TMP/b.log" || fail "$file: message lacks ${f#*:}: $(cat "$DBK_TMP/b.log")"
	grep -q "Sanitizer" "$DBK_TMP/b.log" && fail "sanitizer report: $(cat "$DBK_TMP/b.log")"
done
echo PASS
