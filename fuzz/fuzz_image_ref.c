/* libFuzzer target: image references from API paths and queries
 * (rt_image_ref_normalize, rt_image_ref_familiar) and their resolution
 * against a store holding one tagged image (rt_image_resolve).
 * Invariants: a normalised reference normalises to itself, and so does its
 * familiar form; a resolved id is the one image's id. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz-util.h"
#include "runtime/rt-image-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char image_id[RT_IMAGE_ID_LEN];

static struct rt_store *store(void)
{
	static struct rt_store *s;
	static const char config[] = "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";
	char *root, hex[65];
	json_t *index = NULL;
	struct bh_err err;

	if (s != NULL)
		return s;
	root = fz_path("data");
	rt_store_sha256_hex(config, strlen(config), hex);
	snprintf(image_id, sizeof(image_id), "sha256:%s", hex);
	if (rt_store_open(root, &s, &err) < 0 ||
	    rt_store_put_blob(s, config, strlen(config), hex, &err) < 0 ||
	    rt_store_image_put(s, hex, 0, &err) < 0 || rt_store_tags_read(s, &index, &err) < 0)
		goto fail;
	rt_store_tags_set(index, "docker.io/library/busybox:latest", image_id);
	rt_store_tags_set(index, "localhost:5000/a/b:v1", image_id);
	if (rt_store_tags_write(s, index, &err) < 0)
		goto fail;
	json_decref(index);
	free(root);
	return s;
fail:
	fprintf(stderr, "fuzz_image_ref: store: %s\n", err.msg);
	abort();
}

/* "docker.io/x.y/z" prints as "x.y/z", which reads as registry x.y: Docker's
 * familiar names have the same ambiguity (reference.FamiliarName), so it is
 * not held against us. */
static bool familiar_is_ambiguous(const char *familiar, const char *normalized)
{
	size_t first = strcspn(familiar, "/");

	if (strcmp(familiar, normalized) == 0 || familiar[first] != '/')
		return false;
	return memchr(familiar, '.', first) || memchr(familiar, ':', first) ||
	       (first == 9 && memcmp(familiar, "localhost", 9) == 0);
}

static void check_idempotent(const char *normalized)
{
	struct bh_err err = {0};
	char *again = rt_image_ref_normalize(normalized, &err);
	char *familiar = rt_image_ref_familiar(normalized);
	char *back = rt_image_ref_normalize(familiar, &err);

	if (again == NULL || strcmp(again, normalized) != 0)
		abort(); /* normalize(normalize(x)) != normalize(x) */
	if (!familiar_is_ambiguous(familiar, normalized) &&
	    (back == NULL || strcmp(back, normalized) != 0))
		abort(); /* the familiar form names another image */
	free(again);
	free(familiar);
	free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rt_store *s = store();
	struct bh_err err = {0};
	char id[RT_IMAGE_ID_LEN];
	char *ref, *normalized;

	if (size > 4096)
		return 0;
	ref = bh_strndup((const char *)data, size);
	normalized = rt_image_ref_normalize(ref, &err);
	if (normalized != NULL)
		check_idempotent(normalized);
	if (rt_image_resolve(s, ref, id, &err) == 0 && strcmp(id, image_id) != 0)
		abort();
	free(normalized);
	free(ref);
	return 0;
}
