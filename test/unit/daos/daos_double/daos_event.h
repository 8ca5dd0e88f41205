/* Test double: event queue part of the DAOS client API (see daos.h). */
#ifndef DBK_DAOS_DOUBLE_DAOS_EVENT_H
#define DBK_DAOS_DOUBLE_DAOS_EVENT_H

#include "daos.h"

#define DAOS_EQ_NOWAIT 0

int daos_eq_create(daos_handle_t *eqh);
int daos_eq_destroy(daos_handle_t eqh, int flags);
int daos_eq_poll(daos_handle_t eqh, int wait_running, int64_t timeout, unsigned int nevents, daos_event_t **events);
int daos_event_init(daos_event_t *ev, daos_handle_t eqh, daos_event_t *parent);
int daos_event_fini(daos_event_t *ev);

#endif
