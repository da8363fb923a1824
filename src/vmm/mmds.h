/*
 * MMDS, Firecracker's microVM metadata service: a JSON document the host
 * sets through the API (PUT/PATCH/GET /mmds) and the guest reads over HTTP
 * at a link-local address (169.254.169.254 by default) through the NICs
 * named in PUT /mmds/config. This file is the service: the data store and
 * the HTTP requests the guest makes; the NIC side that answers ARP and TCP
 * for the address is src/virtio/net_mmds.c.
 *
 * Versions (Firecracker's): V1 answers any GET; V2 answers a GET only with
 * a session token in X-metadata-token, which the guest first asks for with
 * PUT /latest/api/token and X-metadata-token-ttl-seconds (1 to 21600).
 * A GET names a path into the document; the answer is the value as JSON
 * when the request accepts application/json (and imds_compat is off), else
 * in EC2 IMDS's text form: an object's keys one per line (a sub-object's
 * with a '/'), a string as itself.
 */
#ifndef SKIFF_VMM_MMDS_H
#define SKIFF_VMM_MMDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* The data store's largest size as compact JSON (Firecracker's default). */
#define MMDS_MAX_BYTES 51200
/* The largest request the guest may send. */
#define MMDS_MAX_REQUEST 4096

struct mmds;

struct mmds *mmds_new(void);
void mmds_free(struct mmds *m);

/* The version (1 or 2) and whether every answer is IMDS text. */
void mmds_configure(struct mmds *m, int version, bool imds_compat);

/* The API. put replaces the document, patch merges (RFC 7396: null
 * removes a member); both refuse a result over MMDS_MAX_BYTES. 0, or -1
 * with a message. get returns a copy (NULL: not set yet). */
int mmds_put(struct mmds *m, const json_t *doc, char *err, size_t errlen);
int mmds_patch(struct mmds *m, const json_t *patch, char *err, size_t errlen);
json_t *mmds_get(struct mmds *m);

/* One HTTP request from the guest, req[0..len). 0: *resp (malloc'd,
 * *resp_len bytes) is the whole answer; 1: the request is not complete
 * yet (more bytes will come); with `eof` (the guest closed its side) an
 * incomplete request is answered as a bad one. Thread-safe. */
int mmds_http(struct mmds *m, const uint8_t *req, size_t len, bool eof, uint8_t **resp,
	      size_t *resp_len);

#endif
