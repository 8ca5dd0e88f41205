#!/bin/bash
# The keyring (keyring_file_add_key / keyring_file_remove_key / keyring_get_keys), host keys on
# nvmf_subsystem_add_host / nvmf_subsystem_set_keys, nvmf_set_config's DH-HMAC-CHAP lists, and their
# save_config / -c round trip. The secrets must never show in answers, errors, the config or the log.
. "$(dirname "$0")/../lib/common.sh"
dbk_setup
dbk_start -m 0x1

K="$DBK_TMP/keys"
mkdir -m 0700 "$K"
# A valid DHHC-1 secret (32-byte key + CRC-32), built here with Python's zlib and base64.
mkkey() { # mkkey HMAC SEED -> DHHC-1 string
	python3 -c 'import base64,hashlib,sys,zlib
k=hashlib.sha256(sys.argv[2].encode()).digest()
print("DHHC-1:%02d:%s:" % (int(sys.argv[1]), base64.b64encode(k+zlib.crc32(k).to_bytes(4,"little")).decode()))' "$1" "$2"
}
S0=$(mkkey 0 host-secret-zero)
S1=$(mkkey 1 ctrl-secret-one)
PSK="NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:"
( umask 077; printf '%s\n' "$S0" >"$K/k0"; printf '%s\n' "$S1" >"$K/k1"; printf '%s\n' "$PSK" >"$K/psk";
  printf 'not-a-dhchap-secret\n' >"$K/junk"; : >"$K/empty" )

rpc keyring_file_add_key key0 "$K/k0" >/dev/null || fail "add key0"
rpc keyring_file_add_key ckey0 "$K/k1" >/dev/null || fail "add ckey0"
rpc keyring_file_add_key psk0 "$K/psk" >/dev/null || fail "add psk0"
rpc keyring_file_add_key junk "$K/junk" >/dev/null || fail "add junk"

# Refusals, each saying why.
expect_rpc_error "already exists" keyring_file_add_key key0 "$K/k0"
cp "$K/k0" "$K/loose"; chmod 0644 "$K/loose"
expect_rpc_error "invalid permissions for key file '$K/loose': 0644" keyring_file_add_key loose "$K/loose"
chmod 0640 "$K/loose"
expect_rpc_error "0640" keyring_file_add_key loose "$K/loose"
chmod 0400 "$K/loose"
rpc keyring_file_add_key ro "$K/loose" >/dev/null || fail "a 0400 key file must be accepted"
rpc keyring_file_remove_key ro >/dev/null || fail "remove ro"
ln -s "$K/k0" "$K/link"
expect_rpc_error "symbolic link" keyring_file_add_key link "$K/link"
expect_rpc_error "not a regular file" keyring_file_add_key dir "$K"
mkfifo -m 0600 "$K/fifo"
expect_rpc_error "not a regular file" keyring_file_add_key fifo "$K/fifo"
expect_rpc_error "not absolute" keyring_file_add_key rel keys/k0
expect_rpc_error "No such file" keyring_file_add_key none "$K/nothing"
expect_rpc_error "empty" keyring_file_add_key empty "$K/empty"
expect_rpc_error "key name" keyring_file_add_key "bad name" "$K/k0"
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
	cp "$K/k0" "$K/other"; chmod 0600 "$K/other"; chown nobody "$K/other"
	expect_rpc_error "not by the target's user" keyring_file_add_key other "$K/other"
fi
expect_rpc_error "not found" keyring_file_remove_key nothing

keys=$(rpc keyring_get_keys) || fail "keyring_get_keys"
[ "$(json_get "$keys" '[(k["name"], k["path"], k["removed"], k["refcnt"]) for k in j]')" = \
  "[('key0', '$K/k0', False, 1), ('ckey0', '$K/k1', False, 1), ('psk0', '$K/psk', False, 1), ('junk', '$K/junk', False, 1)]" ] ||
	fail "keyring_get_keys: $keys"

