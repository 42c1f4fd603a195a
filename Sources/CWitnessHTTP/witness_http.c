// libcurl through dlopen: see include/witness_http.h. The few declarations used are libcurl's
// stable ABI (curl/curl.h, 7.x and 8.x), written out here because the build does not need
// libcurl's headers or a link against it.
#include "witness_http.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void CURL;
struct curl_slist;

enum {
    CURLE_OK = 0,
    CURLOPT_WRITEDATA = 10001,
    CURLOPT_URL = 10002,
    CURLOPT_ERRORBUFFER = 10010,
    CURLOPT_WRITEFUNCTION = 20011,
    CURLOPT_POSTFIELDS = 10015,
    CURLOPT_HTTPHEADER = 10023,
    CURLOPT_POST = 47,
    CURLOPT_FOLLOWLOCATION = 52,
    CURLOPT_HTTPGET = 80,
    CURLOPT_NOSIGNAL = 99,
    CURLOPT_POSTFIELDSIZE_LARGE = 30120,
    CURLOPT_TIMEOUT_MS = 155,
    CURLOPT_PROTOCOLS = 181,
    CURLOPT_REDIR_PROTOCOLS = 182,
    CURLPROTO_HTTP = 1 << 0,
    CURLPROTO_HTTPS = 1 << 1,
    CURLINFO_RESPONSE_CODE = 0x200000 + 2,
    CURL_GLOBAL_DEFAULT = 3,
    CURL_ERROR_SIZE = 256,
};

static struct {
    int (*global_init)(long flags);
    CURL *(*easy_init)(void);
    int (*easy_setopt)(CURL *, int, ...);
    int (*easy_perform)(CURL *);
    int (*easy_getinfo)(CURL *, int, ...);
    void (*easy_cleanup)(CURL *);
    const char *(*easy_strerror)(int);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
} curl;
static pthread_once_t loaded = PTHREAD_ONCE_INIT;
static char load_error[200];

static void load(void) {
    void *library = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        snprintf(load_error, sizeof load_error, "cannot load libcurl.so.4 (%s)", dlerror());
        return;
    }
#define SYMBOL(field, name)                                                                   \
    if (!(*(void **)&curl.field = dlsym(library, name))) {                                    \
        snprintf(load_error, sizeof load_error, "libcurl.so.4 has no %s", name);             \
        curl.easy_init = NULL;                                                                \
        return;                                                                               \
    }
    SYMBOL(global_init, "curl_global_init")
    SYMBOL(easy_setopt, "curl_easy_setopt")
    SYMBOL(easy_perform, "curl_easy_perform")
    SYMBOL(easy_getinfo, "curl_easy_getinfo")
    SYMBOL(easy_cleanup, "curl_easy_cleanup")
    SYMBOL(easy_strerror, "curl_easy_strerror")
    SYMBOL(slist_append, "curl_slist_append")
    SYMBOL(slist_free_all, "curl_slist_free_all")
    SYMBOL(easy_init, "curl_easy_init")
#undef SYMBOL
    if (curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(load_error, sizeof load_error, "curl_global_init failed");
        curl.easy_init = NULL;
    }
}

struct sink {
    witness_http_reply *reply;
    size_t limit;
    int over;
};

static size_t collect(char *data, size_t size, size_t count, void *context) {
    struct sink *sink = context;
    size_t bytes = size * count;
    if (count != 0 && bytes / count != size) return 0;
    if (bytes > sink->limit - sink->reply->length) {
        sink->over = 1;
        return 0;  // ends the transfer with an error
    }
    unsigned char *grown = realloc(sink->reply->body, sink->reply->length + bytes + 1);
    if (!grown) return 0;
    memcpy(grown + sink->reply->length, data, bytes);
    sink->reply->body = grown;
    sink->reply->length += bytes;
    grown[sink->reply->length] = 0;  // the body is also a C string
    return bytes;
}

int witness_http_exchange(const char *url, const char *content_type, const void *body, size_t body_length,
                          long timeout_ms, size_t body_limit, witness_http_reply *reply) {
    memset(reply, 0, sizeof *reply);
    // Room for the terminator: length + bytes + 1 can then never wrap (collect's check).
    if (body_limit > SIZE_MAX - 1) body_limit = SIZE_MAX - 1;
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        snprintf(reply->error, sizeof reply->error, "only http and https URLs");
        return -1;
    }
    pthread_once(&loaded, load);
    if (!curl.easy_init) {
        snprintf(reply->error, sizeof reply->error, "%s", load_error);
        return -1;
    }
    CURL *handle = curl.easy_init();
    if (!handle) {
        snprintf(reply->error, sizeof reply->error, "curl_easy_init failed");
        return -1;
    }
    char error[CURL_ERROR_SIZE] = "";
    struct sink sink = {reply, body_limit, 0};
    struct curl_slist *headers = NULL;
    int status = CURLE_OK;
#define SET(option, value) if (status == CURLE_OK) status = curl.easy_setopt(handle, option, value)
    SET(CURLOPT_ERRORBUFFER, error);
    SET(CURLOPT_URL, url);
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    SET(CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TIMEOUT_MS, timeout_ms);
    SET(CURLOPT_WRITEFUNCTION, collect);
    SET(CURLOPT_WRITEDATA, &sink);
    if (body) {
        char type[128];
        snprintf(type, sizeof type, "Content-Type: %s", content_type ? content_type : "application/octet-stream");
        struct curl_slist *with_type = curl.slist_append(NULL, type);
        // No "Expect: 100-continue" round trip before the body.
        struct curl_slist *with_expect = with_type ? curl.slist_append(with_type, "Expect:") : NULL;
        if (!with_expect) {
            if (with_type) curl.slist_free_all(with_type);
            status = -1;
        }
        headers = with_expect;
        SET(CURLOPT_HTTPHEADER, headers);
        SET(CURLOPT_POST, 1L);
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (long long)body_length);
        SET(CURLOPT_POSTFIELDS, body);
    } else {
        SET(CURLOPT_HTTPGET, 1L);
    }
#undef SET
    if (status == CURLE_OK) status = curl.easy_perform(handle);
    long code = 0;
    if (status == CURLE_OK && curl.easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code > 0) {
        reply->status = code;
    } else if (sink.over) {
        snprintf(reply->error, sizeof reply->error, "the answer is longer than %zu bytes", body_limit);
    } else {
        snprintf(reply->error, sizeof reply->error, "%s", error[0] ? error
                 : status > 0 ? curl.easy_strerror(status) : "the request could not be made");
    }
    if (headers) curl.slist_free_all(headers);
    curl.easy_cleanup(handle);
    if (reply->status == 0) {
        witness_http_free(reply);
        return -1;
    }
    return 0;
}

void witness_http_free(witness_http_reply *reply) {
    free(reply->body);
    reply->body = NULL;
    reply->length = 0;
}
