/* The SOAP session: HTTPS with libcurl, XML with libxml2, TLS identity
 * checked with OpenSSL (a CA bundle, or a pinned certificate thumbprint). */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <errno.h>
#include <libxml/parser.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../common/err.h"
#include "../common/sig.h"
#include "vsphere.h"

#define NMOREFS 9

struct vs_conn {
	pthread_mutex_t lock;
	CURL *curl;
	char *url, *host;
	char *user, *password; /* kept for one re-login; wiped at the end */
	bool from_cookie;
	bool verify;  /* verifyCertificates */
	char pin[65]; /* pinned thumbprint, lower-case hex, no colons */
	char seen_sha1[64], seen_sha256[100];
	char *api_version, *api_type;
	bool lost;     /* it failed in a way that may have lost the answer */
	bool logged_in; /* Login answered: Logout owed */
	/* vs_config.answer: calls answered without a network (fuzzing) */
	int (*answer)(void *ctx, const char *method, const char *request,
		      char **body, size_t *len);
	void *answer_ctx;
	/* The call in progress changes nothing (or nothing twice): it may
	 * be sent again, and dropped on a stop signal (retry_safe()). */
	bool idempotent;
	struct {
		const char *name;
		char *type, *value;
	} mo[NMOREFS];
};

static const char *const moref_names[NMOREFS] = {
    "rootFolder",  "propertyCollector",	   "sessionManager",
    "searchIndex", "authorizationManager", "virtualDiskManager",
    "fileManager", "customFieldsManager",  "viewManager",
};

static int ssl_index = -1;
static pthread_once_t ssl_once = PTHREAD_ONCE_INIT;

static void ssl_index_init(void)
{
	ssl_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	xmlInitParser();
}

/* ---- TLS identity ---- */

void vs_cert_digest(X509 *cert, const EVP_MD *md, char *out, size_t size,
		    bool colons)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned n = 0, i;
	size_t pos = 0;

	out[0] = '\0';
	if (!X509_digest(cert, md, d, &n))
		return;
	for (i = 0; i < n && pos + 4 < size; i++)
		pos += (size_t)snprintf(
		    out + pos, size - pos,
		    colons ? (i ? ":%02X" : "%02X") : "%02x", d[i]);
}

static int verify_cb(int ok, X509_STORE_CTX *store)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(
	    store, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct vs_conn *c =
	    SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ssl_index);
	X509 *cert = X509_STORE_CTX_get_current_cert(store);
	char plain[130];

	if (!c || X509_STORE_CTX_get_error_depth(store) != 0)
		return c && (c->pin[0] || !c->verify) ? 1 : ok; /* the leaf
								    decides */
	vs_cert_digest(cert, EVP_sha1(), c->seen_sha1, sizeof(c->seen_sha1), true);
	vs_cert_digest(cert, EVP_sha256(), c->seen_sha256, sizeof(c->seen_sha256),
		   true);
	if (!c->verify)
		return 1; /* verifyCertificates=0: accept, as asked */
	if (!c->pin[0])
		return ok;
	vs_cert_digest(cert, strlen(c->pin) == 40 ? EVP_sha1() : EVP_sha256(),
		   plain, sizeof(plain), false);
	if (strcmp(plain, c->pin) == 0) {
		X509_STORE_CTX_set_error(store, X509_V_OK);
		return 1;
	}
	return 0;
}

static CURLcode ssl_ctx_cb(CURL *curl, void *sslctx, void *arg)
{
	SSL_CTX *ctx = sslctx;

	(void)curl;
	SSL_CTX_set_ex_data(ctx, ssl_index, arg);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
	return CURLE_OK;
}

/* Normalise a thumbprint to lower-case hex without separators. */
static int parse_pin(const char *in, char *out)
{
	size_t n = 0;

	for (; *in; in++) {
		if (*in == ':' || *in == ' ')
			continue;
		if (!((*in >= '0' && *in <= '9') ||
		      (*in >= 'a' && *in <= 'f') ||
		      (*in >= 'A' && *in <= 'F')) ||
		    n >= 64)
			return -EINVAL;
		out[n++] = (char)(*in | 0x20);
	}
	out[n] = '\0';
	return n == 40 || n == 64 ? 0 : -EINVAL;
}

const char *vs_server_thumbprint(const struct vs_conn *c, bool sha256)
{
	return sha256 ? c->seen_sha256 : c->seen_sha1;
}

