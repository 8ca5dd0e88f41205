#!/usr/bin/env bash
# Installs the Debian 12 packages daosblk needs to build, run and test (as root).
# Idempotent: packages already present are not fetched again.
set -euo pipefail

# prometheus (server + promtool): test/integration/metrics runs its own instance (temp config, TSDB and port);
# the package's system service is not used by anything here.
PKGS=(build-essential cmake ninja-build pkg-config git
      libjansson-dev liburing-dev libisal-dev uuid-dev libssl-dev libcmocka-dev
      python3 iproute2 procps util-linux e2fsprogs nvme-cli prometheus
      openssl                                  # test/integration/nvmf/test_tls.py: openssl s_client as a TLS host
      cpio xz-utils kmod                       # test/kernel/guest_kernel.sh: a guest with a bookworm-backports kernel
      debhelper dpkg-dev lintian help2man      # the Debian package (debian/) and its man pages
      clang libclang-rt-dev llvm)              # the libFuzzer harnesses (fuzz/) and their coverage report

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: run as root (apt-get install)" >&2
    exit 1
fi

# test/kernel/test_auth_dhchap.sh boots a bookworm-backports kernel (Debian 12's has no NVMe in-band auth):
# add that suite to the apt sources when none of them has it.
need_update=0
if [ -r /etc/os-release ] && grep -q '^VERSION_CODENAME=bookworm$' /etc/os-release &&
   ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "install-deps: adding bookworm-backports to the apt sources"
    printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm-backports' 'Components: main' \
        'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' >/etc/apt/sources.list.d/bookworm-backports.sources
    need_update=1
fi

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ] || [ "$need_update" = 1 ]; then
    apt-get -o DPkg::Lock::Timeout=600 -q update >/dev/null
fi
if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 -q install -y --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-deps: all packages present"
