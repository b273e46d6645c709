/* Selections for -c: "a,b" (a list), "prod-*" (shell-style globs: * ? [a-z]
 * [!x]) and "@env=prod" / "@env" (labels; the value may be a glob).  Terms
 * are joined (a union); each must match something.  Globs and labels never
 * pick the built-in "default" context: name it to include it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "contexts/contexts-internal.h"

#define GLOB_CHARS "*?["

bool ctx_selection_is_pattern(const char *spec)
{
	return spec != NULL && (spec[0] == '@' || strpbrk(spec, "," GLOB_CHARS) != NULL);
}

/* [...] at *pp (just after '['): advances past ']' and says whether c is in
 * the class.  An unterminated '[' is not a class (the caller matches '['). */
static bool class_match(const char **pp, char c)
{
	const char *p = *pp;
	bool neg = false, ok = false;

	if (*p == '!' || *p == '^') {
		neg = true;
		p++;
	}
	if (*p == ']') { /* a leading ']' is a member */
		ok = c == ']';
		p++;
	}
	while (*p != '\0' && *p != ']') {
		if (p[1] == '-' && p[2] != '\0' && p[2] != ']') {
			ok |= (unsigned char)c >= (unsigned char)p[0] &&
			      (unsigned char)c <= (unsigned char)p[2];
			p += 3;
		} else {
			ok |= c == *p++;
		}
	}
	*pp = p + 1;
	return ok != neg;
}

static bool has_class_end(const char *p)
{
	p++;
	if (*p == '!' || *p == '^')
		p++;
	if (*p == ']')
		p++;
	return strchr(p, ']') != NULL;
}

/* Matches one character at *pp (not '*'), advancing *pp on success. */
static bool one_match(const char **pp, char c)
{
	const char *p = *pp;

	if (*p == '?') {
		*pp = p + 1;
		return true;
	}
	if (*p == '[' && has_class_end(p)) {
		p++;
		if (!class_match(&p, c))
			return false;
		*pp = p;
		return true;
	}
	if (*p != c)
		return false;
	*pp = p + 1;
	return true;
}

/* Iterative, with one backtrack point per '*': linear in practice, never
 * exponential on a hostile pattern. */
bool ctx_glob_match(const char *p, const char *s)
{
	const char *star_p = NULL, *star_s = NULL;

	while (*s != '\0') {
		if (*p == '*') {
			star_p = ++p;
			star_s = s;
			continue;
		}
		if (*p != '\0' && one_match(&p, *s)) {
			s++;
			continue;
		}
		if (star_p == NULL)
			return false;
		p = star_p;
		s = ++star_s;
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}

void ctx_selection_free(struct ctx_selection *sel)
{
	for (size_t i = 0; i < sel->n; i++)
		ctx_meta_free(&sel->items[i]);
	free(sel->items);
	free(sel->named);
	memset(sel, 0, sizeof(*sel));
}

static bool selected(const struct ctx_selection *sel, const char *name)
{
	for (size_t i = 0; i < sel->n; i++)
		if (strcmp(sel->items[i].name, name) == 0)
			return true;
	return false;
}

/* Takes m over (a copy of the struct; the caller must not free it). */
static void add(struct ctx_selection *sel, struct ctx_meta *m, bool named)
{
	for (size_t i = 0; i < sel->n; i++)
		if (strcmp(sel->items[i].name, m->name) == 0) {
			sel->named[i] |= named;
			ctx_meta_free(m);
			return;
		}
	sel->items = bh_realloc(sel->items, (sel->n + 1) * sizeof(*sel->items));
	sel->named = bh_realloc(sel->named, (sel->n + 1) * sizeof(*sel->named));
	sel->items[sel->n] = *m;
	sel->named[sel->n++] = named;
	memset(m, 0, sizeof(*m));
}

static int label_term(const char *term, char **key, const char **value, struct bh_err *err)
{
	const char *eq = strchr(term + 1, '=');

	*key = eq ? bh_strndup(term + 1, (size_t)(eq - term - 1)) : bh_strdup(term + 1);
	*value = eq ? eq + 1 : NULL;
	if ((*key)[0] == '\0' || (eq != NULL && eq[1] == '\0')) {
		free(*key);
		*key = NULL;
		return bh_err_set(
		    err, EINVAL, "invalid label selector \"%.80s\": want @KEY=VALUE or @KEY", term);
	}
	return 0;
}

static bool term_matches(const struct ctx_meta *m, const char *term, const char *key,
                         const char *value)
{
	const char *v;

	if (strcmp(m->name, CTX_DEFAULT_NAME) == 0)
		return false;
	if (key == NULL)
		return ctx_glob_match(term, m->name);
	v = ctx_label_get(m, key);
	return v != NULL && (value == NULL || ctx_glob_match(value, v));
}

/* A glob or a label selector against the whole store. */
static int pattern_term(const char *config_dir, struct ctx_selection *sel,
                        const struct ctx_meta *all, size_t n, const char *term, struct bh_err *err)
{
	cleanup_free char *key = NULL;
	const char *value = NULL;
	size_t hits = 0;

	if (term[0] == '@' && label_term(term, &key, &value, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct ctx_meta copy;
		if (!term_matches(&all[i], term, key, value))
			continue;
		hits++;
		if (selected(sel, all[i].name))
			continue;
		/* The list keeps its own: load a copy to own. */
		if (ctx_load(config_dir, all[i].name, &copy, err) < 0)
			return -1;
		add(sel, &copy, false);
	}
	if (hits == 0)
		return bh_err_set(err, ENOENT,
		                  "-c \"%.80s\" matches no context (berth context ls lists them)",
		                  term);
	return 0;
}

static int one_term(const char *config_dir, struct ctx_selection *sel, const char *term,
                    struct ctx_meta **all, size_t *nall, struct bh_err *err)
{
	struct ctx_meta m;

	if (term[0] == '\0')
		return bh_err_set(err, EINVAL, "-c: an empty name in the list");
	if (term[0] != '@' && strpbrk(term, GLOB_CHARS) == NULL) {
		if (ctx_load(config_dir, term, &m, err) < 0)
			return -1;
		add(sel, &m, true);
		return 0;
	}
	if (*all == NULL && ctx_list(config_dir, all, nall, err) < 0)
		return -1;
	return pattern_term(config_dir, sel, *all, *nall, term, err);
}

int ctx_select(const char *config_dir, const char *spec, struct ctx_selection *out,
               struct bh_err *err)
{
	cleanup_free char *copy = bh_strdup(spec);
	struct ctx_meta *all = NULL;
	size_t nall = 0;
	char *term = copy, *comma;
	int r = 0;

	memset(out, 0, sizeof(*out));
	for (;;) {
		comma = strchr(term, ',');
		if (comma != NULL)
			*comma = '\0';
		r = one_term(config_dir, out, term, &all, &nall, err);
		if (r < 0 || comma == NULL)
			break;
		term = comma + 1;
	}
	if (all != NULL)
		ctx_list_free(all, nall);
	if (r < 0)
		ctx_selection_free(out);
	return r;
}