/* ---- XML helpers ---- */

char *vs_xml_escape(const char *s)
{
	size_t n = 0;
	const char *p;
	char *out, *q;

	for (p = s; *p; p++)
		n += *p == '<' || *p == '>'    ? 4
		     : *p == '&'	       ? 5
		     : *p == '"' || *p == '\'' ? 6
					       : 1;
	out = q = malloc(n + 1);
	if (!out)
		return NULL;
	for (p = s; *p; p++) {
		switch (*p) {
		case '<':
			q = stpcpy(q, "&lt;");
			break;
		case '>':
			q = stpcpy(q, "&gt;");
			break;
		case '&':
			q = stpcpy(q, "&amp;");
			break;
		case '"':
			q = stpcpy(q, "&quot;");
			break;
		case '\'':
			q = stpcpy(q, "&apos;");
			break;
		default:
			*q++ = *p;
		}
	}
	*q = '\0';
	return out;
}

xmlNodePtr vs_find(xmlNodePtr n, const char *name)
{
	xmlNodePtr k, r;

	for (k = n ? n->children : NULL; k; k = k->next) {
		if (k->type != XML_ELEMENT_NODE)
			continue;
		if (strcmp((const char *)k->name, name) == 0)
			return k;
		if ((r = vs_find(k, name)))
			return r;
	}
	return NULL;
}

char *vs_text(xmlNodePtr n, const char *name)
{
	xmlNodePtr e = name ? vs_find(n, name) : n;
	xmlChar *t;
	char *s;

	if (!e)
		return NULL;
	t = xmlNodeGetContent(e);
	s = t ? strdup((const char *)t) : NULL;
	xmlFree(t);
	return s;
}

/* ---- HTTP ---- */

struct buf {
	char *data;
	size_t len;
};

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	char *d = realloc(b->data, b->len + size * n + 1);

	if (!d)
		return 0;
	memcpy(d + b->len, p, size * n);
	b->len += size * n;
	d[b->len] = '\0';
	b->data = d;
	return size * n;
}

/* Fault name (e.g. "InvalidLogin") and text of a SOAP fault body. */
static int fault_errno(const char *name)
{
	static const struct {
		const char *name;
		int err;
	} map[] = {
	    {"InvalidLogin", EACCES},	  {"NotAuthenticated", EACCES},
	    {"NoPermission", EPERM},	  {"ManagedObjectNotFound", ENOENT},
	    {"MethodDisabled", EBUSY},	  {"InvalidArgument", EINVAL},
	    {"InvalidRequest", EINVAL},	  {"NotSupported", EOPNOTSUPP},
	    {"InvalidState", EBUSY},	  {"RequestCanceled", ECANCELED},
	    {"NotFound", ENOENT},	  {"FileNotFound", ENOENT},
	    {"InvalidPowerState", EBUSY}, {"TaskInProgress", EBUSY},
	};
	size_t i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i].name, name) == 0)
			return map[i].err;
	return EIO;
}

/* Parse a fault out of DOC: set the message, return -errno. */
static int take_fault(xmlDocPtr doc, const char *method, char *name_out,
		      size_t name_size)
{
	xmlNodePtr fault = vs_find(xmlDocGetRootElement(doc), "Fault");
	xmlNodePtr detail = fault ? vs_find(fault, "detail") : NULL;
	xmlNodePtr k = NULL;
	char *text = fault ? vs_text(fault, "faultstring") : NULL;
	char name[128] = "SystemError";

	for (k = detail ? detail->children : NULL; k; k = k->next)
		if (k->type == XML_ELEMENT_NODE)
			break;
	if (k) {
		xmlChar *type = xmlGetProp(k, (const xmlChar *)"type");
		const char *t =
		    type ? (const char *)type : (const char *)k->name;
		const char *colon = strchr(t, ':');

		snprintf(name, sizeof(name), "%s", colon ? colon + 1 : t);
		if (!type) {
			size_t n = strlen(name);

			if (n > 5 && strcmp(name + n - 5, "Fault") == 0)
				name[n - 5] = '\0';
		}
		xmlFree(type);
	}
	vmdkfs_error("vSphere %s: %s: %s", method, name,
		     text && *text ? text : "(no text)");
	free(text);
	if (name_out)
		snprintf(name_out, name_size, "%s", name);
	return -fault_errno(name);
}

