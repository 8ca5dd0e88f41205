/* Control and inspection of the DAOS test double (daos_double.c), for the unit tests. */
#ifndef DBK_DAOS_DOUBLE_CONTROL_H
#define DBK_DAOS_DOUBLE_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daos.h"

/* Forget everything (files, handles, log, pending failures). */
void dd_reset(void);
/* The next call of function fn returns rc (daos_*: a negative DER code; dfs_*: a positive errno). */
void dd_fail_next(const char *fn, int rc);
/* The next launched event completes with ev_error (a negative DER code). */
void dd_fail_next_event(int ev_error);
/* Handle life-cycle calls so far, space separated ("daos_init daos_pool_connect ..."). */
const char *dd_log(void);
void dd_log_clear(void);
/* Events launched and not yet completed. */
int dd_pending(void);
/* Complete the nth (0-based, launch order) pending event: it becomes visible to daos_eq_poll. */
int dd_complete(int nth);
void dd_complete_all(void);
/* Handles still open (pools, containers, mounts, objects, event queues) plus daos_init references. */
int dd_live_handles(void);
/* A file of the (single) container: size and bytes; 0/NULL if it does not exist. */
size_t dd_file_size(const char *name);
const uint8_t *dd_file_data(const char *name);
/* Complete every event as soon as it is launched (for the module test). */
void dd_set_autocomplete(bool on);
/* The next call of fn first sleeps ms milliseconds (only daos_pool_connect honours it). */
void dd_delay_next(const char *fn, int ms);
/* How many times fn appears in the log. */
int dd_count_calls(const char *fn);
/* Arguments of the last dfs_open. */
daos_oclass_id_t dd_last_open_cid(void);
int dd_last_open_flags(void);

#endif
