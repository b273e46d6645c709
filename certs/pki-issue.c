/* pki_init and pki_issue: making a CA and the certificates it signs, and
 * writing them out.  Every file is written atomically; private keys 0600 in a
 * 0700 directory, and their PEM buffers are wiped once written. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "certs/certs-internal.h"

#define CA_FILE  "ca.pem"
#define CA_KEY   "ca-key.pem"
#define KEY_MODE 0600
#define PUB_MODE 0644

struct ca {
	mbedtls_x509_crt crt;
	mbedtls_pk_context key;
	char name[1024]; /* subject DN, the issuer of what it signs */
	char *pem;       /* ca.pem as read, copied next to issued certs */
	size_t pem_len;
};

static void ca_init(struct ca *ca)
{
	memset(ca, 0, sizeof(*ca));
	mbedtls_x509_crt_init(&ca->crt);
	mbedtls_pk_init(&ca->key);
}

static void ca_free(struct ca *ca)
{
	mbedtls_x509_crt_free(&ca->crt);
	mbedtls_pk_free(&ca->key);
	free(ca->pem);
	ca->pem = NULL;
}

static int check_days(int days, bool allow_negative, struct bh_err *err)
{
	if (days > PKI_MAX_DAYS || days < (allow_negative ? -PKI_MAX_DAYS : 0))
		return bh_err_set(err, ERANGE, "invalid --days %d: must be %s..%d", days,
		                  allow_negative ? "-36500" : "1", PKI_MAX_DAYS);
	return 0;
}

static int check_names(const char *const *hosts, size_t n_hosts, const char *const *ips,
                       size_t n_ips, struct bh_err *err)
{
	if (n_hosts + n_ips > PKI_MAX_SANS)
		return bh_err_set(err, E2BIG, "too many --host/--ip names (at most %d)",
		                  PKI_MAX_SANS);
	for (size_t i = 0; i < n_hosts; i++)
		if (pki_check_host(hosts[i], err) < 0)
			return -1;
	for (size_t i = 0; i < n_ips; i++)
		if (pki_check_ip(ips[i], err) < 0)
			return -1;
	return 0;
}

/* days > 0: from an hour ago until now + days; days < 0: one day of validity
 * that ended |days| days ago (expired certs for tests).  Never past ca_end:
 * a leaf cannot outlive the CA that vouches for it. */
static void leaf_validity(int days, int64_t ca_end, struct pki_cert_spec *spec)
{
	int64_t now = (int64_t)time(NULL);

	if (days == 0)
		days = PKI_DEFAULT_DAYS;
	if (days > 0) {
		spec->not_before = now - PKI_SKEW_SECONDS;
		spec->not_after = now + (int64_t)days * PKI_DAY;
	} else {
		spec->not_after = now + (int64_t)days * PKI_DAY;
		spec->not_before = spec->not_after - PKI_DAY;
	}
	if (spec->not_after > ca_end)
		spec->not_after = ca_end;
}

/* The directory holds keys: create it 0700, and tighten it if it exists. */
static int ensure_private_dir(const char *dir, struct bh_err *err)
{
	if (dir == NULL || *dir == '\0')
		return bh_err_set(err, EINVAL, "no directory given");
	if (bh_mkdir_p(dir, 0700, err) < 0)
		return -1;
	if (chmod(dir, 0700) < 0)
		return bh_err_sys(err, errno, "chmod %s", dir);
	return 0;
}

static int refuse_existing(const char *dir, const char *const *names, size_t n, const char *hint,
                           struct bh_err *err)
{
	for (size_t i = 0; i < n; i++) {
		cleanup_free char *p = bh_path_join(dir, names[i]);

		if (bh_path_exists(p))
			return bh_err_set(err, EEXIST, "%s already exists (%s)", p, hint);
	}
	return 0;
}

static int write_in(const char *dir, const char *name, const char *data, size_t len, int mode,
                    struct bh_err *err)
{
	cleanup_free char *p = bh_path_join(dir, name);

	return bh_write_file_atomic(p, data, len, mode, err);
}

/* Key first: a crash between the two leaves an orphan key, never a cert
 * whose key is missing. */
static int write_pair(const char *dir, const char *cert_name, const char *key_name,
                      const struct pki_pem_pair *pp, struct bh_err *err)
{
	if (write_in(dir, key_name, pp->key, strlen(pp->key), KEY_MODE, err) < 0)
		return -1;
	return write_in(dir, cert_name, pp->cert, strlen(pp->cert), PUB_MODE, err);
}

/* ---- pki_init ----------------------------------------------------------- */

struct init_pems {
	struct pki_pem_pair ca, server, admin;
};

static void init_pems_free(struct init_pems *p)
{
	pki_pair_free(&p->ca);
	pki_pair_free(&p->server);
	pki_pair_free(&p->admin);
}

