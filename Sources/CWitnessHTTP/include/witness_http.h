#ifndef VARSTORE_WITNESS_HTTP_H
#define VARSTORE_WITNESS_HTTP_H

#include <stddef.h>

/// One HTTP exchange with a rollback witness (spec/rollback.md, "HTTP API") for
/// `varstore qtest --witness URL`, through libcurl. libcurl is loaded (dlopen "libcurl.so.4")
/// on the first exchange, so a varstore process that never talks to a witness does not load
/// it, nor the TLS, LDAP and Kerberos libraries it depends on.
typedef struct witness_http_reply {
    /// The HTTP status, or 0 when no HTTP answer arrived (then `error` says why).
    long status;
    /// The body (malloc'd; release with witness_http_free), NULL when empty.
    unsigned char *body;
    size_t length;
    char error[256];
} witness_http_reply;

/// GET `url` (`body` NULL) or POST `body` to it with `content_type`. Only http and https
/// URLs; redirects are not followed; the whole exchange is bounded by `timeout_ms` and the
/// body by `body_limit` bytes. Returns 0 when an HTTP answer arrived (any status), -1 if not.
int witness_http_exchange(const char *url, const char *content_type, const void *body, size_t body_length,
                          long timeout_ms, size_t body_limit, witness_http_reply *reply);

/// Releases a reply's body.
void witness_http_free(witness_http_reply *reply);

#endif
