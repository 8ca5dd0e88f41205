/*
 * The keyring: named secrets (DH-HMAC-CHAP secrets, TLS PSKs) loaded from key files, with SPDK's
 * semantics (keyring_file_add_key / keyring_file_remove_key / keyring_get_keys).
 *
 * - A key file is a regular file (not a symlink), owned by the daemon's user, mode 0600 or stricter
 *   (no group or other bits). Its content, with trailing whitespace removed, is the secret; it is read
 *   once, when the key is added, and kept in memory (wiped when the key is freed).
 * - Users hold references (dbk_keyring_get_key / dbk_key_put). Removing a key takes it out of the
 *   keyring at once (its name can be reused); a key still referenced stays listed with "removed": true
 *   until its last reference goes, and can no longer be read (dbk_key_get_secret returns -ENOKEY), so a
 *   host whose key was removed fails authentication instead of using a stale secret.
 * - The secret never goes to logs, JSON views or error messages; only names and paths do.
 *
 * Thread safety: every function may be called from any thread (one mutex around the registry; key
 * lookups happen at configuration and connection time, never per I/O). A struct dbk_key is immutable
 * once created except for its reference count and its removed flag.
 */
#ifndef DBK_KEYRING_KEYRING_H
#define DBK_KEYRING_KEYRING_H

#include <stddef.h>

#include <jansson.h>

#define DBK_KEY_NAME_MAX 255
#define DBK_KEY_MAX_SIZE 4096	/* largest key file accepted (bytes) */

struct dbk_key;

/* Add a key from a file: 0, or -errno with a message in err (never the key's content). */
int dbk_keyring_file_add_key(const char *name, const char *path, char *err, size_t errlen);
/* Remove a key: 0, or -ENOENT with a message. Holders keep their reference (see above). */
int dbk_keyring_file_remove_key(const char *name, char *err, size_t errlen);
/* A new reference to the key named name, or NULL (unknown or removed). */
struct dbk_key *dbk_keyring_get_key(const char *name);
/* A second reference to a key already held. */
struct dbk_key *dbk_key_dup(struct dbk_key *key);
/* Drop a reference (NULL is a no-op). */
void dbk_key_put(struct dbk_key *key);
const char *dbk_key_get_name(const struct dbk_key *key);
/*
 * Copy the secret into buf (NUL-terminated when there is room). Returns its length, -ENOKEY when the key
 * was removed, -ENOBUFS when buf is smaller than length + 1. The caller wipes buf (OPENSSL_cleanse).
 */
int dbk_key_get_secret(struct dbk_key *key, char *buf, size_t len);
/* keyring_get_keys: [{name, removed, probed, refcnt, module, path}] (live keys, then removed ones still held). */
json_t *dbk_keyring_get_keys_json(void);
/* save_config: one keyring_file_add_key per live key (name and path only). */
void dbk_keyring_write_config_json(json_t *array);
/* Drop the keyring's own references (shutdown); keys still held elsewhere live on until put. */
void dbk_keyring_cleanup(void);

#endif