static int make_ca(struct pki_rng *rng, mbedtls_pk_context *key, char *name, size_t name_cap,
                   int64_t not_after, struct pki_pem_pair *out, struct bh_err *err)
{
	struct pki_cert_spec spec = {.kind = PKI_KIND_CA};
	unsigned char id[4];
	char hex[9];
	int64_t now = (int64_t)time(NULL);

	/* A random suffix keeps two berth CAs apart in a client's trust store. */
	if (pki_rng_bytes(rng, id, sizeof(id), err) < 0)
		return -1;
	bh_hex(id, sizeof(id), hex);
	snprintf(name, name_cap, "O=berth,CN=berth CA %s", hex);
	spec.subject = name;
	spec.not_before = now - PKI_SKEW_SECONDS;
	spec.not_after = not_after;
	return pki_pair_make(rng, &spec, NULL, key, out, err);
}

static int make_init_pems(struct pki_rng *rng, const struct pki_init_opts *o, struct init_pems *out,
                          struct bh_err *err)
{
	mbedtls_pk_context ca_key;
	char ca_name[128];
	struct pki_issuer issuer = {.key = &ca_key, .name = ca_name};
	struct pki_cert_spec srv = {.kind = PKI_KIND_SERVER,
	                            .subject = "O=berth,CN=berthd",
	                            .hosts = o->hosts,
	                            .n_hosts = o->n_hosts,
	                            .ips = o->ips,
	                            .n_ips = o->n_ips};
	struct pki_cert_spec adm = {.kind = PKI_KIND_CLIENT, .subject = "O=berth,CN=admin"};
	int64_t ca_end = (int64_t)time(NULL) + (int64_t)PKI_CA_DAYS * PKI_DAY;
	int r;

	mbedtls_pk_init(&ca_key);
	leaf_validity(o->days, ca_end, &srv);
	leaf_validity(o->days, ca_end, &adm);
	r = make_ca(rng, &ca_key, ca_name, sizeof(ca_name), ca_end, &out->ca, err);
	if (r == 0)
		r = pki_pair_make(rng, &srv, &issuer, NULL, &out->server, err);
	if (r == 0)
		r = pki_pair_make(rng, &adm, &issuer, NULL, &out->admin, err);
	mbedtls_pk_free(&ca_key);
	return r;
}

/* The CA goes last, so that a failure before it leaves no CA behind and a
 * second run needs no --force. */
static int write_init_pems(const char *dir, const struct init_pems *p, struct bh_err *err)
{
	if (write_pair(dir, "server-cert.pem", "server-key.pem", &p->server, err) < 0 ||
	    write_pair(dir, "cert.pem", "key.pem", &p->admin, err) < 0 ||
	    write_pair(dir, CA_FILE, CA_KEY, &p->ca, err) < 0)
		return -1;
	return 0;
}

static int init_check(const struct pki_init_opts *o, struct bh_err *err)
{
	static const char *const ca_files[] = {CA_FILE, CA_KEY};

	if (check_days(o->days, false, err) < 0 ||
	    check_names(o->hosts, o->n_hosts, o->ips, o->n_ips, err) < 0)
		return -1;
	if (o->dir == NULL || *o->dir == '\0')
		return bh_err_set(err, EINVAL, "no directory given");
	if (!o->force &&
	    refuse_existing(o->dir, ca_files, 2, "refusing to replace a CA; use --force", err) < 0)
		return -1;
	return 0;
}

int pki_init(const struct pki_init_opts *o, struct bh_err *err)
{
	struct init_pems pems = {0};
	struct pki_rng rng;
	int r;

	if (init_check(o, err) < 0 || ensure_private_dir(o->dir, err) < 0)
		return bh_err_wrap(err, "certs init");
	if (pki_rng_init(&rng, err) < 0)
		return bh_err_wrap(err, "certs init");
	r = make_init_pems(&rng, o, &pems, err);
	pki_rng_free(&rng);
	if (r == 0)
		r = write_init_pems(o->dir, &pems, err);
	init_pems_free(&pems);
	return r < 0 ? bh_err_wrap(err, "certs init %s", o->dir) : 0;
}

/* ---- pki_issue ---------------------------------------------------------- */

