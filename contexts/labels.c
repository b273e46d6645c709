/* Context labels: "Labels": {"env": "prod"} in meta.json, set with
 * `context create/update --label k=v`, selected with `-c @k=v`.  meta.json
 * may be hostile: every key and value is checked when it is read. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "contexts/contexts-internal.h"

/* Key: a letter or digit, then letters, digits and _ . - /.  Value: also : +
 * (no ',' '=' '@' or glob characters: those build selections). */
static bool label_chars(const char *s, size_t max, const char *extra, bool first_alnum)
{
	size_t n = strlen(s);

	if (n == 0 || n > max || (first_alnum && !isalnum((unsigned char)s[0])))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr(extra, s[i]) == NULL)
			return false;
	return true;
}

int ctx_label_check(const char *key, const char *value, struct bh_err *err)
{
	if (!label_chars(key, CTX_LABEL_KEY_MAX, "_.-/", true))
		return bh_err_set(err, EINVAL,
		                  "invalid label key \"%.80s\": use 1-%d of a-z A-Z 0-9 _ . - / "
		                  "starting with a letter or digit",
		                  key, CTX_LABEL_KEY_MAX);
	if (!label_chars(value, CTX_LABEL_VALUE_MAX, "_.-/:+", false))
		return bh_err_set(err, EINVAL,
		                  "invalid value \"%.80s\" of label %s: use 1-%d of a-z A-Z 0-9 "
		                  "_ . - / : +",
		                  value, key, CTX_LABEL_VALUE_MAX);
	return 0;
}

const char *ctx_label_get(const struct ctx_meta *m, const char *key)
{
	for (size_t i = 0; i < m->nlabels; i++)
		if (strcmp(m->labels[i].key, key) == 0)
			return m->labels[i].value;
	return NULL;
}

void ctx_labels_free(struct ctx_meta *m)
{
	for (size_t i = 0; i < m->nlabels; i++) {
		free(m->labels[i].key);
		free(m->labels[i].value);
	}
	free(m->labels);
	m->labels = NULL;
	m->nlabels = 0;
}

static void label_remove(struct ctx_meta *m, const char *key)
{
	for (size_t i = 0; i < m->nlabels; i++)
		if (strcmp(m->labels[i].key, key) == 0) {
			free(m->labels[i].key);
			free(m->labels[i].value);
			m->labels[i] = m->labels[--m->nlabels];
			return;
		}
}

static int label_set(struct ctx_meta *m, const char *key, const char *value, struct bh_err *err)
{
	for (size_t i = 0; i < m->nlabels; i++)
		if (strcmp(m->labels[i].key, key) == 0) {
			free(m->labels[i].value);
			m->labels[i].value = bh_strdup(value);
			return 0;
		}
	if (m->nlabels >= CTX_LABELS_MAX)
		return bh_err_set(err, E2BIG, "more than %d labels", CTX_LABELS_MAX);
	m->labels = bh_realloc(m->labels, (m->nlabels + 1) * sizeof(*m->labels));
	m->labels[m->nlabels].key = bh_strdup(key);
	m->labels[m->nlabels].value = bh_strdup(value);
	m->nlabels++;
	return 0;
}

static int cmp_label(const void *a, const void *b)
{
	const struct ctx_label *x = a, *y = b;

	return strcmp(x->key, y->key);
}

int ctx_labels_apply(struct ctx_meta *m, const char *const *kv, size_t n, bool allow_remove,
                     struct bh_err *err)
{
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(kv[i], '=');
		cleanup_free char *key = eq ? bh_strndup(kv[i], (size_t)(eq - kv[i])) : NULL;

		if (key == NULL)
			return bh_err_set(err, EINVAL, "invalid label \"%.80s\": want KEY=VALUE",
			                  kv[i]);
		if (eq[1] == '\0' && allow_remove) {
			label_remove(m, key);
			continue;
		}
		if (ctx_label_check(key, eq + 1, err) < 0 || label_set(m, key, eq + 1, err) < 0)
			return -1;
	}
	if (m->nlabels > 1)
		qsort(m->labels, m->nlabels, sizeof(*m->labels), cmp_label);
	return 0;
}

int ctx_labels_parse(json_t *doc, const char *label, struct ctx_meta *m, struct bh_err *err)
{
	json_t *obj = json_object_get(doc, "Labels"), *v;
	const char *k;

	if (obj == NULL)
		return 0;
	if (!json_is_object(obj))
		return bh_err_set(err, EINVAL, "%s: \"Labels\" must be an object", label);
	json_object_foreach(obj, k, v)
	{
		if (!json_is_string(v))
			return bh_err_set(err, EINVAL, "%s: label %.80s must be a string", label,
			                  k);
		if (ctx_label_check(k, json_string_value(v), err) < 0 ||
		    label_set(m, k, json_string_value(v), err) < 0)
			return bh_err_wrap(err, "%s", label);
	}
	if (m->nlabels > 1)
		qsort(m->labels, m->nlabels, sizeof(*m->labels), cmp_label);
	return 0;
}

void ctx_labels_dump(const struct ctx_meta *m, json_t *doc)
{
	json_t *obj;

	if (m->nlabels == 0)
		return;
	obj = json_object();
	for (size_t i = 0; i < m->nlabels; i++)
		json_object_set_new(obj, m->labels[i].key, json_string(m->labels[i].value));
	json_object_set_new(doc, "Labels", obj);
}
