/*
 * A main() for the fuzz harnesses in builds without libFuzzer (gcc, the ASan
 * build): runs LLVMFuzzerTestOneInput once on every file named, or on every
 * file in every directory named, in name order, and nothing else. The
 * regression inputs and the seed corpora replay this way in every build.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long len;

	if (!f) {
		perror(path);
		return -1;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
		perror(path);
		fclose(f);
		return -1;
	}
	/* An exact-size heap copy: a read past the input's end is caught by ASan. */
	buf = malloc(len ? (size_t)len : 1);
	if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
		fprintf(stderr, "%s: read failed\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)len);
	free(buf);
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
	unsigned long runs = 0;
	int rc = 0;

	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		struct stat st;

		if (argv[i][0] == '-')
			continue;	/* libFuzzer-style flags: ignored */
		if (stat(argv[i], &st) != 0) {
			/* A harness with no regression inputs yet has no directory: nothing to replay. */
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			struct dirent **ents;
			int n = scandir(argv[i], &ents, NULL, by_name);

			for (int j = 0; j < n; j++) {
				char path[4096];

				snprintf(path, sizeof(path), "%s/%s", argv[i], ents[j]->d_name);
				if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
					if (run_file(path) != 0)
						rc = 1;
					runs++;
				}
				free(ents[j]);
			}
			free(n >= 0 ? ents : NULL);
		} else {
			if (run_file(argv[i]) != 0)
				rc = 1;
			runs++;
		}
	}
	printf("replayed %lu inputs\n", runs);
	return rc;
}