static int ca_load_files(const char *dir, struct ca *ca, struct bh_err *err)
{
	cleanup_free char *cert = bh_path_join(dir, CA_FILE);
	cleanup_free char *key = bh_path_join(dir, CA_KEY);
	int ret;

	if (pki_crt_load(cert, &ca->crt, err) < 0 || pki_key_load(key, &ca->key, err) < 0)
		return -1;
	ret = mbedtls_pk_check_pair(&ca->crt.pk, &ca->key);
	if (ret != 0)
		return bh_err_set(err, EINVAL, "%s does not match %s", key, cert);
	if (!ca->crt.ca_istrue)
		return bh_err_set(err, EINVAL, "%s is not a CA certificate", cert);
	if (pki_time_from_x509(&ca->crt.valid_to) < (int64_t)time(NULL))
		return bh_err_set(err, EINVAL, "%s has expired", cert);
	if (bh_read_file(cert, PKI_MAX_PEM, &ca->pem, &ca->pem_len, err) < 0)
		return -1;
	return 0;
}

static int ca_load(const char *dir, struct ca *ca, struct bh_err *err)
{
	int ret;

	if (dir == NULL || *dir == '\0')
		return bh_err_set(err, EINVAL, "no CA directory given");
	if (ca_load_files(dir, ca, err) < 0)
		return -1;
	ret = mbedtls_x509_dn_gets(ca->name, sizeof(ca->name), &ca->crt.subject);
	if (ret < 0)
		return pki_err_mbed(err, ret, "CA subject");
	return 0;
}

static int issue_check(const struct pki_issue_opts *o, struct bh_err *err)
{
	if (pki_check_name(o->name, err) < 0 || check_days(o->days, true, err) < 0)
		return -1;
	if (o->eku != PKI_EKU_CLIENT && o->eku != PKI_EKU_SERVER)
		return bh_err_set(err, EINVAL, "a certificate is either for a client or a server");
	if (o->eku == PKI_EKU_CLIENT && o->n_hosts + o->n_ips > 0)
		return bh_err_set(err, EINVAL, "--host and --ip are for server certificates");
	if (check_names(o->hosts, o->n_hosts, o->ips, o->n_ips, err) < 0)
		return -1;
	if (o->out_dir == NULL || *o->out_dir == '\0')
		return bh_err_set(err, EINVAL, "no output directory given");
	return 0;
}

static int issue_make(const struct pki_issue_opts *o, struct ca *ca, struct pki_pem_pair *pp,
                      struct bh_err *err)
{
	char subject[PKI_MAX_NAME + 16];
	struct pki_cert_spec spec = {.subject = subject,
	                             .hosts = o->hosts,
	                             .n_hosts = o->n_hosts,
	                             .ips = o->ips,
	                             .n_ips = o->n_ips};
	struct pki_issuer issuer = {.key = &ca->key, .name = ca->name};
	struct pki_rng rng;
	int r;

	snprintf(subject, sizeof(subject), "O=berth,CN=%s", o->name);
	spec.kind = o->eku == PKI_EKU_SERVER ? PKI_KIND_SERVER : PKI_KIND_CLIENT;
	leaf_validity(o->days, pki_time_from_x509(&ca->crt.valid_to), &spec);
	if (pki_rng_init(&rng, err) < 0)
		return -1;
	r = pki_pair_make(&rng, &spec, &issuer, NULL, pp, err);
	pki_rng_free(&rng);
	return r;
}

static int issue_write(const struct pki_issue_opts *o, const struct ca *ca,
                       const struct pki_pem_pair *pp, struct bh_err *err)
{
	const char *names[2] = {"cert.pem", "key.pem"};

	if (o->server_file_names) {
		names[0] = "server-cert.pem";
		names[1] = "server-key.pem";
	}
	if (ensure_private_dir(o->out_dir, err) < 0)
		return -1;
	if (!o->force &&
	    refuse_existing(o->out_dir, names, 2, "use --force to replace it", err) < 0)
		return -1;
	if (write_pair(o->out_dir, names[0], names[1], pp, err) < 0)
		return -1;
	return write_in(o->out_dir, CA_FILE, ca->pem, ca->pem_len, PUB_MODE, err);
}

int pki_issue(const struct pki_issue_opts *o, struct bh_err *err)
{
	struct pki_pem_pair pp = {0};
	struct ca ca;
	int r;

	if (issue_check(o, err) < 0)
		return bh_err_wrap(err, "certs issue %s", o->name ? o->name : "");
	ca_init(&ca);
	r = ca_load(o->ca_dir, &ca, err);
	if (r == 0)
		r = issue_make(o, &ca, &pp, err);
	if (r == 0)
		r = issue_write(o, &ca, &pp, err);
	pki_pair_free(&pp);
	ca_free(&ca);
	return r < 0 ? bh_err_wrap(err, "certs issue %s", o->name) : 0;
}

int pki_issue_client(const char *name, const char *ca_dir, const char *out_dir, int days,
                     struct bh_err *err)
{
	struct pki_issue_opts o = {.ca_dir = ca_dir,
	                           .out_dir = out_dir,
	                           .name = name,
	                           .eku = PKI_EKU_CLIENT,
	                           .days = days,
	                           .force = true};

	return pki_issue(&o, err);
}
