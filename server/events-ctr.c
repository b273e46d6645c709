/* Docker-shaped container events from the container manager: Actor.ID is
 * the container id, Attributes carry image, name and the container's labels
 * (as dockerd sends them), plus exitCode (die) or signal (kill). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "server/containers-internal.h"
#include "server/server-internal.h"

void ctr_event(const struct ctr *c, const char *action, const char *key, long val)
{
	json_t *attrs = json_object(), *labels = json_object_get(c->config, "Labels"), *v;
	const char *k;
	char num[24];

	json_object_foreach(labels, k, v)
	{
		if (json_is_string(v))
			json_object_set(attrs, k, v);
	}
	/* Set last: a label cannot pose as the image or the name. */
	json_object_set_new(attrs, "image", json_string(c->image_ref));
	json_object_set_new(attrs, "name", json_string(c->name));
	if (key != NULL) {
		snprintf(num, sizeof(num), "%ld", val);
		json_object_set_new(attrs, key, json_string(num));
	}
	srv_events_emit("container", action, c->id, attrs);
}

void ctr_event_ref(struct ctr_mgr *m, const char *ref, const char *action)
{
	struct ctr *c;
	struct bh_err ignore;

	pthread_mutex_lock(&m->mu);
	if (ctr_lookup(m->list, ref, &c, &ignore) == 0)
		ctr_event(c, action, NULL, 0);
	pthread_mutex_unlock(&m->mu);
}
