/* The keyring: see keyring.h. */
#include "keyring/keyring.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "util/log.h"

struct dbk_key {
	char name[DBK_KEY_NAME_MAX + 1];
	char *path;
	char *secret;		/* NUL-terminated, secret_len bytes */
	size_t secret_len;
	atomic_int refcnt;
	bool removed;		/* under g_lock */
	bool listed;		/* on g_keys (under g_lock) */
	struct dbk_key *next;	/* g_keys or g_removed (under g_lock) */
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dbk_key *g_keys;		/* live, in order of addition */
static struct dbk_key *g_removed;	/* removed but still referenced */

static bool name_ok(const char *name, char *err, size_t errlen)
{
	size_t n = strlen(name);

	if (n == 0 || n > DBK_KEY_NAME_MAX) {
		snprintf(err, errlen, "key name must be 1 to %d characters", DBK_KEY_NAME_MAX);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-' || c == ':' || c == '@' || c == '+')) {
			snprintf(err, errlen, "key name '%.64s' has a character other than letters, digits and ._-:@+",
				 name);
			return false;
		}
	}
	return true;
}

static void key_free(struct dbk_key *k)
{
	if (!k)
		return;
	if (k->secret) {
		OPENSSL_cleanse(k->secret, k->secret_len);
		free(k->secret);
	}
	free(k->path);
	free(k);
}

/* Read and check the key file; on success k->secret holds its trimmed content. */
static int read_key_file(struct dbk_key *k, const char *path, char *err, size_t errlen)
{
	struct stat st;
	char *buf;
	ssize_t n;
	size_t len = 0;
	int fd, rc;

	if (path[0] != '/') {
		snprintf(err, errlen, "key file path '%s' is not absolute", path);
		return -EINVAL;
	}
	/* O_NOFOLLOW: a symlink is refused, not followed; fstat checks the file actually opened. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		if (rc == -ELOOP)
			snprintf(err, errlen, "key file '%s' is a symbolic link (not allowed)", path);
		else
			snprintf(err, errlen, "cannot open key file '%s': %s", path, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot stat key file '%s': %s", path, strerror(-rc));
		close(fd);
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "key file '%s' is not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	if (st.st_uid != geteuid()) {
		snprintf(err, errlen, "key file '%s' is owned by uid %u, not by the target's user (uid %u)", path,
			 (unsigned)st.st_uid, (unsigned)geteuid());
		close(fd);
		return -EPERM;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen, "invalid permissions for key file '%s': 0%03o (group and others must have no "
			 "access: chmod 0600)", path, (unsigned)(st.st_mode & 0777));
		close(fd);
		return -EPERM;
	}
	if (st.st_size <= 0 || st.st_size > DBK_KEY_MAX_SIZE) {
		snprintf(err, errlen, "key file '%s' is %s (at most %d bytes)", path,
			 st.st_size <= 0 ? "empty" : "too large", DBK_KEY_MAX_SIZE);
		close(fd);
		return -EINVAL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	while (len < (size_t)st.st_size) {
		n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
			   buf[len - 1] == '\t'))
		len--;
	buf[len] = '\0';
	if (len == 0 || memchr(buf, '\0', len)) {
		snprintf(err, errlen, "key file '%s' %s", path, len == 0 ? "holds no key" : "holds binary data");
		OPENSSL_cleanse(buf, (size_t)st.st_size + 1);
		free(buf);
		return -EINVAL;
	}
	k->secret = buf;
	k->secret_len = (size_t)st.st_size + 1;	/* wipe the whole allocation */
	return (int)len;
}

static struct dbk_key *find_locked(const char *name)
{
	for (struct dbk_key *k = g_keys; k; k = k->next)
		if (strcmp(k->name, name) == 0)
			return k;
	return NULL;
}

