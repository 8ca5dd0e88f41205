#!/usr/bin/env bash
# Re-records the seed corpora (fuzz/corpus/) from real traffic. Needs root, tcpdump, a release build.
#   fuzz/record/record.sh [BUILD_DIR] [OUT_DIR]
# In a network namespace of its own (dbk-fuzz-rec), with tcpdump on its loopback, it runs
#   1. session.sh: the real daosblk-tgt configured through daosblk-rpc (the RPC bytes are recorded by
#      rpc_proxy.py) and daosblk-perf runs against it (reads, writes, in-capsule and R2T, digests on and off,
#      discovery), then save_config;
#   2. the raw negative tests, the compatibility tests and the ANA tests (test/integration/nvmf), which speak
#      NVMe/TCP from Python, some of it malformed on purpose;
#   3. the SPDK initiator test when SPDK is built (it skips otherwise);
#   4. optionally (DBK_RECORD_KERNEL=1) the Linux kernel host's seed workflow;
# and turns the captures into seeds with make_seeds.py. Review the result, then copy what is worth keeping
# into fuzz/corpus/<harness>/ (a few dozen small files per harness at most).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
B=$(cd "${1:-$top/build}" && pwd)
O=${2:-$(mktemp -d /tmp/dbk-fuzz-rec.XXXXXX)}
mkdir -p "$O"
ns=dbk-fuzz-rec
command -v tcpdump >/dev/null || { echo "record.sh: tcpdump is needed (apt-get install tcpdump)" >&2; exit 1; }
ip netns del $ns 2>/dev/null || true
ip netns add $ns
ip netns exec $ns ip link set lo up
dump=""
cleanup() {
    [ -n "$dump" ] && kill "$dump" 2>/dev/null && wait "$dump" 2>/dev/null
    ip netns del $ns 2>/dev/null || true
}
trap cleanup EXIT
capture() {  # capture NAME CMD...
    local name=$1
    shift
    ip netns exec $ns tcpdump -i lo -s 0 -U -w "$O/$name.pcap" tcp >/dev/null 2>&1 &
    dump=$!
    sleep 1
    ip netns exec $ns "$@" || echo "record.sh: '$*' failed (captured anyway)" >&2
    sleep 1
    kill "$dump"
    wait "$dump" 2>/dev/null || true
    dump=""
}
capture perf bash "$here/session.sh" "$B" "$O/session"
capture raw env DBK_BUILD_DIR="$B" DBK_SOURCE_DIR="$top" python3 "$top/test/integration/nvmf/test_tcp_negative.py"
capture compat env DBK_BUILD_DIR="$B" DBK_SOURCE_DIR="$top" python3 "$top/test/integration/nvmf/test_compat.py"
capture ana env DBK_BUILD_DIR="$B" DBK_SOURCE_DIR="$top" python3 "$top/test/integration/nvmf/test_ana.py"
capture spdk env DBK_BUILD_DIR="$B" DBK_SOURCE_DIR="$top" bash "$top/test/integration/nvmf/test_spdk_initiator.sh"
# 4. With DBK_RECORD_KERNEL=1: the seed workflow from the Linux kernel host (test/kernel/test_seed_malloc.sh,
#    qemu; it takes the kernel tests' machine-wide lock), captured in the kernel-initiator's namespace.
tags=(perf raw compat ana spdk)
if [ "${DBK_RECORD_KERNEL:-0}" = 1 ]; then
    netns=${KI_NETNS:-nvtest}
    ( for _ in $(seq 1 6000); do ip netns list 2>/dev/null | grep -q "^$netns" && break; sleep 0.1; done
      exec ip netns exec "$netns" tcpdump -i any -s 0 -U -w "$O/kernel.pcap" tcp port 4420 ) >/dev/null 2>&1 &
    kdump=$!
    env DBK_BUILD_DIR="$B" DBK_SOURCE_DIR="$top" bash "$top/test/kernel/test_seed_malloc.sh" ||
        echo "record.sh: the kernel test failed (captured anyway)" >&2
    kill "$kdump" 2>/dev/null
    wait "$kdump" 2>/dev/null || true
    tags+=(kernel)
fi
for t in "${tags[@]}"; do
    python3 "$here/make_seeds.py" --tag "$t" "$O/corpus" "$O/$t.pcap"
done
mkdir -p "$O/corpus/rpc" "$O/corpus/config"
cp "$O/session/rpc-seed.bin" "$O/corpus/rpc/session-setup"
cp "$O/session/rpc-teardown.bin" "$O/corpus/rpc/session-teardown"
cp "$O/session/config-full.json" "$O/corpus/config/save_config-full.json"
cp "$O/session/config-partial.json" "$O/corpus/config/save_config-partial.json"
echo "record.sh: seeds in $O/corpus"