/* Methods that may be sent again when their answer was lost: they read,
 * or ask for what is harmless twice (a ticket, EnableMethods, Logout). */
static bool retry_safe(const char *method)
{
	static const char *const safe[] = {
	    "RetrieveServiceContent",
	    "RetrieveInternalContent",
	    "RetrievePropertiesEx",
	    "RetrieveProperties",
	    "FindByUuid",
	    "FindByInventoryPath",
	    "CreateContainerView", /* a view more, gone with the session */
	    "DestroyView",
	    "QueryChangedDiskAreas",
	    "NfcRandomAccessOpenReadonly",
	    "NfcRandomAccessOpenDisk",
	    "NfcGetVmFiles",
	    "EnableMethods",
	    "Logout",
	    NULL,
	};
	size_t i;

	for (i = 0; safe[i]; i++)
		if (strcmp(safe[i], method) == 0)
			return true;
	return false;
}

/* curl's progress callback: a stop signal while opening ends a call
 * that only reads.  One that changes something runs to its answer (at
 * most soap_timeout): the server would carry it out all the same, after
 * we had gone, and the undoing would miss it. */
static int stop_cb(void *p, curl_off_t a, curl_off_t b, curl_off_t c,
		   curl_off_t d)
{
	const struct vs_conn *conn = p;

	(void)a, (void)b, (void)c, (void)d;
	return conn->idempotent && sig_stop_requested() != 0;
}

/* Errors of curl after which the request may have gone out and been
 * carried out, its answer lost: the link broke, timed out, or the server
 * hung up without a reply.  (A connection never made carried nothing:
 * exchange() tries it again itself.) */
static bool lost_link(CURLcode cr)
{
	return cr == CURLE_GOT_NOTHING || cr == CURLE_RECV_ERROR ||
	       cr == CURLE_SEND_ERROR || cr == CURLE_OPERATION_TIMEDOUT ||
	       cr == CURLE_PARTIAL_FILE || cr == CURLE_SSL_CONNECT_ERROR;
}

/* The pause before try I + 2 of a call: 0.2 s, then twice as long (none
 * in the fuzzer, whose answers are lost by the thousand). */
static void retry_pause(int i)
{
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
	usleep(200000u << i);
#else
	(void)i;
#endif
}

/* The HTTP exchange of one call: the answer's body in *B, its status in
 * *STATUS.  Called with c->lock held. */
static CURLcode exchange(struct vs_conn *c, const char *method,
			 const char *envelope, struct buf *b, long *status)
{
	struct curl_slist *h = NULL;
	char action[96];
	CURLcode cr;

	snprintf(action, sizeof(action), "SOAPAction: \"urn:vim25/%s\"",
		 c->api_version ? c->api_version : "6.7");
	/* A call that must not be carried out twice goes on a connection of
	 * its own: on a kept connection that the server closed, curl sends
	 * the request again by itself when nothing came back, and the server
	 * may have done it already (two snapshots, or a MethodAlreadyDisabled
	 * fault for our own DisableMethods).  On a new connection a lost
	 * answer is reported, and the caller looks for what was done. */
	curl_easy_setopt(c->curl, CURLOPT_FRESH_CONNECT,
			 c->idempotent ? 0L : 1L);
	h = curl_slist_append(h, "Content-Type: text/xml; charset=utf-8");
	h = curl_slist_append(h, action);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, envelope);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, b);
	if (vmdkfs_log_level() >= LOG_TRACE)
		vmdkfs_log(
		    LOG_TRACE, "SOAP %s request: %s", method,
		    strcmp(method, "Login") == 0
			? "(Login body not logged: it holds the password)"
			: envelope);
	cr = curl_easy_perform(c->curl);
	/* A connection that could not be made never carried the request:
	 * trying again is safe, a few times, for a server that is busy. */
	for (int i = 0; cr == CURLE_COULDNT_CONNECT && i < 3; i++) {
		log_info("%s: vSphere %s: cannot connect; trying again",
			 c->host, method);
		retry_pause(i);
		free(b->data);
		b->data = NULL;
		b->len = 0;
		cr = curl_easy_perform(c->curl);
	}
	curl_slist_free_all(h);
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, status);
	return cr;
}

