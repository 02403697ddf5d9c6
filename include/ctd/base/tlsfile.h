/* tlsfile: certificates, keys and CA bundles read for TLS, and the
 * OpenSSL contexts made from them. Every file is opened through
 * safefile (no link a local user made, owned by root or ctd's user) and
 * read into memory before OpenSSL parses it, so OpenSSL never opens a
 * path itself; a private key must also be unreadable by group and
 * others. Owns nothing after a call: the caller frees the context. */
#ifndef CTD_TLSFILE_H
#define CTD_TLSFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "ctd/base/safefile.h"

struct ssl_ctx_st;

#define CTD_TLSFILE_MAX (1u << 20)   /* a PEM file, at most */

struct ctd_tls_files {
	const char *ca;         /* PEM bundle the peer is verified against */
	const char *cert;       /* our certificate (and chain), "" none */
	const char *key;        /* its private key, "" none */
};

/* The file at path is a private key only its owner may read: opened
 * safely, and no permission bit for group or others. -EACCES (with why:
 * the mode and the fix), or safefile's errors. */
int ctd_tlsfile_check_key(const char *path, const struct ctd_owner *owner,
			  char *why, size_t cap);

/* A TLS 1.2+ client context that verifies the server against f->ca and
 * presents f->cert with f->key when set. -EINVAL/-EACCES/-errno with
 * why naming the file and OpenSSL's reason. */
int ctd_tlsfile_client_ctx(const struct ctd_tls_files *f,
			   const struct ctd_owner *owner,
			   struct ssl_ctx_st **ret, char *why, size_t cap);

/* A TLS 1.2+ server context with f->cert and f->key that requires a
 * client certificate chaining to f->ca. Same errors. */
int ctd_tlsfile_server_ctx(const struct ctd_tls_files *f,
			   const struct ctd_owner *owner,
			   struct ssl_ctx_st **ret, char *why, size_t cap);

/* SSL_CTX_free, for callers that include no OpenSSL header. */
void ctd_tlsfile_ctx_free(struct ssl_ctx_st *ctx);

#endif