int dbk_keyring_file_add_key(const char *name, const char *path, char *err, size_t errlen)
{
	struct dbk_key *k, **pp;
	int rc;

	if (!name_ok(name, err, errlen))
		return -EINVAL;
	k = calloc(1, sizeof(*k));
	if (!k || !(k->path = strdup(path))) {
		key_free(k);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(k->name, sizeof(k->name), "%s", name);
	rc = read_key_file(k, path, err, errlen);
	if (rc < 0) {
		key_free(k);
		return rc;
	}
	atomic_init(&k->refcnt, 1);	/* the keyring's own */
	pthread_mutex_lock(&g_lock);
	if (find_locked(name)) {
		pthread_mutex_unlock(&g_lock);
		key_free(k);
		snprintf(err, errlen, "key '%s' already exists", name);
		return -EEXIST;
	}
	k->listed = true;
	for (pp = &g_keys; *pp; pp = &(*pp)->next)
		;
	*pp = k;
	pthread_mutex_unlock(&g_lock);
	DBK_INFOLOG("key '%s' added from %s", name, path);
	return 0;
}

/* Drop a reference; the last one unlinks the key from g_removed and frees it. */
void dbk_key_put(struct dbk_key *k)
{
	if (!k)
		return;
	pthread_mutex_lock(&g_lock);
	if (atomic_fetch_sub(&k->refcnt, 1) != 1) {
		pthread_mutex_unlock(&g_lock);
		return;
	}
	if (k->listed) {
		/* only the keyring's reference can be the last of a listed key, and it is dropped on removal */
		for (struct dbk_key **pp = &g_keys; *pp; pp = &(*pp)->next) {
			if (*pp == k) {
				*pp = k->next;
				break;
			}
		}
	} else {
		for (struct dbk_key **pp = &g_removed; *pp; pp = &(*pp)->next) {
			if (*pp == k) {
				*pp = k->next;
				break;
			}
		}
	}
	pthread_mutex_unlock(&g_lock);
	key_free(k);
}

int dbk_keyring_file_remove_key(const char *name, char *err, size_t errlen)
{
	struct dbk_key *k, **pp;

	pthread_mutex_lock(&g_lock);
	for (pp = &g_keys; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->name, name) == 0)
			break;
	k = *pp;
	if (!k) {
		pthread_mutex_unlock(&g_lock);
		snprintf(err, errlen, "key '%.255s' not found", name);
		return -ENOENT;
	}
	*pp = k->next;
	k->listed = false;
	k->removed = true;
	k->next = g_removed;
	g_removed = k;
	pthread_mutex_unlock(&g_lock);
	if (atomic_load(&k->refcnt) > 1)
		DBK_NOTICELOG("key '%s' removed while in use (%d users): they can no longer use it", name,
			      atomic_load(&k->refcnt) - 1);
	dbk_key_put(k);
	return 0;
}

struct dbk_key *dbk_keyring_get_key(const char *name)
{
	struct dbk_key *k;

	pthread_mutex_lock(&g_lock);
	k = find_locked(name);
	if (k)
		atomic_fetch_add(&k->refcnt, 1);
	pthread_mutex_unlock(&g_lock);
	return k;
}

struct dbk_key *dbk_key_dup(struct dbk_key *k)
{
	if (k)
		atomic_fetch_add(&k->refcnt, 1);
	return k;
}

const char *dbk_key_get_name(const struct dbk_key *k)
{
	return k->name;
}

int dbk_key_get_secret(struct dbk_key *k, char *buf, size_t len)
{
	size_t n;
	bool removed;

	pthread_mutex_lock(&g_lock);
	removed = k->removed;
	pthread_mutex_unlock(&g_lock);
	if (removed)
		return -ENOKEY;
	n = strlen(k->secret);
	if (n + 1 > len)
		return -ENOBUFS;
	memcpy(buf, k->secret, n + 1);
	return (int)n;
}

static json_t *key_json(const struct dbk_key *k)
{
	return json_pack("{s:s, s:b, s:b, s:i, s:s, s:s}", "name", k->name, "removed", k->removed, "probed", false,
			 "refcnt", atomic_load(&k->refcnt), "module", "keyring_file", "path", k->path);
}

json_t *dbk_keyring_get_keys_json(void)
{
	json_t *arr = json_array();

	pthread_mutex_lock(&g_lock);
	for (struct dbk_key *k = g_keys; k; k = k->next)
		json_array_append_new(arr, key_json(k));
	for (struct dbk_key *k = g_removed; k; k = k->next)
		json_array_append_new(arr, key_json(k));
	pthread_mutex_unlock(&g_lock);
	return arr;
}

void dbk_keyring_write_config_json(json_t *array)
{
	pthread_mutex_lock(&g_lock);
	for (struct dbk_key *k = g_keys; k; k = k->next)
		json_array_append_new(array, json_pack("{s:s, s:{s:s, s:s}}", "method", "keyring_file_add_key",
						       "params", "name", k->name, "path", k->path));
	pthread_mutex_unlock(&g_lock);
}

void dbk_keyring_cleanup(void)
{
	char err[64];

	for (;;) {
		char name[DBK_KEY_NAME_MAX + 1];

		pthread_mutex_lock(&g_lock);
		if (!g_keys) {
			pthread_mutex_unlock(&g_lock);
			break;
		}
		snprintf(name, sizeof(name), "%s", g_keys->name);
		pthread_mutex_unlock(&g_lock);
		dbk_keyring_file_remove_key(name, err, sizeof(err));
	}
}