/* The same from vs_config.answer (tests and fuzzing: no network). */
static CURLcode fake_exchange(struct vs_conn *c, const char *method,
			      const char *envelope, struct buf *b,
			      long *status)
{
	int k = c->answer(c->answer_ctx, method, envelope, &b->data, &b->len);

	*status = k;
	return k > 0 ? CURLE_OK : CURLE_GOT_NOTHING;
}

/* One POST of a whole envelope.  Called with c->lock held. */
static int post(struct vs_conn *c, const char *method, const char *envelope,
		xmlDocPtr *out, char *fault, size_t fault_size)
{
	struct buf b = {0};
	long status = 0;
	CURLcode cr;
	xmlDocPtr doc;
	int r;

	if (fault)
		fault[0] = '\0';
	c->lost = false;
	c->idempotent = retry_safe(method);
	if (sig_stop_requested())
		return sig_stop_error(method);
	cr = c->answer ? fake_exchange(c, method, envelope, &b, &status)
		       : exchange(c, method, envelope, &b, &status);
	if (cr == CURLE_ABORTED_BY_CALLBACK) {
		free(b.data);
		return sig_stop_error(method);
	}
	if (cr != CURLE_OK) {
		c->lost = lost_link(cr);
		if (cr == CURLE_PEER_FAILED_VERIFICATION ||
		    cr == CURLE_SSL_CACERT || cr == CURLE_SSL_CONNECT_ERROR) {
			vmdkfs_error(
			    "%s: the server's TLS identity is not trusted "
			    "(%s); its certificate has SHA-256 thumbprint %s "
			    "(SHA-1 %s).  Give -o thumbprint=<that value> or "
			    "-o cafile=FILE if it is the right server",
			    c->host, curl_easy_strerror(cr),
			    c->seen_sha256[0] ? c->seen_sha256 : "unknown",
			    c->seen_sha1[0] ? c->seen_sha1 : "unknown");
			r = -EACCES;
		} else {
			vmdkfs_error("%s: vSphere %s: %s", c->host, method,
				     curl_easy_strerror(cr));
			r = cr == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT
							   : -ECONNREFUSED;
		}
		free(b.data);
		return r;
	}
	if (vmdkfs_log_level() >= LOG_TRACE)
		vmdkfs_log(LOG_TRACE, "SOAP %s response %ld: %s", method,
			   status, b.data ? b.data : "");
	doc = b.data ? xmlReadMemory(b.data, (int)b.len, "soap.xml", NULL,
				     XML_PARSE_NONET | XML_PARSE_NOBLANKS |
					 XML_PARSE_NOERROR |
					 XML_PARSE_NOWARNING)
		     : NULL;
	free(b.data);
	if (!doc) {
		/* Unusable, as if lost: a call that only reads goes again, and
		 * for one that changes something the caller looks for what it
		 * did (make check-long found EnableMethods left undone). */
		c->lost = true;
		vmdkfs_error("%s: vSphere %s: HTTP %ld with no XML answer",
			     c->host, method, status);
		return -EIO;
	}
	if (vs_find(xmlDocGetRootElement(doc), "Fault")) {
		r = take_fault(doc, method, fault, fault_size);
		xmlFreeDoc(doc);
		return r;
	}
	if (status != 200) {
		vmdkfs_error("%s: vSphere %s: HTTP %ld", c->host, method,
			     status);
		xmlFreeDoc(doc);
		return -EIO;
	}
	*out = doc;
	return 0;
}

static char *envelope(const char *method, const char *ns, const char *this_type,
		      const char *this_value, const char *body)
{
	char *env = NULL;

	if (asprintf(
		&env,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
		"<soapenv:Envelope "
		"xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" "
		"xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" "
		"xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">"
		"<soapenv:Body><%s xmlns=\"%s\">"
		"<_this type=\"%s\">%s</_this>%s</%s>"
		"</soapenv:Body></soapenv:Envelope>",
		method, ns, this_type, this_value, body ? body : "",
		method) < 0)
		return NULL;
	return env;
}