# Host keys.
NQN=nqn.2016-06.io.spdk:cnode1
H1=nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555
H2=nqn.2014-08.org.nvmexpress:uuid:22222222-2222-3333-4444-555555555555
rpc nvmf_create_transport -t TCP >/dev/null || fail "transport"
rpc nvmf_create_subsystem $NQN -s SPDK00000000000001 >/dev/null || fail "subsystem"
expect_rpc_error "not found in the keyring" nvmf_subsystem_add_host $NQN $H1 --dhchap-key nokey
expect_rpc_error "is not a DH-HMAC-CHAP secret" nvmf_subsystem_add_host $NQN $H1 --dhchap-key junk
expect_rpc_error "needs a host key" nvmf_subsystem_add_host $NQN $H1 --dhchap-ctrlr-key ckey0
[ "$(json_get "$(rpc nvmf_get_subsystems $NQN)" 'j[0]["hosts"]')" = "[]" ] || fail "a refused add_host left a host"
rpc nvmf_subsystem_add_host $NQN $H1 --dhchap-key key0 --dhchap-ctrlr-key ckey0 --psk psk0 >/dev/null ||
	fail "add_host with keys"
rpc nvmf_subsystem_add_host $NQN $H2 >/dev/null || fail "add_host without keys"
hosts=$(json_get "$(rpc nvmf_get_subsystems $NQN)" 'j[0]["hosts"]')
[ "$hosts" = "[{'nqn': '$H1', 'dhchap_key': 'key0', 'dhchap_ctrlr_key': 'ckey0', 'psk': 'psk0'}, {'nqn': '$H2'}]" ] ||
	fail "hosts: $hosts"
[ "$(json_get "$(rpc keyring_get_keys)" '[k["refcnt"] for k in j]')" = "[2, 2, 2, 1]" ] || fail "refcnt after add_host"

# set_keys: replace, then clear the controller key; unknown host / key refused.
rpc nvmf_subsystem_set_keys $NQN $H2 --dhchap-key ckey0 >/dev/null || fail "set_keys H2"
expect_rpc_error "not in the allowed list" nvmf_subsystem_set_keys $NQN nqn.2014-08.org.x:none --dhchap-key key0
expect_rpc_error "not found in the keyring" nvmf_subsystem_set_keys $NQN $H2 --dhchap-key nokey
[ "$(json_get "$(rpc nvmf_get_subsystems $NQN)" 'j[0]["hosts"][1]')" = "{'nqn': '$H2', 'dhchap_key': 'ckey0'}" ] ||
	fail "a refused set_keys changed the host"

# nvmf_set_config
rpc nvmf_set_config --dhchap-digests sha384,sha512 --dhchap-dhgroups null,ffdhe4096 >/dev/null || fail "set_config"
expect_rpc_error "unknown name 'md5'" nvmf_set_config --dhchap-digests sha256,md5
expect_rpc_error "unknown name 'ffdhe1024'" nvmf_set_config --dhchap-dhgroups ffdhe1024

# Removing a key in use: gone from the keyring, still referenced and listed as removed.
rpc keyring_file_remove_key psk0 >/dev/null || fail "remove psk0"
keys=$(rpc keyring_get_keys)
[ "$(json_get "$keys" '[(k["name"], k["removed"], k["refcnt"]) for k in j if k["name"] == "psk0"]')" = "[('psk0', True, 1)]" ] ||
	fail "removed key in use: $keys"
rpc keyring_file_add_key psk0 "$K/psk" >/dev/null || fail "a removed key's name must be reusable"
rpc keyring_file_remove_key psk0 >/dev/null || fail "remove the new psk0"
rpc keyring_file_remove_key junk >/dev/null || fail "remove junk"

