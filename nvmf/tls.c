/*
 * NVMe/TCP TLS (TP 8011) in the target core: which PSK a host must use on a secure listener, and the binding of
 * a TLS connection to the host and subsystem of its PSK identity at Connect. The TLS protocol itself is the
 * transport's (nvmf/tcp/sock_tls.c); keys come from the keyring (nvmf_subsystem_add_host --psk). Main reactor.
 */
#include <errno.h>
#include <string.h>

#include "keyring/keyring.h"
#include "nvmf/nvmf_internal.h"
#include "nvmf/transport.h"
#include "util/log.h"

/* s listens on local, and with a secure channel. */
static bool listens_securely(const struct dbk_nvmf_subsystem *s, const struct dbk_nvmf_listen_addr *local)
{
	for (const struct nvmf_subsys_listener *sl = s->listeners; sl; sl = sl->next)
		if (sl->listener->addr.secure_channel && nvmf_listen_addr_equal(&sl->listener->addr, local))
			return true;
	return false;
}

int dbk_nvmf_tgt_tls_psk(const char *subnqn, const char *hostnqn, const struct dbk_nvmf_listen_addr *local,
			 char *secret, size_t len)
{
	/*
	 * The discovery subsystem has no hosts of its own: a host reaches it over TLS with the PSK it has for a
	 * subsystem that listens securely here (the first one, in creation order).
	 */
	bool discovery = strcmp(subnqn, NVME_DISC_SUBSYS_NQN) == 0;

	if (!g_nvmf_tgt.running)
		return -ENOENT;
	for (const struct dbk_nvmf_subsystem *s = g_nvmf_tgt.subsystems; s; s = s->next) {
		if (s->discovery || s->deleting || (!discovery && strcmp(s->nqn, subnqn) != 0))
			continue;
		if (!listens_securely(s, local))
			continue;
		const struct nvmf_host *h = nvmf_subsystem_find_host(s, hostnqn);
		if (!h || !h->psk)
			continue;
		return dbk_key_get_secret(h->psk, secret, len);
	}
	return -ENOENT;
}

bool nvmf_tls_connect_allowed(const struct dbk_nvmf_qpair *q, const struct dbk_nvmf_subsystem *s,
			      const char *hostnqn)
{
	if (!q->tls_hostnqn)
		return true;	/* plain TCP: a secure listener takes no plain connection, so nothing to bind */
	if (strcmp(q->tls_hostnqn, hostnqn) != 0) {
		DBK_NOTICELOG("connect: host '%s' on a TLS connection whose PSK identity names host '%s'", hostnqn,
			      q->tls_hostnqn);
		return false;
	}
	if (!s->discovery && strcmp(q->tls_subnqn, s->nqn) != 0) {
		DBK_NOTICELOG("connect: subsystem '%s' on a TLS connection whose PSK identity names '%s'", s->nqn,
			      q->tls_subnqn);
		return false;
	}
	return true;
}
