/*
 * The per-VM API's router: each request is matched once against the route
 * table (api_routes.c), its path id checked, its body parsed as JSON, the
 * row's rule for when it is allowed applied (Firecracker's, from its
 * rpc_interface), and then the row's handler runs, under the VMM's lock
 * (a guest agent call lets it go while it waits on the guest: see struct
 * vmm in vmm_core.h). Each client connection has its own thread. Also the
 * API's socket and the answers the handlers share. See api.h and
 * api_call.h.
 */
#include "vmm/api_call.h"
#include "vmm/vmm_core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/json_check.h"
#include "vmm/api_agent.h"

/* Guest agent calls wait on the guest (one on the channel, the others on
 * its lock): each runs on a thread of its own, so the API's one polling
 * thread answers everything else meanwhile. */
static bool agent_call_waits(void *ctx, const struct api_request *req)
{
	(void)ctx;
	return !strcmp(req->path, "/agent") || !strncmp(req->path, "/agent/", 7);
}

/* Segments a path may have: the longest pattern's, plus one to notice a
 * longer path. */
#define MAX_SEGS 4

void vmm_call_fault(struct vmm_call *c, const char *msg)
{
	api_respond_fault(c->resp, 400, "%s", msg);
}

void vmm_call_ok(struct vmm_call *c)
{
	api_respond_empty(c->resp, 204);
}

void vmm_call_json(struct vmm_call *c, json_t *value)
{
	char *s = value ? json_dumps(value, JSON_COMPACT) : NULL;
	json_decref(value);
	if (!s) {
		api_respond_fault(c->resp, 500, "out of memory");
		return;
	}
	api_respond_text(c->resp, 200, s);
}

bool vmm_call_require(struct vmm_call *c, enum vmm_route_when when)
{
	const struct vmm *v = c->v;
	switch (when) {
	case ROUTE_PREBOOT:
		if (v->state == VMM_NOT_STARTED)
			return true;
		vmm_call_fault(c, PREBOOT_ONLY);
		return false;
	case ROUTE_POSTBOOT:
		if (v->state == VMM_RUNNING && v->vm)
			return true;
		vmm_call_fault(c, v->state == VMM_NOT_STARTED ? POSTBOOT_ONLY : "The microVM has stopped.");
		return false;
	case ROUTE_ANY:
		break;
	}
	return true;
}

bool vmm_call_allowed(struct vmm_call *c)
{
	return vmm_call_require(c, c->route->when);
}

/* Does `path` (split into segments) fit the row's pattern? The segment a
 * "{id}" matches goes to *id. With `short_id`, the pattern's last segment
 * "{id}" may be missing (answered "The ID cannot be empty"). */
static bool match(const struct vmm_route *r, char **seg, size_t nseg, bool short_id, const char **id)
{
	const char *p = r->path;
	size_t k = 0;
	*id = NULL;
	while (*p) {
		size_t len = strcspn(p, "/");
		bool is_id = len == 4 && !strncmp(p, "{id}", 4);
		if (k == nseg) {
			/* The path ended: only a missing last {id} may be. */
			if (!(short_id && is_id && !p[len] && r->id != ROUTE_ID_ANY))
				return false;
			*id = "";
			return true;
		}
		if (is_id)
			*id = seg[k];
		else if (strlen(seg[k]) != len || strncmp(seg[k], p, len))
			return false;
		k++;
		p += len;
		if (*p == '/')
			p++;
	}
	return k == nseg;
}

static const struct vmm_route *find(enum api_method m, char **seg, size_t nseg, const char **id)
{
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < vmm_nroutes; i++)
			if (vmm_routes[i].method == m && match(&vmm_routes[i], seg, nseg, pass == 1, id))
				return &vmm_routes[i];
	return NULL;
}

/* Split a path like Firecracker: leading slashes dropped, one trailing
 * slash ignored. More than MAX_SEGS segments gives MAX_SEGS + 1. */
static size_t split(char *path, char **seg)
{
	size_t plen = strlen(path);
	if (plen && path[plen - 1] == '/')
		path[--plen] = 0;
	size_t nseg = 0;
	char *save = path;
	if (!plen)
		return 0;
	for (;;) {
		if (nseg == MAX_SEGS)
			return nseg + 1;
		char *slash = strchr(save, '/');
		seg[nseg++] = save;
		if (!slash)
			return nseg;
		*slash = 0;
		save = slash + 1;
	}
}

bool vmm_call_route(struct vmm_call *c, enum api_method m, const char *path)
{
	char copy[256];
	char *seg[MAX_SEGS];
	snprintf(copy, sizeof(copy), "%s", path);
	size_t nseg = split(copy, seg);
	const char *id;
	c->method = m;
	c->route = nseg <= MAX_SEGS ? find(m, seg, nseg, &id) : NULL;
	c->id = NULL;   /* a path without ids */
	c->vm = c->v->state == VMM_RUNNING ? c->v->vm : NULL;
	c->paused = c->v->paused;
	return c->route != NULL;
}