# The config: keyring first, keys by name, the digests and groups.
rpc save_config >"$DBK_TMP/config.json" || fail "save_config"
cfg=$(cat "$DBK_TMP/config.json")
[ "$(json_get "$cfg" '[s["subsystem"] for s in j["subsystems"]][0]')" = keyring ] || fail "keyring is not first: $cfg"
[ "$(json_get "$cfg" '[e["params"]["name"] for e in j["subsystems"][0]["config"]]')" = "['key0', 'ckey0']" ] ||
	fail "keyring config: $cfg"
nv='[s for s in j["subsystems"] if s["subsystem"] == "nvmf"][0]["config"]'
[ "$(json_get "$cfg" "[e['params'] for e in $nv if e['method'] == 'nvmf_set_config']")" = \
  "[{'dhchap_digests': ['sha384', 'sha512'], 'dhchap_dhgroups': ['null', 'ffdhe4096']}]" ] || fail "set_config in config: $cfg"
[ "$(json_get "$cfg" "[e['params'].get('dhchap_key') for e in $nv if e['method'] == 'nvmf_subsystem_add_host']")" = \
  "['key0', 'ckey0']" ] || fail "host keys in config: $cfg"

# No secret anywhere.
for s in "$S0" "$S1" "$PSK"; do
	b64=$(printf '%s' "$s" | cut -d: -f3)
	grep -qF -- "$b64" "$DBK_TMP/config.json" && fail "a secret is in save_config"
	rpc keyring_get_keys | grep -qF -- "$b64" && fail "a secret is in keyring_get_keys"
	rpc nvmf_get_subsystems | grep -qF -- "$b64" && fail "a secret is in nvmf_get_subsystems"
done
dbk_stop
for s in "$S0" "$S1" "$PSK"; do
	grep -qF -- "$(printf '%s' "$s" | cut -d: -f3)" "$DBK_LOG" && fail "a secret is in the log"
done

# Restart from the config: the same keys, hosts and lists. psk0 was removed: the host's psk name is
# still in the config, so loading must fail loudly rather than admit the host without it.
"$DBK_TGT" -m 0x1 -r "$DBK_SOCK" -c "$DBK_TMP/config.json" >"$DBK_TMP/bad.log" 2>&1 && fail "-c with a missing psk succeeded"
grep -q "nvmf_subsystem_add_host.*PSK 'psk0' not found in the keyring" "$DBK_TMP/bad.log" ||
	fail "missing psk at -c: $(cat "$DBK_TMP/bad.log")"
python3 - "$DBK_TMP/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
for s in c["subsystems"]:
    for e in s["config"] or []:
        if e["method"] == "nvmf_subsystem_add_host":
            e["params"].pop("psk", None)
json.dump(c, open(p, "w"))
PY
dbk_start -m 0x1 -c "$DBK_TMP/config.json"
hosts=$(json_get "$(rpc nvmf_get_subsystems $NQN)" 'j[0]["hosts"]')
[ "$hosts" = "[{'nqn': '$H1', 'dhchap_key': 'key0', 'dhchap_ctrlr_key': 'ckey0'}, {'nqn': '$H2', 'dhchap_key': 'ckey0'}]" ] ||
	fail "hosts after -c: $hosts"
rpc save_config >"$DBK_TMP/config2.json" || fail "save_config 2"
[ "$(json_get "$(cat "$DBK_TMP/config.json")" 'j')" = "$(json_get "$(cat "$DBK_TMP/config2.json")" 'j')" ] ||
	fail "config changed across a restart"
rpc nvmf_subsystem_remove_host $NQN $H1 >/dev/null || fail "remove_host"
rpc keyring_file_remove_key key0 >/dev/null || fail "remove key0"
[ "$(json_get "$(rpc keyring_get_keys)" '[(k["name"], k["removed"], k["refcnt"]) for k in j]')" = "[('ckey0', False, 2)]" ] ||
	fail "after removing a key nobody holds: $(rpc keyring_get_keys)"
dbk_stop
echo "PASS"