/* Called with c->lock held. */
static int login(struct vs_conn *c)
{
	char *u = vs_xml_escape(c->user), *p = vs_xml_escape(c->password);
	char *body = NULL, *env = NULL;
	xmlDocPtr doc = NULL;
	int r = -ENOMEM;

	if (u && p &&
	    asprintf(&body, "<userName>%s</userName><password>%s</password>", u,
		     p) >= 0)
		env = envelope("Login", "urn:vim25", "SessionManager",
			       c->mo[2].value ? c->mo[2].value : "", body);
	if (env) {
		r = post(c, "Login", env, &doc, NULL, 0);
		explicit_bzero(env, strlen(env));
	}
	if (body)
		explicit_bzero(body, strlen(body));
	if (p)
		explicit_bzero(p, strlen(p));
	free(u);
	free(p);
	free(body);
	free(env);
	if (doc)
		xmlFreeDoc(doc);
	if (r == 0)
		c->logged_in = true;
	if (r < 0 && strstr(vmdkfs_errmsg(), "InvalidLogin"))
		vmdkfs_error("%s: login as %s refused: wrong user name or "
			     "password (InvalidLogin)",
			     c->host, c->user);
	return r;
}

bool vs_answer_lost(const struct vs_conn *c)
{
	return c->lost;
}

int vs_call_ns(struct vs_conn *c, const char *ns, const char *method,
	       const char *this_type, const char *this_value, const char *body,
	       xmlDocPtr *out)
{
	char *env = envelope(method, ns, this_type, this_value, body);
	char fault[128];
	int r;

	if (!env)
		return -ENOMEM;
	pthread_mutex_lock(&c->lock);
	r = post(c, method, env, out, fault, sizeof(fault));
	/* A call that changes nothing (or nothing twice) is tried again
	 * when the link broke before its answer. */
	for (int i = 0; r < 0 && c->lost && c->idempotent && i < 2; i++) {
		log_info("%s; trying again", vmdkfs_errmsg());
		retry_pause(i);
		r = post(c, method, env, out, fault, sizeof(fault));
	}
	if (r < 0 && strcmp(fault, "NotAuthenticated") == 0 && c->password) {
		/* The session expired: log in again once, then retry. */
		log_info("%s: session expired; logging in again", c->host);
		r = login(c);
		if (r == 0)
			r = post(c, method, env, out, fault, sizeof(fault));
	}
	pthread_mutex_unlock(&c->lock);
	free(env);
	return r;
}

int vs_call(struct vs_conn *c, const char *method, const char *this_type,
	    const char *this_value, const char *body, xmlDocPtr *out)
{
	return vs_call_ns(c, "urn:vim25", method, this_type, this_value, body,
			  out);
}

/* ---- Connecting ---- */

static int read_service_content(struct vs_conn *c)
{
	xmlDocPtr doc = NULL;
	xmlNodePtr rv;
	size_t i;
	int r;

	r = vs_call(c, "RetrieveServiceContent", "ServiceInstance",
		    "ServiceInstance", NULL, &doc);
	if (r < 0)
		return r;
	rv = vs_find(xmlDocGetRootElement(doc), "returnval");
	for (i = 0; rv && i < NMOREFS; i++) {
		xmlNodePtr n = vs_find(rv, moref_names[i]);
		xmlChar *type =
		    n ? xmlGetProp(n, (const xmlChar *)"type") : NULL;

		c->mo[i].name = moref_names[i];
		if (n) {
			c->mo[i].value = vs_text(n, NULL);
			c->mo[i].type =
			    type ? strdup((const char *)type) : NULL;
		}
		xmlFree(type);
	}
	c->api_version = rv ? vs_text(rv, "apiVersion") : NULL;
	c->api_type = rv ? vs_text(rv, "apiType") : NULL;
	xmlFreeDoc(doc);
	if (!rv || !c->mo[1].value || !c->mo[2].value) {
		vmdkfs_error("%s: RetrieveServiceContent: the answer lacks the "
			     "property collector or session manager",
			     c->host);
		return -EPROTO;
	}
	return 0;
}

const char *vs_host(const struct vs_conn *c)
{
	return c->host;
}

const char *vs_api_type(const struct vs_conn *c)
{
	return c->api_type ? c->api_type : "";
}

const char *vs_moref(const struct vs_conn *c, const char *name)
{
	size_t i;

	for (i = 0; i < NMOREFS; i++)
		if (c->mo[i].name && strcmp(c->mo[i].name, name) == 0)
			return c->mo[i].value;
	return NULL;
}