/* The path's id as the row wants it; false once the fault is answered. */
static bool id_ok(struct vmm_call *c)
{
	if (!c->id || c->route->id == ROUTE_ID_ANY)
		return true;
	if (!*c->id) {
		vmm_call_fault(c, "The ID cannot be empty.");
		return false;
	}
	if (c->route->id == ROUTE_ID_TAG && !vmm_tag_valid(c->id)) {
		vmm_call_fault(c, "Share tags are 1 to 64 letters, digits and _ . + @ : - "
			       "(not starting with . or -).");
		return false;
	}
	if (c->route->id == ROUTE_ID_RESOURCE && !vmm_id_valid(c->id)) {
		vmm_call_fault(c, "API Resource IDs can only contain alphanumeric characters and underscores "
			       "(at most 64 of them).");
		return false;
	}
	return true;
}

static void route(struct vmm *v, const struct api_request *req, struct api_response *resp)
{
	struct vmm_call c = { .v = v, .resp = resp, .method = req->method };
	char path[512], shown[160];
	api_json_printable(shown, sizeof(shown), req->path);
	if (strlen(req->path) >= sizeof(path)) {
		api_respond_fault(resp, 400, "Invalid request method and/or path: %s %s.",
				  req->method == API_OTHER ? "?" : req->method_name, shown);
		return;
	}
	const char *p = req->path;
	while (*p == '/')
		p++;
	snprintf(path, sizeof(path), "%s", p);
	char *seg[MAX_SEGS];
	size_t nseg = split(path, seg);
	c.route = nseg <= MAX_SEGS ? find(req->method, seg, nseg, &c.id) : NULL;
	if (!c.route) {
		char m[16];
		api_json_printable(m, sizeof(m), req->method_name);
		api_respond_fault(resp, 400, "Invalid request method and/or path: %s %s.", m, shown);
		return;
	}
	if (req->method == API_GET && req->body_len) {
		vmm_call_fault(&c, "GET request cannot have a body.");
		return;
	}
	if (req->method != API_GET && !req->body_len && !c.route->body_optional) {
		vmm_call_fault(&c, req->method == API_PUT ? "Empty PUT request." : "Empty PATCH request.");
		return;
	}
	if (!id_ok(&c))
		return;
	json_t *body = NULL;
	if (req->body_len) {
		body = api_json_parse_body(req->body, req->body_len, c.err, sizeof(c.err));
		if (!body) {
			vmm_call_fault(&c, c.err);
			return;
		}
	}
	c.body = body;
	c.vm = v->state == VMM_RUNNING ? v->vm : NULL;
	c.paused = v->paused;
	LOG(v, VMM_LOG_INFO, "The API server received a %s request on \"%s\".",
	    req->method_name, shown);
	if (c.route->body_first || vmm_call_allowed(&c))
		c.route->handler(&c);
	json_decref(body);
}

void vmm_handle(void *ctx, const struct api_request *req, struct api_response *resp)
{
	struct vmm *v = ctx;
	pthread_mutex_lock(&v->lock);
	v->requests++;
	route(v, req, resp);
	if (resp->status >= 400) {
		v->failed_requests++;
		const json_t *fm = NULL;
		json_t *parsed = resp->body ? json_loads(resp->body, 0, NULL) : NULL;
		if (parsed)
			fm = json_object_get(parsed, "fault_message");
		LOG(v, VMM_LOG_ERROR, "Received Error. Status code: %u. Message: %s", resp->status,
		    fm && json_is_string(fm) ? json_string_value(fm) : "(none)");
		json_decref(parsed);
	}
	pthread_mutex_unlock(&v->lock);
}

const char *vmm_listen(struct vmm *v, const char *path, char *err, size_t errlen)
{
	if (v->server) {
		snprintf(err, errlen, "the API is already being served");
		return err;
	}
	struct api_server_config sc = {
		.socket_path = path,
		.max_body = API_DEFAULT_MAX_BODY,
		.large_prefix = "/agent/",
		.large_max_body = VMM_AGENT_MAX_BODY,
		/* A guest agent call waits on the guest without the lock:
		 * other clients are answered meanwhile (see struct vmm). */
		.waits = agent_call_waits,
		.handler = vmm_handle,
		.ctx = v,
	};
	struct api_server *s = api_server_start(&sc, err, errlen);
	if (!s)
		return err;
	pthread_mutex_lock(&v->lock);
	v->server = s;
	LOG(v, VMM_LOG_INFO, "API server started on %s", path);
	pthread_mutex_unlock(&v->lock);
	return NULL;
}
