#!/bin/bash
# Create, list and delete malloc, null and uring bdevs through daosblk-rpc.
. "$(dirname "$0")/../lib/common.sh"
dbk_setup
dbk_start -m 0x1

out=$(rpc bdev_malloc_create 16 4096 -b Malloc0) || fail "bdev_malloc_create"
[ "$out" = '"Malloc0"' ] || fail "bdev_malloc_create printed $out"
rpc bdev_null_create Null0 8 512 >/dev/null || fail "bdev_null_create"
truncate -s 8M "$DBK_TMP/disk.img"
rpc bdev_uring_create "$DBK_TMP/disk.img" Uring0 4096 >/dev/null || fail "bdev_uring_create"

bdevs=$(rpc bdev_get_bdevs) || fail "bdev_get_bdevs"
[ "$(json_get "$bdevs" 'len(j)')" = 3 ] || fail "expected 3 bdevs: $bdevs"
m=$(rpc bdev_get_bdevs -b Malloc0) || fail "bdev_get_bdevs -b Malloc0"
[ "$(json_get "$m" 'j[0]["block_size"]')" = 4096 ] || fail "Malloc0 block_size: $m"
[ "$(json_get "$m" 'j[0]["num_blocks"]')" = 4096 ] || fail "Malloc0 num_blocks (16 MiB / 4 KiB): $m"
n=$(rpc bdev_get_bdevs -b Null0)
[ "$(json_get "$n" 'j[0]["num_blocks"]')" = 16384 ] || fail "Null0 num_blocks (8 MiB / 512): $n"
u=$(rpc bdev_get_bdevs -b Uring0)
[ "$(json_get "$u" 'j[0]["num_blocks"]')" = 2048 ] || fail "Uring0 num_blocks (8 MiB / 4 KiB): $u"
# Lookup by UUID works too.
uuid=$(json_get "$m" 'j[0]["uuid"]')
[ "$(json_get "$(rpc bdev_get_bdevs -b "$uuid")" 'j[0]["name"]')" = Malloc0 ] || fail "lookup by uuid"
# A generated name when -b is not given.
gen=$(rpc bdev_malloc_create 1 512) || fail "bdev_malloc_create without a name"
[ -n "$gen" ] || fail "no generated name"
rpc bdev_get_iostat -b Malloc0 >/dev/null || fail "bdev_get_iostat"

for d in "bdev_malloc_delete Malloc0" "bdev_null_delete Null0" "bdev_uring_delete Uring0" "bdev_malloc_delete $(json_get "$gen" 'j')"; do
	[ "$(rpc $d)" = true ] || fail "$d"
done
[ "$(json_get "$(rpc bdev_get_bdevs)" 'len(j)')" = 0 ] || fail "bdevs left after deletes"
expect_rpc_error "-19" bdev_get_bdevs -b Malloc0
expect_rpc_error "Malloc0" bdev_malloc_delete Malloc0

dbk_stop
echo PASS