int vs_connect(const struct vs_config *cfg, struct vs_conn **out)
{
	struct vs_conn *c;
	int r;

	pthread_once(&ssl_once, ssl_index_init);
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	c->host = strdup(cfg->server);
	if (asprintf(&c->url, "https://%s:%d%s", cfg->server,
		     cfg->port ? cfg->port : 443,
		     cfg->path ? cfg->path : "/sdk") < 0)
		c->url = NULL;
	c->answer = cfg->answer;
	c->answer_ctx = cfg->answer_ctx;
	c->curl = c->answer ? NULL : curl_easy_init();
	c->verify = cfg->verify;
	if (!c->host || !c->url || (!c->curl && !c->answer)) {
		r = -ENOMEM;
		goto fail;
	}
	if (cfg->thumbprint && parse_pin(cfg->thumbprint, c->pin) < 0) {
		vmdkfs_error("thumbprint \"%s\": expected 40 (SHA-1) or 64 "
			     "(SHA-256) hexadecimal digits",
			     cfg->thumbprint);
		r = -EINVAL;
		goto fail;
	}
	curl_easy_setopt(c->curl, CURLOPT_URL, c->url);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, stop_cb);
	curl_easy_setopt(c->curl, CURLOPT_XFERINFODATA, c);
	curl_easy_setopt(c->curl, CURLOPT_COOKIEFILE, "");
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT,
			 cfg->timeout ? (long)cfg->timeout : 600L);
	curl_easy_setopt(c->curl, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
	curl_easy_setopt(c->curl, CURLOPT_SSL_CTX_DATA, c);
	if (!cfg->verify) {
		log_warn("%s: TLS certificate verification is off "
			 "(verifyCertificates=0): the server is not "
			 "authenticated",
			 c->host);
		fprintf(stderr,
			"vmdkfs: warning: %s: TLS certificate "
			"verification is off\n",
			c->host);
		curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 0L);
	} else if (c->pin[0]) {
		/* The pinned certificate is the identity: no name check. */
		curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 0L);
	} else {
		curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 2L);
		if (cfg->cafile)
			curl_easy_setopt(c->curl, CURLOPT_CAINFO, cfg->cafile);
	}
	if (cfg->cookie) {
		char *line = NULL;

		if (asprintf(&line,
			     "Set-Cookie: vmware_soap_session=%s; path=/",
			     cfg->cookie) < 0) {
			r = -ENOMEM;
			goto fail;
		}
		curl_easy_setopt(c->curl, CURLOPT_COOKIELIST, line);
		free(line);
		c->from_cookie = true;
	}
	r = read_service_content(c);
	if (r < 0)
		goto fail;
	if (!cfg->cookie) {
		c->user = strdup(cfg->user ? cfg->user : "");
		c->password = strdup(cfg->password ? cfg->password : "");
		if (!c->user || !c->password) {
			r = -ENOMEM;
			goto fail;
		}
		pthread_mutex_lock(&c->lock);
		r = login(c);
		/* The answer lost: the session (if one was made) is the
		 * server's to expire; log in again on a clean slate. */
		for (int i = 0; r < 0 && c->lost && i < 2; i++) {
			log_info("%s; logging in again", vmdkfs_errmsg());
			curl_easy_setopt(c->curl, CURLOPT_COOKIELIST, "ALL");
			retry_pause(i);
			r = login(c);
		}
		pthread_mutex_unlock(&c->lock);
		if (r < 0)
			goto fail;
	}
	*out = c;
	return 0;
fail: {
	/* The reason, not what the tidying up says. */
	char why[1024];

	snprintf(why, sizeof(why), "%s", vmdkfs_errmsg());
	vs_disconnect(c);
	vmdkfs_error("%s", why);
}
	return r;
}

void vs_disconnect(struct vs_conn *c)
{
	size_t i;

	if (!c)
		return;
	if ((c->curl || c->answer) && c->mo[2].value && !c->from_cookie &&
	    c->logged_in) {
		xmlDocPtr doc = NULL;

		if (vs_call(c, "Logout", "SessionManager", c->mo[2].value, NULL,
			    &doc) == 0)
			xmlFreeDoc(doc);
	}
	if (c->curl)
		curl_easy_cleanup(c->curl);
	if (c->password)
		explicit_bzero(c->password, strlen(c->password));
	free(c->password);
	free(c->user);
	free(c->url);
	free(c->host);
	free(c->api_version);
	free(c->api_type);
	for (i = 0; i < NMOREFS; i++) {
		free(c->mo[i].type);
		free(c->mo[i].value);
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
}
