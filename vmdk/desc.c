/* The VMDK text descriptor. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/err.h"
#include "vmdk.h"

#define MAX_EXTENTS 65536
#define MAX_DDB 4096

static const char *const access_names[] = {"RW", "RDONLY", "NOACCESS"};
static const char *const type_names[] = {
    "FLAT",	  "SPARSE",  "ZERO",	"VMFS",
    "VMFSSPARSE", "VMFSRDM", "VMFSRAW", "SESPARSE",
};

const char *vmdk_access_name(int access)
{
	return access >= 0 && access <= VMDK_NOACCESS ? access_names[access]
						      : "?";
}

const char *vmdk_type_name(int type)
{
	return type >= 0 && type <= VMDK_SESPARSE ? type_names[type] : "?";
}

static int lookup(const char *word, const char *const *names, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (strcmp(word, names[i]) == 0)
			return i;
	return -1;
}

void vmdk_desc_free(struct vmdk_desc *d)
{
	size_t i;

	free(d->create_type);
	free(d->parent_hint);
	free(d->change_track_path);
	for (i = 0; i < d->nextents; i++)
		free(d->extents[i].file);
	free(d->extents);
	for (i = 0; i < d->nddb; i++) {
		free(d->ddb[i].key);
		free(d->ddb[i].value);
	}
	free(d->ddb);
	memset(d, 0, sizeof(*d));
}

/* Strictly parse an unsigned decimal number; 0 or -EINVAL. */
static int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		if (v > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

static int parse_cid(const char *s, uint32_t *out)
{
	uint64_t v = 0;
	size_t n = 0;

	for (; *s; s++, n++) {
		int c = tolower((unsigned char)*s);

		if (n >= 8 || !isxdigit(c))
			return -EINVAL;
		v = v * 16 + (uint64_t)(isdigit(c) ? c - '0' : c - 'a' + 10);
	}
	if (n == 0)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* Remove surrounding quotes, if any; -EINVAL on an unbalanced quote. */
static int unquote(char **s)
{
	char *p = *s;
	size_t n = strlen(p);

	if (n > 0 && p[0] == '"') {
		if (n < 2 || p[n - 1] != '"')
			return -EINVAL;
		p[n - 1] = '\0';
		*s = p + 1;
	} else if (memchr(p, '"', n)) {
		return -EINVAL;
	}
	return 0;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* ACCESS SECTORS TYPE ["FILE" [OFFSET]] */
static int parse_extent(char *line, const char *name, unsigned lineno,
			struct vmdk_desc *d)
{
	struct vmdk_desc_extent e = {0};
	char *p = line, *w[3], *file = NULL, *rest;
	int i;

	for (i = 0; i < 3; i++) {
		while (*p == ' ' || *p == '\t')
			p++;
		w[i] = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		if (*p)
			*p++ = '\0';
		if (!*w[i]) {
			vmdkfs_error("%s: line %u: extent line: expected "
				     "ACCESS SECTORS TYPE [\"FILE\" [OFFSET]]",
				     name, lineno);
			return -EINVAL;
		}
	}
	e.access = lookup(w[0], access_names, 3);
	e.type = lookup(w[2], type_names, 8);
	if (e.type < 0) {
		vmdkfs_error("%s: line %u: extent type \"%s\" unknown", name,
			     lineno, w[2]);
		return -EINVAL;
	}
	if (parse_u64(w[1], &e.sectors) < 0 || e.sectors == 0 ||
	    e.sectors > VMDK_MAX_SECTORS) {
		vmdkfs_error("%s: line %u: extent size \"%s\" is not a sector "
			     "count between 1 and %llu",
			     name, lineno, w[1],
			     (unsigned long long)VMDK_MAX_SECTORS);
		return -EINVAL;
	}
	rest = trim(p);
	if (*rest == '"') {
		char *q = strchr(rest + 1, '"');

		if (!q) {
			vmdkfs_error("%s: line %u: extent file name: missing "
				     "closing quote",
				     name, lineno);
			return -EINVAL;
		}
		*q = '\0';
		file = rest + 1;
		rest = trim(q + 1);
	} else if (*rest) {
		/* Unquoted file name (some writers omit the quotes). */
		file = rest;
		while (*rest && *rest != ' ' && *rest != '\t')
			rest++;
		if (*rest)
			*rest++ = '\0';
		rest = trim(rest);
	}
	if (file && !*file) {
		vmdkfs_error("%s: line %u: extent file name is empty", name,
			     lineno);
		return -EINVAL;
	}
	if (e.type == VMDK_ZERO) {
		file = NULL;
	} else if (!file) {
		vmdkfs_error("%s: line %u: %s extent has no file name", name,
			     lineno, w[2]);
		return -EINVAL;
	}
	if (*rest) {
		if (e.type != VMDK_FLAT && e.type != VMDK_VMFS &&
		    e.type != VMDK_VMFSRDM && e.type != VMDK_VMFSRAW) {
			vmdkfs_error("%s: line %u: unexpected \"%s\" after "
				     "the file name of a %s extent",
				     name, lineno, rest, w[2]);
			return -EINVAL;
		}
		if (parse_u64(rest, &e.offset) < 0 ||
		    e.offset > VMDK_MAX_SECTORS) {
			vmdkfs_error("%s: line %u: extent offset \"%s\" is "
				     "not a sector number",
				     name, lineno, rest);
			return -EINVAL;
		}
	}
	if (d->nextents >= MAX_EXTENTS) {
		vmdkfs_error("%s: line %u: more than %d extents", name, lineno,
			     MAX_EXTENTS);
		return -EINVAL;
	}
	if (file && !(e.file = strdup(file)))
		return -ENOMEM;
	if (d->nextents % 16 == 0) {
		void *n = realloc(d->extents,
				  (d->nextents + 16) * sizeof(*d->extents));

		if (!n) {
			free(e.file);
			return -ENOMEM;
		}
		d->extents = n;
	}
	d->extents[d->nextents++] = e;
	return 0;
}

static int set_str(char **dst, const char *v)
{
	char *s = strdup(v);

	if (!s)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

static int parse_kv(char *line, const char *name, unsigned lineno,
		    struct vmdk_desc *d)
{
	char *eq = strchr(line, '='), *key, *val;
	uint64_t n;

	if (!eq) {
		vmdkfs_error("%s: line %u: expected key=value or an extent, "
			     "got \"%.40s\"",
			     name, lineno, line);
		return -EINVAL;
	}
	*eq = '\0';
	key = trim(line);
	val = trim(eq + 1);
	if (!*key || unquote(&val) < 0) {
		vmdkfs_error("%s: line %u: malformed key=value \"%.40s\"", name,
			     lineno, key);
		return -EINVAL;
	}
	if (strcasecmp(key, "version") == 0) {
		if (parse_u64(val, &n) < 0 || n < 1 || n > 3) {
			vmdkfs_error("%s: line %u: version \"%s\" is not 1, 2 "
				     "or 3",
				     name, lineno, val);
			return -EINVAL;
		}
		d->version = (int)n;
	} else if (strcasecmp(key, "CID") == 0 ||
		   strcasecmp(key, "parentCID") == 0) {
		uint32_t *dst =
		    strcasecmp(key, "CID") == 0 ? &d->cid : &d->parent_cid;

		if (parse_cid(val, dst) < 0) {
			vmdkfs_error("%s: line %u: %s \"%s\" is not a 32-bit "
				     "hexadecimal number",
				     name, lineno, key, val);
			return -EINVAL;
		}
		if (dst == &d->cid)
			d->has_cid = true;
	} else if (strcasecmp(key, "createType") == 0) {
		return set_str(&d->create_type, val);
	} else if (strcasecmp(key, "parentFileNameHint") == 0) {
		if (!*val) {
			vmdkfs_error("%s: line %u: parentFileNameHint is empty",
				     name, lineno);
			return -EINVAL;
		}
		return set_str(&d->parent_hint, val);
	} else if (strcasecmp(key, "changeTrackPath") == 0) {
		return set_str(&d->change_track_path, val);
	} else if (strncmp(key, "ddb.", 4) == 0) {
		struct vmdk_kv *kv;

		if (d->nddb >= MAX_DDB) {
			vmdkfs_error("%s: line %u: more than %d ddb keys", name,
				     lineno, MAX_DDB);
			return -EINVAL;
		}
		if (d->nddb % 16 == 0) {
			kv = realloc(d->ddb, (d->nddb + 16) * sizeof(*kv));
			if (!kv)
				return -ENOMEM;
			d->ddb = kv;
		}
		kv = &d->ddb[d->nddb];
		kv->key = strdup(key);
		kv->value = strdup(val);
		if (!kv->key || !kv->value) {
			free(kv->key);
			free(kv->value);
			return -ENOMEM;
		}
		d->nddb++;
	}
	/* Other keys (encoding, isNativeSnapshot, ...) are not needed. */
	return 0;
}

/* Does the line start with an access word followed by a blank? */
static bool is_extent_line(const char *t)
{
	size_t w = strcspn(t, " \t");
	int i;

	if (!t[w])
		return false;
	for (i = 0; i < 3; i++)
		if (strlen(access_names[i]) == w &&
		    strncmp(t, access_names[i], w) == 0)
			return true;
	return false;
}

static bool is_header_line(const char *s)
{
	/* "# Disk DescriptorFile" or "# Disk Descriptor File", any case. */
	char norm[32];
	size_t n = 0;

	for (; *s && n < sizeof(norm) - 1; s++)
		if (*s != ' ' && *s != '\t' && *s != '\r')
			norm[n++] = (char)tolower((unsigned char)*s);
	norm[n] = '\0';
	return strcmp(norm, "#diskdescriptorfile") == 0;
}

int vmdk_desc_parse(const char *text, size_t len, const char *name,
		    struct vmdk_desc *d)
{
	char *buf, *line, *next;
	unsigned lineno = 0;
	bool header = false;
	int r = 0;

	memset(d, 0, sizeof(*d));
	d->parent_cid = VMDK_NO_PARENT;
	len = strnlen(text, len);
	buf = malloc(len + 1);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, text, len);
	buf[len] = '\0';

	for (line = buf; line && r == 0; line = next) {
		char *t;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		t = trim(line);
		if (!header) {
			if (!*t)
				continue;
			if (!is_header_line(t)) {
				vmdkfs_error("%s: not a VMDK descriptor: first "
					     "line is not \"# Disk "
					     "DescriptorFile\"",
					     name);
				r = -EINVAL;
				break;
			}
			header = true;
			continue;
		}
		if (!*t || *t == '#')
			continue;
		if (is_extent_line(t)) {
			r = parse_extent(t, name, lineno, d);
			continue;
		}
		r = parse_kv(t, name, lineno, d);
	}
	free(buf);
	if (r == 0 && !header) {
		vmdkfs_error("%s: not a VMDK descriptor: empty", name);
		r = -EINVAL;
	}
	if (r == 0 && d->nextents == 0) {
		vmdkfs_error("%s: descriptor has no extent lines", name);
		r = -EINVAL;
	}
	if (r == 0 && !d->has_cid) {
		vmdkfs_error("%s: descriptor has no CID", name);
		r = -EINVAL;
	}
	if (r == 0 && d->parent_cid != VMDK_NO_PARENT && !d->parent_hint) {
		vmdkfs_error("%s: parentCID is %08x but there is no "
			     "parentFileNameHint",
			     name, d->parent_cid);
		r = -EINVAL;
	}
	if (r == 0) {
		uint64_t total = 0;
		size_t i;

		for (i = 0; i < d->nextents; i++) {
			total += d->extents[i].sectors;
			if (total > VMDK_MAX_SECTORS) {
				vmdkfs_error(
				    "%s: extents add up to more than "
				    "%llu sectors",
				    name, (unsigned long long)VMDK_MAX_SECTORS);
				r = -EINVAL;
				break;
			}
		}
	}
	if (r < 0)
		vmdk_desc_free(d);
	return r;
}
