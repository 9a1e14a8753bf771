/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* CUnit suite for gateway auth: JWT HS256/RS256/ES256 (PEM, JWKS), API keys, Basic with crypt hashes. */
#include <crypt.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <CUnit/CUnit.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "auth.h"
#include "jwt_verify.h"
#include "parser.h"
#include "unit.h"

/* keys and files generated once for the suite, in a private temp dir */
static struct {
	char dir[64];
	EVP_PKEY *rsa1, *rsa2, *ec1, *ec2;
	unsigned char secret[48];	/* HS256 secret as written to hs.key (hex text) */
	size_t secret_len;
	char *rsa1_pem;			/* public PEM text of rsa1 (alg confusion) */
	time_t now;
} g;

enum td_tsign { TS_HS, TS_RS, TS_ES, TS_ES_DER };

static char *td_tpath(const char *name)
{
	static char buf[4][128];
	static int n;
	char *p = buf[n++ % 4];

	snprintf(p, sizeof(buf[0]), "%s/%s", g.dir, name);
	return p;
}

static int td_twrite(const char *name, const void *data, size_t len)
{
	FILE *f = fopen(td_tpath(name), "w");
	int ok;

	if (!f)
		return -1;
	ok = fwrite(data, 1, len, f) == len;
	return fclose(f) == 0 && ok ? 0 : -1;
}

static char *td_pub_pem(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *out = NULL;
	long n;

	if (b && PEM_write_bio_PUBKEY(b, k)) {
		n = BIO_get_mem_data(b, &p);
		out = strndup(p, (size_t)n);
	}
	BIO_free(b);
	return out;
}

static void td_b64(const unsigned char *in, size_t len, char *out, size_t sz)
{
	CU_ASSERT_FATAL(td_jwt_b64url_encode(in, len, out, sz) >= 0);
}

/* JWK text of a public key, kid may be NULL; 0 or -1 (runs in suite init: no CUnit asserts) */
static int td_jwk(EVP_PKEY *k, const char *kid, char *out, size_t sz)
{
	char kidm[64] = "";
	int rc = -1;

	if (kid)
		snprintf(kidm, sizeof(kidm), "\"kid\":\"%s\",", kid);
	if (EVP_PKEY_is_a(k, "RSA")) {
		BIGNUM *n = NULL, *e = NULL;
		unsigned char nb[512], eb[8];
		char ns[700], es[16];

		if (EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
		    EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e) == 1 &&
		    BN_num_bytes(n) <= (int)sizeof(nb) && BN_num_bytes(e) <= (int)sizeof(eb) &&
		    td_jwt_b64url_encode(nb, (size_t)BN_bn2bin(n, nb), ns, sizeof(ns)) > 0 &&
		    td_jwt_b64url_encode(eb, (size_t)BN_bn2bin(e, eb), es, sizeof(es)) > 0) {
			snprintf(out, sz, "{\"kty\":\"RSA\",%s\"use\":\"sig\",\"n\":\"%s\",\"e\":\"%s\"}",
				 kidm, ns, es);
			rc = 0;
		}
		BN_free(n);
		BN_free(e);
	} else {
		unsigned char pt[65];
		char xs[64], ys[64];
		size_t len = 0;

		if (EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt),
						    &len) == 1 && len == 65 && pt[0] == 4 &&
		    td_jwt_b64url_encode(pt + 1, 32, xs, sizeof(xs)) > 0 &&
		    td_jwt_b64url_encode(pt + 33, 32, ys, sizeof(ys)) > 0) {
			snprintf(out, sz, "{\"kty\":\"EC\",%s\"crv\":\"P-256\",\"alg\":\"ES256\",\"x\":\"%s\",\"y\":\"%s\"}",
				 kidm, xs, ys);
			rc = 0;
		}
	}
	return rc;
}

/* sign header.payload (JSON texts) into out; key: secret bytes or EVP_PKEY */
static void td_tok_key(char *out, size_t sz, const char *hdr, const char *pay, enum td_tsign how,
		       EVP_PKEY *k, const void *secret, size_t slen)
{
	unsigned char sig[600], raw[64];
	size_t siglen = sizeof(sig), n;
	char *p;

	td_b64((const unsigned char *)hdr, strlen(hdr), out, sz);
	n = strlen(out);
	out[n++] = '.';
	td_b64((const unsigned char *)pay, strlen(pay), out + n, sz - n);
	n = strlen(out);
	if (how == TS_HS) {
		CU_ASSERT_FATAL(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret, slen,
					  (unsigned char *)out, n, sig, sizeof(sig), &siglen) != NULL);
	} else {
		EVP_MD_CTX *md = EVP_MD_CTX_new();

		CU_ASSERT_FATAL(md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k) == 1);
		CU_ASSERT_FATAL(EVP_DigestSign(md, sig, &siglen, (unsigned char *)out, n) == 1);
		EVP_MD_CTX_free(md);
		if (how == TS_ES) {
			const unsigned char *d = sig;
			ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &d, (long)siglen);
			const BIGNUM *r, *s;

			CU_ASSERT_FATAL(es != NULL);
			ECDSA_SIG_get0(es, &r, &s);
			CU_ASSERT_FATAL(BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32);
			ECDSA_SIG_free(es);
			memcpy(sig, raw, 64);
			siglen = 64;
		}
	}
	out[n++] = '.';
	p = out + n;
	td_b64(sig, siglen, p, sz - n);
}

static void td_tok(char *out, size_t sz, const char *hdr, const char *pay, enum td_tsign how,
		   EVP_PKEY *k)
{
	td_tok_key(out, sz, hdr, pay, how, k, g.secret, g.secret_len);
}

/* a standard payload: sub, exp/nbf relative to g.now, aud, iss */
static const char *td_pay(long exp_off, long nbf_off, const char *aud_json, const char *iss)
{
	static char buf[512];

	snprintf(buf, sizeof(buf), "{\"sub\":\"user-42\",\"exp\":%lld,\"nbf\":%lld,\"aud\":%s,\"iss\":\"%s\"}",
		 (long long)g.now + exp_off, (long long)g.now + nbf_off, aud_json, iss);
	return buf;
}

static struct td_jwt_verifier *td_ver(enum td_jwt_alg alg, const char *secret, const char *pem,
				      const char *jwks)
{
	struct td_jwt_config c;
	struct td_jwt_verifier *v;

	td_jwt_config_default(&c, alg);
	c.secret_file = secret ? td_tpath(secret) : NULL;
	c.key_file = pem ? td_tpath(pem) : NULL;
	c.jwks_file = jwks ? td_tpath(jwks) : NULL;
	c.issuer = "https://idp.example";
	c.audience = "api";
	v = td_jwt_verifier_new(&c);
	CU_ASSERT_PTR_NOT_NULL(v);
	return v;
}

static enum td_jwt_reason td_vfy(const struct td_jwt_verifier *v, const char *tok,
				 struct td_jwt_claims *cl)
{
	return td_jwt_verify(v, tok, strlen(tok), g.now, cl);
}

static int td_write_pem(const char *name, EVP_PKEY *k)
{
	char *pem = td_pub_pem(k);
	int rc = pem ? td_twrite(name, pem, strlen(pem)) : -1;

	free(pem);
	return rc;
}

static int td_auth_init(void)
{
	char jwk[4][1200], buf[6000];
	unsigned char rnd[24];

	g.now = time(NULL);
	snprintf(g.dir, sizeof(g.dir), "/tmp/td_auth.XXXXXX");
	if (!mkdtemp(g.dir))
		return -1;
	g.rsa1 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	g.rsa2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	g.ec1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	g.ec2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (!g.rsa1 || !g.rsa2 || !g.ec1 || !g.ec2 || RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -1;
	for (size_t i = 0; i < sizeof(rnd); i++)
		sprintf((char *)g.secret + 2 * i, "%02x", rnd[i]);
	g.secret_len = 2 * sizeof(rnd);
	g.rsa1_pem = td_pub_pem(g.rsa1);
	if (!g.rsa1_pem)
		return -1;
	/* the secret file ends in a newline, which is not part of the secret */
	snprintf(buf, sizeof(buf), "%.*s\n", (int)g.secret_len, (char *)g.secret);
	if (td_twrite("hs.key", buf, strlen(buf)) || td_twrite("short.key", "0123456789\n", 11) ||
	    td_write_pem("rsa1.pem", g.rsa1) || td_write_pem("ec1.pem", g.ec1))
		return -1;
	if (td_jwk(g.rsa1, "r1", jwk[0], sizeof(jwk[0])) || td_jwk(g.rsa2, "r2", jwk[1], sizeof(jwk[1])) ||
	    td_jwk(g.ec1, "e1", jwk[2], sizeof(jwk[2])) || td_jwk(g.ec2, "e2", jwk[3], sizeof(jwk[3])))
		return -1;
	snprintf(buf, sizeof(buf), "{\"keys\":[%s,%s,%s,%s,{\"kty\":\"oct\",\"k\":\"AAAA\"}]}",
		 jwk[0], jwk[1], jwk[2], jwk[3]);
	if (td_twrite("jwks.json", buf, strlen(buf)))
		return -1;
	if (td_jwk(g.rsa1, NULL, jwk[0], sizeof(jwk[0])))
		return -1;
	snprintf(buf, sizeof(buf), "{\"keys\":[%s]}", jwk[0]);
	return td_twrite("jwks1.json", buf, strlen(buf));
}

static int td_rm(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

static int td_auth_fini(void)
{
	EVP_PKEY_free(g.rsa1);
	EVP_PKEY_free(g.rsa2);
	EVP_PKEY_free(g.ec1);
	EVP_PKEY_free(g.ec2);
	free(g.rsa1_pem);
	if (g.dir[0] && strcmp(g.dir, "/tmp/td_auth.XXXXXX"))
		nftw(g.dir, td_rm, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static void test_b64url(void)
{
	unsigned char out[16];
	char enc[16];

	CU_ASSERT_EQUAL(td_jwt_b64url_decode("QUJD", 4, out, sizeof(out)), 3);
	CU_ASSERT_EQUAL(memcmp(out, "ABC", 3), 0);
	CU_ASSERT_EQUAL(td_jwt_b64url_decode("QQ", 2, out, sizeof(out)), 1);
	CU_ASSERT_EQUAL(out[0], 'A');
	CU_ASSERT_EQUAL(td_jwt_b64url_decode("-_8", 3, out, sizeof(out)), 2);
	CU_ASSERT(out[0] == 0xfb && out[1] == 0xff);
	CU_ASSERT_EQUAL(td_jwt_b64url_decode("QQ==", 4, out, sizeof(out)), -EINVAL);
	CU_ASSERT_EQUAL(td_jwt_b64url_decode("Q Q", 3, out, sizeof(out)), -EINVAL);
	CU_ASSERT_EQUAL(td_jwt_b64url_decode("+/8", 3, out, sizeof(out)), -EINVAL);
	CU_ASSERT_EQUAL(td_jwt_b64url_decode("QR", 2, out, sizeof(out)), -EINVAL);	/* unused bits */
	CU_ASSERT_EQUAL(td_jwt_b64url_decode("QUJDR", 5, out, sizeof(out)), -EINVAL);
	CU_ASSERT_EQUAL(td_jwt_b64url_decode("QUJD", 4, out, 2), -ENOSPC);
	CU_ASSERT_EQUAL(td_jwt_b64url_encode((const unsigned char *)"\xfb\xff", 2, enc, sizeof(enc)), 3);
	CU_ASSERT_STRING_EQUAL(enc, "-_8");
}

static void test_hs256_accept(void)
{
	struct td_jwt_verifier *v = td_ver(TD_JWT_HS256, "hs.key", NULL, NULL);
	struct td_jwt_claims cl;
	char tok[2048];

	if (!v)
		return;
	CU_ASSERT_EQUAL(td_jwt_verifier_nkeys(v), 1);
	td_tok(tok, sizeof(tok), "{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
	       td_pay(300, -10, "\"api\"", "https://idp.example"), TS_HS, NULL);
	CU_ASSERT_EQUAL(td_vfy(v, tok, &cl), TD_JWT_OK);
	CU_ASSERT_STRING_EQUAL(cl.sub, "user-42");
	CU_ASSERT_EQUAL(cl.exp, (long long)g.now + 300);
	/* aud as an array holding the audience */
	td_tok(tok, sizeof(tok), "{\"alg\":\"HS256\"}",
	       td_pay(300, 0, "[\"other\",\"api\"]", "https://idp.example"), TS_HS, NULL);
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_OK);
	/* within the 30 s leeway on both sides */
	td_tok(tok, sizeof(tok), "{\"alg\":\"HS256\"}",
	       td_pay(-29, 29, "\"api\"", "https://idp.example"), TS_HS, NULL);
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_OK);
	td_jwt_verifier_free(v);
}

static void test_hs256_reject(void)
{
	struct td_jwt_verifier *v = td_ver(TD_JWT_HS256, "hs.key", NULL, NULL);
	const char *good_pay = td_pay(300, 0, "\"api\"", "https://idp.example");
	char tok[2048], tok2[2048 + 16], pay[512];
	struct td_jwt_config c;
	const char *dot;

	if (!v)
		return;
	strcpy(pay, good_pay);
#define TOK(h, p) td_tok(tok, sizeof(tok), h, p, TS_HS, NULL)
	TOK("{\"alg\":\"HS256\"}", td_pay(-31, -100, "\"api\"", "https://idp.example"));
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_EXPIRED);
	TOK("{\"alg\":\"HS256\"}", td_pay(300, 31, "\"api\"", "https://idp.example"));
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_NOT_YET_VALID);
	TOK("{\"alg\":\"HS256\"}", td_pay(300, 0, "\"web\"", "https://idp.example"));
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_BAD_AUDIENCE);
	TOK("{\"alg\":\"HS256\"}", td_pay(300, 0, "[\"web\",\"apis\"]", "https://idp.example"));
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_BAD_AUDIENCE);
	TOK("{\"alg\":\"HS256\"}", td_pay(300, 0, "\"api\"", "https://evil.example"));
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_BAD_ISSUER);
	TOK("{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"aud\":\"api\",\"iss\":\"https://idp.example\"}");
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_NO_EXP);
	TOK("{\"alg\":\"HS256\"}", "{\"exp\":\"soon\",\"aud\":\"api\",\"iss\":\"https://idp.example\"}");
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_MALFORMED);
	TOK("{\"alg\":\"HS256\",\"crit\":[\"b64\"]}", pay);
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_UNSUPPORTED);
	TOK("{\"alg\":\"hs256\"}", pay);
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_BAD_ALG);

	/* alg none, with and without a signature part */
	td_b64((const unsigned char *)"{\"alg\":\"none\"}", 14, tok, sizeof(tok));
	strcat(tok, ".");
	td_b64((const unsigned char *)pay, strlen(pay), tok + strlen(tok), sizeof(tok) - strlen(tok));
	strcat(tok, ".");
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_MALFORMED);
	strcat(tok, "AAAA");
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_BAD_ALG);

	/* tampered payload: another payload spliced under the original signature */
	TOK("{\"alg\":\"HS256\"}", pay);
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_OK);
	td_tok(tok2, sizeof(tok2), "{\"alg\":\"HS256\"}",
	       td_pay(300, 0, "\"api\"", "https://idp.example"), TS_HS, NULL);
	{
		char spliced[2048], p2[512];
		const char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');

		snprintf(p2, sizeof(p2), "{\"sub\":\"admin\",\"exp\":%lld,\"aud\":\"api\",\"iss\":\"https://idp.example\"}",
			 (long long)g.now + 300);
		memcpy(spliced, tok, (size_t)(d1 - tok) + 1);
		td_b64((const unsigned char *)p2, strlen(p2), spliced + (d1 - tok) + 1,
		       sizeof(spliced) - (size_t)(d1 - tok) - 1);
		strcat(spliced, d2);
		CU_ASSERT_EQUAL(td_vfy(v, spliced, NULL), TD_JWT_BAD_SIGNATURE);
	}
	/* tampered signature: first character changed */
	dot = strrchr(tok, '.');
	tok[dot - tok + 1] = tok[dot - tok + 1] == 'A' ? 'B' : 'A';
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_BAD_SIGNATURE);
	/* signed with another secret */
	td_tok_key(tok, sizeof(tok), "{\"alg\":\"HS256\"}", pay, TS_HS, NULL,
		   "another-secret-of-at-least-32-bytes!!", 37);
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_BAD_SIGNATURE);

	/* malformed: parts, base64, JSON */
	TOK("{\"alg\":\"HS256\"}", pay);
	strcpy(tok2, tok);
	*strrchr(tok2, '.') = '\0';
	CU_ASSERT_EQUAL(td_vfy(v, tok2, NULL), TD_JWT_MALFORMED);		/* two parts */
	snprintf(tok2, sizeof(tok2), "%s.AAAA", tok);
	CU_ASSERT_EQUAL(td_vfy(v, tok2, NULL), TD_JWT_MALFORMED);		/* four parts */
	snprintf(tok2, sizeof(tok2), "%s=", tok);
	CU_ASSERT_EQUAL(td_vfy(v, tok2, NULL), TD_JWT_MALFORMED);		/* padding */
	snprintf(tok2, sizeof(tok2), " %s", tok);
	CU_ASSERT_EQUAL(td_vfy(v, tok2, NULL), TD_JWT_MALFORMED);		/* whitespace */
	strcpy(tok2, tok);
	tok2[1] = '*';
	CU_ASSERT_EQUAL(td_vfy(v, tok2, NULL), TD_JWT_MALFORMED);		/* bad base64 */
	TOK("{\"alg\":\"HS256\"", pay);
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_MALFORMED);		/* header JSON */
	TOK("[\"HS256\"]", pay);
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_MALFORMED);		/* header not object */
	TOK("{\"alg\":\"HS256\"}", "{\"exp\":1,}");
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_MALFORMED);		/* payload JSON, signed */
	TOK("{\"alg\":\"HS256\"}", "{\"exp\":99999999999} x");
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_MALFORMED);		/* trailing garbage */
	CU_ASSERT_EQUAL(td_vfy(v, "", NULL), TD_JWT_MALFORMED);
	CU_ASSERT_EQUAL(td_vfy(v, "..", NULL), TD_JWT_MALFORMED);

	/* oversized: a valid token over max_len */
	{
		char *pad = malloc(6600), *p2 = malloc(6800), *t = malloc(9300);

		CU_ASSERT_FATAL(pad && p2 && t);
		memset(pad, 'x', 6500);
		pad[6500] = '\0';
		snprintf(p2, 6800, "{\"pad\":\"%s\",\"exp\":%lld,\"aud\":\"api\",\"iss\":\"https://idp.example\"}",
			 pad, (long long)g.now + 300);
		td_tok(t, 9300, "{\"alg\":\"HS256\"}", p2, TS_HS, NULL);
		CU_ASSERT(strlen(t) > TD_JWT_DEF_MAX_LEN);
		CU_ASSERT_EQUAL(td_vfy(v, t, NULL), TD_JWT_TOO_LONG);
		free(pad);
		free(p2);
		free(t);
	}
#undef TOK
	td_jwt_verifier_free(v);

	/* a secret under 256 bits, a key file for HS256, an unknown alg: refused at load */
	td_jwt_config_default(&c, TD_JWT_HS256);
	c.secret_file = td_tpath("short.key");
	CU_ASSERT_PTR_NULL(td_jwt_verifier_new(&c));
	CU_ASSERT_EQUAL(errno, EINVAL);
	c.secret_file = td_tpath("missing.key");
	CU_ASSERT_PTR_NULL(td_jwt_verifier_new(&c));
	CU_ASSERT_EQUAL(errno, ENOENT);
	c.secret_file = NULL;
	c.key_file = td_tpath("rsa1.pem");
	CU_ASSERT_PTR_NULL(td_jwt_verifier_new(&c));
	td_jwt_config_default(&c, td_jwt_alg_parse("none"));
	c.secret_file = td_tpath("hs.key");
	CU_ASSERT_PTR_NULL(td_jwt_verifier_new(&c));
}

static void test_rs256_pem(void)
{
	struct td_jwt_verifier *v = td_ver(TD_JWT_RS256, NULL, "rsa1.pem", NULL);
	const char *pay = td_pay(300, 0, "\"api\"", "https://idp.example");
	struct td_jwt_claims cl;
	struct td_jwt_config c;
	char tok[4096];

	if (!v)
		return;
	td_tok(tok, sizeof(tok), "{\"alg\":\"RS256\",\"kid\":\"whatever\"}", pay, TS_RS, g.rsa1);
	CU_ASSERT_EQUAL(td_vfy(v, tok, &cl), TD_JWT_OK);
	CU_ASSERT_STRING_EQUAL(cl.sub, "user-42");
	/* signed by another RSA key */
	td_tok(tok, sizeof(tok), "{\"alg\":\"RS256\"}", pay, TS_RS, g.rsa2);
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_BAD_SIGNATURE);
	/* alg confusion: HS256 with the public key PEM as the HMAC secret */
	td_tok_key(tok, sizeof(tok), "{\"alg\":\"HS256\"}", pay, TS_HS, NULL, g.rsa1_pem,
		   strlen(g.rsa1_pem));
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_BAD_ALG);
	/* ES256 token against an RS256 verifier */
	td_tok(tok, sizeof(tok), "{\"alg\":\"ES256\"}", pay, TS_ES, g.ec1);
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_BAD_ALG);
	td_jwt_verifier_free(v);

	/* an EC key is no RS256 key, and RS256 needs a key */
	td_jwt_config_default(&c, TD_JWT_RS256);
	c.key_file = td_tpath("ec1.pem");
	CU_ASSERT_PTR_NULL(td_jwt_verifier_new(&c));
	CU_ASSERT_EQUAL(errno, EINVAL);
	c.key_file = NULL;
	CU_ASSERT_PTR_NULL(td_jwt_verifier_new(&c));
	c.key_file = td_tpath("hs.key");
	CU_ASSERT_PTR_NULL(td_jwt_verifier_new(&c));
}

static void test_es256_pem(void)
{
	struct td_jwt_verifier *v = td_ver(TD_JWT_ES256, NULL, "ec1.pem", NULL);
	const char *pay = td_pay(300, 0, "\"api\"", "https://idp.example");
	char tok[4096], *dot;

	if (!v)
		return;
	td_tok(tok, sizeof(tok), "{\"alg\":\"ES256\"}", pay, TS_ES, g.ec1);
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_OK);
	dot = strrchr(tok, '.');
	dot[5] = dot[5] == 'A' ? 'B' : 'A';
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_BAD_SIGNATURE);
	/* a DER signature is not a JWS ES256 signature */
	td_tok(tok, sizeof(tok), "{\"alg\":\"ES256\"}", pay, TS_ES_DER, g.ec1);
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_BAD_SIGNATURE);
	td_tok(tok, sizeof(tok), "{\"alg\":\"ES256\"}", pay, TS_ES, g.ec2);
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_BAD_SIGNATURE);
	td_tok(tok, sizeof(tok), "{\"alg\":\"RS256\"}", pay, TS_RS, g.rsa1);
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_BAD_ALG);
	td_jwt_verifier_free(v);
}

static void test_jwks(void)
{
	struct td_jwt_verifier *v = td_ver(TD_JWT_RS256, NULL, NULL, "jwks.json");
	const char *pay = td_pay(300, 0, "\"api\"", "https://idp.example");
	char tok[4096];

	if (!v)
		return;
	CU_ASSERT_EQUAL(td_jwt_verifier_nkeys(v), 2);	/* EC and oct keys skipped */
	td_tok(tok, sizeof(tok), "{\"alg\":\"RS256\",\"kid\":\"r1\"}", pay, TS_RS, g.rsa1);
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_OK);
	td_tok(tok, sizeof(tok), "{\"alg\":\"RS256\",\"kid\":\"r2\"}", pay, TS_RS, g.rsa2);
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_OK);
	td_tok(tok, sizeof(tok), "{\"alg\":\"RS256\",\"kid\":\"r1\"}", pay, TS_RS, g.rsa2);
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_BAD_SIGNATURE);
	td_tok(tok, sizeof(tok), "{\"alg\":\"RS256\",\"kid\":\"r3\"}", pay, TS_RS, g.rsa1);
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_UNKNOWN_KID);
	td_tok(tok, sizeof(tok), "{\"alg\":\"RS256\",\"kid\":\"e1\"}", pay, TS_RS, g.rsa1);
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_UNKNOWN_KID);
	td_tok(tok, sizeof(tok), "{\"alg\":\"RS256\"}", pay, TS_RS, g.rsa1);
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_UNKNOWN_KID);	/* no kid, two keys */
	td_tok(tok, sizeof(tok), "{\"alg\":\"RS256\",\"kid\":7}", pay, TS_RS, g.rsa1);
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_MALFORMED);
	td_jwt_verifier_free(v);

	v = td_ver(TD_JWT_ES256, NULL, NULL, "jwks.json");
	if (!v)
		return;
	CU_ASSERT_EQUAL(td_jwt_verifier_nkeys(v), 2);
	td_tok(tok, sizeof(tok), "{\"alg\":\"ES256\",\"kid\":\"e2\"}", pay, TS_ES, g.ec2);
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_OK);
	td_tok(tok, sizeof(tok), "{\"alg\":\"ES256\",\"kid\":\"e1\"}", pay, TS_ES, g.ec2);
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_BAD_SIGNATURE);
	td_jwt_verifier_free(v);

	/* one key without kid: used for tokens without kid */
	v = td_ver(TD_JWT_RS256, NULL, NULL, "jwks1.json");
	if (!v)
		return;
	td_tok(tok, sizeof(tok), "{\"alg\":\"RS256\"}", pay, TS_RS, g.rsa1);
	CU_ASSERT_EQUAL(td_vfy(v, tok, NULL), TD_JWT_OK);
	td_jwt_verifier_free(v);

	/* a JWKS with no key for the algorithm, and one that is not JSON */
	CU_ASSERT_FATAL(td_twrite("bad.json", "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"}]}", 35) == 0);
	{
		struct td_jwt_config c;

		td_jwt_config_default(&c, TD_JWT_RS256);
		c.jwks_file = td_tpath("bad.json");
		CU_ASSERT_PTR_NULL(td_jwt_verifier_new(&c));
		CU_ASSERT_FATAL(td_twrite("bad.json", "{\"keys\":[", 9) == 0);
		CU_ASSERT_PTR_NULL(td_jwt_verifier_new(&c));
		CU_ASSERT_EQUAL(errno, EINVAL);
	}
}

/* RFC 7515 A.1 (HS256) and A.3 (ES256) examples: tokens signed by someone else */
#define RFC_PAY	"eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
#define RFC_HS_K "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"
#define RFC_HS_TOK "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9." RFC_PAY \
	".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
#define RFC_ES_TOK "eyJhbGciOiJFUzI1NiJ9." RFC_PAY \
	".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"
#define RFC_ES_JWKS "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\"," \
	"\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\"," \
	"\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}"

static void test_rfc7515(void)
{
	const time_t before = 1300819000, after = 1300819380 + TD_JWT_DEF_LEEWAY;
	struct td_jwt_verifier *v;
	struct td_jwt_config c;
	unsigned char k[64];
	char tok[512];

	CU_ASSERT_FATAL(td_jwt_b64url_decode(RFC_HS_K, strlen(RFC_HS_K), k, sizeof(k)) == 64);
	CU_ASSERT_FATAL(k[63] != '\n' && td_twrite("rfc.key", k, sizeof(k)) == 0);
	CU_ASSERT_FATAL(td_twrite("rfc.jwks", RFC_ES_JWKS, strlen(RFC_ES_JWKS)) == 0);

	td_jwt_config_default(&c, TD_JWT_HS256);
	c.secret_file = td_tpath("rfc.key");
	c.issuer = "joe";
	v = td_jwt_verifier_new(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_EQUAL(td_jwt_verify(v, RFC_HS_TOK, strlen(RFC_HS_TOK), before, NULL), TD_JWT_OK);
	CU_ASSERT_EQUAL(td_jwt_verify(v, RFC_HS_TOK, strlen(RFC_HS_TOK), after, NULL), TD_JWT_EXPIRED);
	strcpy(tok, RFC_HS_TOK);
	tok[strlen(tok) - 1] = 'g';	/* "k" -> "g": one bit of the last MAC byte */
	CU_ASSERT_EQUAL(td_jwt_verify(v, tok, strlen(tok), before, NULL), TD_JWT_BAD_SIGNATURE);
	tok[strlen(tok) - 1] = 'l';	/* a bit past the end of the MAC: not canonical */
	CU_ASSERT_EQUAL(td_jwt_verify(v, tok, strlen(tok), before, NULL), TD_JWT_MALFORMED);
	td_jwt_verifier_free(v);

	td_jwt_config_default(&c, TD_JWT_ES256);
	c.jwks_file = td_tpath("rfc.jwks");
	c.issuer = "joe";
	v = td_jwt_verifier_new(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_EQUAL(td_jwt_verify(v, RFC_ES_TOK, strlen(RFC_ES_TOK), before, NULL), TD_JWT_OK);
	strcpy(tok, RFC_ES_TOK);
	tok[strlen(tok) - 1] = 'A';	/* low bit of the last byte of s */
	CU_ASSERT_EQUAL(td_jwt_verify(v, tok, strlen(tok), before, NULL), TD_JWT_BAD_SIGNATURE);
	c.issuer = "jane";
	td_jwt_verifier_free(v);
	v = td_jwt_verifier_new(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_EQUAL(td_jwt_verify(v, RFC_ES_TOK, strlen(RFC_ES_TOK), before, NULL),
			TD_JWT_BAD_ISSUER);
	td_jwt_verifier_free(v);
}

/* parse one request head into p (buf must live as long as p is used) */
static int td_req(struct td_http_parser *p, const char *buf)
{
	size_t used = 0;

	if (td_http_parser_init(p, TD_HTTP_REQUEST, NULL))
		return -1;
	return td_http_parse(p, buf, strlen(buf), &used) == TD_HTTP_DONE ? 0 : -1;
}

static enum td_auth_reason td_areq(const struct td_auth *a, const char *fields,
				   struct td_auth_result *res)
{
	static struct td_http_parser p;
	char buf[16384];

	snprintf(buf, sizeof(buf), "GET /users HTTP/1.1\r\nHost: api.example\r\n%s\r\n", fields);
	CU_ASSERT_FATAL(td_req(&p, buf) == 0);
	return td_auth_check(a, &p.msg, buf, g.now, res);
}

static void test_auth_jwt(void)
{
	struct td_auth_config c = { .kind = TD_AUTH_JWT, .realm = "api" };
	struct td_auth_result res;
	char tok[2048], f[8192], ch[512];
	struct td_auth *a;

	td_jwt_config_default(&c.jwt, TD_JWT_HS256);
	c.jwt.secret_file = td_tpath("hs.key");
	c.jwt.audience = "api";
	a = td_auth_new(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);

	td_tok(tok, sizeof(tok), "{\"alg\":\"HS256\"}", td_pay(300, 0, "\"api\"", "x"), TS_HS, NULL);
	snprintf(f, sizeof(f), "Authorization: Bearer %s\r\n", tok);
	CU_ASSERT_EQUAL(td_areq(a, f, &res), TD_AUTH_OK);
	CU_ASSERT_STRING_EQUAL(res.identity, "user-42");
	snprintf(f, sizeof(f), "authorization: bearer   %s\r\n", tok);
	CU_ASSERT_EQUAL(td_areq(a, f, &res), TD_AUTH_OK);

	CU_ASSERT_EQUAL(td_areq(a, "", &res), TD_AUTH_MISSING);
	CU_ASSERT(td_auth_challenge(a, &res, ch, sizeof(ch)) > 0);
	CU_ASSERT_STRING_EQUAL(ch, "Bearer realm=\"api\"");

	snprintf(f, sizeof(f), "Authorization: Bearer %s\r\nAuthorization: Bearer %s\r\n", tok, tok);
	CU_ASSERT_EQUAL(td_areq(a, f, &res), TD_AUTH_MALFORMED);
	snprintf(f, sizeof(f), "Authorization: Token %s\r\n", tok);
	CU_ASSERT_EQUAL(td_areq(a, f, &res), TD_AUTH_MALFORMED);
	CU_ASSERT_EQUAL(td_areq(a, "Authorization: Bearer\r\n", &res), TD_AUTH_MALFORMED);

	td_tok(tok, sizeof(tok), "{\"alg\":\"HS256\"}", td_pay(-100, -200, "\"api\"", "x"), TS_HS, NULL);
	snprintf(f, sizeof(f), "Authorization: Bearer %s\r\n", tok);
	CU_ASSERT_EQUAL(td_areq(a, f, &res), TD_AUTH_BAD_TOKEN);
	CU_ASSERT_EQUAL(res.jwt, TD_JWT_EXPIRED);
	CU_ASSERT_STRING_EQUAL(td_auth_reason_str(&res), "token expired");
	CU_ASSERT(td_auth_challenge(a, &res, ch, sizeof(ch)) > 0);
	CU_ASSERT_STRING_EQUAL(ch, "Bearer realm=\"api\", error=\"invalid_token\", "
				   "error_description=\"token expired\"");
	td_auth_free(a);

	c.realm = "bad\"realm";
	CU_ASSERT_PTR_NULL(td_auth_new(&c));
	CU_ASSERT_EQUAL(errno, EINVAL);
}

static void td_sha256_hex(const char *s, char *hex)
{
	unsigned char md[32];
	unsigned int n = 0;

	CU_ASSERT_FATAL(EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL) == 1 && n == 32);
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
}

static void test_auth_api_key(void)
{
	char alice[65], bob[65], file[256], ch[256];
	struct td_auth_api_key inl[1];
	struct td_auth_config c = { .kind = TD_AUTH_API_KEY };
	struct td_auth_result res;
	struct td_auth *a;

	td_sha256_hex("k-alice-0123456789", alice);
	td_sha256_hex("k-bob-9876543210", bob);
	snprintf(file, sizeof(file), "# name sha256\nalice %s\n\n", alice);
	CU_ASSERT_FATAL(td_twrite("keys.txt", file, strlen(file)) == 0);
	inl[0].name = "bob";
	inl[0].sha256 = bob;
	c.keys = inl;
	c.nkeys = 1;
	c.keys_file = td_tpath("keys.txt");
	a = td_auth_new(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_STRING_EQUAL(td_auth_key_header(a), "X-API-Key");

	CU_ASSERT_EQUAL(td_areq(a, "X-API-Key: k-alice-0123456789\r\n", &res), TD_AUTH_OK);
	CU_ASSERT_STRING_EQUAL(res.identity, "alice");
	CU_ASSERT_EQUAL(td_areq(a, "x-api-key: k-bob-9876543210\r\n", &res), TD_AUTH_OK);
	CU_ASSERT_STRING_EQUAL(res.identity, "bob");
	CU_ASSERT_EQUAL(td_areq(a, "X-API-Key: k-alice-012345678\r\n", &res), TD_AUTH_UNKNOWN_KEY);
	CU_ASSERT_STRING_EQUAL(res.identity, "");
	CU_ASSERT_EQUAL(td_areq(a, "X-API-Key: k-alice-01234567890\r\n", &res), TD_AUTH_UNKNOWN_KEY);
	CU_ASSERT_EQUAL(td_areq(a, "X-Api: k-alice-0123456789\r\n", &res), TD_AUTH_MISSING);
	CU_ASSERT_EQUAL(td_areq(a, "X-API-Key:\r\n", &res), TD_AUTH_MISSING);
	CU_ASSERT_EQUAL(td_areq(a, "X-API-Key: k-bob-9876543210\r\nX-API-Key: x\r\n", &res),
			TD_AUTH_MALFORMED);
	CU_ASSERT(td_auth_challenge(a, &res, ch, sizeof(ch)) > 0);
	CU_ASSERT_STRING_EQUAL(ch, "ApiKey realm=\"td\", header=\"X-API-Key\"");
	td_auth_free(a);

	/* a hash that is not 64 hex digits, and a header name that is not a token */
	inl[0].sha256 = "abcd";
	CU_ASSERT_PTR_NULL(td_auth_new(&c));
	inl[0].sha256 = bob;
	c.key_header = "X API";
	CU_ASSERT_PTR_NULL(td_auth_new(&c));
	c.key_header = "Api-Token";
	c.keys_file = NULL;
	a = td_auth_new(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_EQUAL(td_areq(a, "Api-Token: k-bob-9876543210\r\n", &res), TD_AUTH_OK);
	CU_ASSERT_EQUAL(td_areq(a, "X-API-Key: k-bob-9876543210\r\n", &res), TD_AUTH_MISSING);
	td_auth_free(a);
}

/* "user:hash" with a fresh salt of the given prefix */
static void td_htline(char *out, size_t sz, const char *user, const char *pw, const char *prefix,
		      unsigned long cost)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	const char *h;

	CU_ASSERT_FATAL(cd != NULL);
	CU_ASSERT_FATAL(crypt_gensalt_rn(prefix, cost, NULL, 0, salt, sizeof(salt)) != NULL);
	h = crypt_r(pw, salt, cd);
	CU_ASSERT_FATAL(h && h[0] == '$' && !strncmp(h, prefix, strlen(prefix)));
	snprintf(out, sz, "%s:%s\n", user, h);
	free(cd);
}

static enum td_auth_reason td_basic(const struct td_auth *a, const char *userpass,
				    struct td_auth_result *res)
{
	unsigned char b64[512];
	char f[600];

	EVP_EncodeBlock(b64, (const unsigned char *)userpass, (int)strlen(userpass));
	snprintf(f, sizeof(f), "Authorization: Basic %s\r\n", b64);
	return td_areq(a, f, res);
}

static void test_auth_basic(void)
{
	struct td_auth_config c = { .kind = TD_AUTH_BASIC, .realm = "staff" };
	char l1[256], l2[256], l3[256], file[1024], ch[256];
	struct td_auth_result res;
	struct td_auth *a;

	td_htline(l1, sizeof(l1), "ann", "bcrypt pw", "$2y$", 5);
	td_htline(l2, sizeof(l2), "sam", "sha512 pw", "$6$", 0);
	td_htline(l3, sizeof(l3), "yan", "yescrypt pw", "$y$", 0);
	snprintf(file, sizeof(file), "# htpasswd\n%s%s%s", l1, l2, l3);
	CU_ASSERT_FATAL(td_twrite("users", file, strlen(file)) == 0);
	c.users_file = td_tpath("users");
	a = td_auth_new(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);

	CU_ASSERT_EQUAL(td_basic(a, "ann:bcrypt pw", &res), TD_AUTH_OK);
	CU_ASSERT_STRING_EQUAL(res.identity, "ann");
	CU_ASSERT_EQUAL(td_basic(a, "sam:sha512 pw", &res), TD_AUTH_OK);
	CU_ASSERT_STRING_EQUAL(res.identity, "sam");
	CU_ASSERT_EQUAL(td_basic(a, "yan:yescrypt pw", &res), TD_AUTH_OK);
	CU_ASSERT_STRING_EQUAL(res.identity, "yan");
	CU_ASSERT_EQUAL(td_basic(a, "ann:bcrypt pW", &res), TD_AUTH_BAD_PASSWORD);
	CU_ASSERT_EQUAL(td_basic(a, "sam:sha512 pw ", &res), TD_AUTH_BAD_PASSWORD);
	CU_ASSERT_EQUAL(td_basic(a, "yan:", &res), TD_AUTH_BAD_PASSWORD);
	CU_ASSERT_EQUAL(td_basic(a, "ann:sha512 pw", &res), TD_AUTH_BAD_PASSWORD);
	CU_ASSERT_EQUAL(td_basic(a, "bob:bcrypt pw", &res), TD_AUTH_BAD_USER);
	CU_ASSERT_EQUAL(td_basic(a, "Ann:bcrypt pw", &res), TD_AUTH_BAD_USER);
	CU_ASSERT_STRING_EQUAL(res.identity, "");
	CU_ASSERT(td_auth_challenge(a, &res, ch, sizeof(ch)) > 0);
	CU_ASSERT_STRING_EQUAL(ch, "Basic realm=\"staff\", charset=\"UTF-8\"");

	/* malformed headers */
	CU_ASSERT_EQUAL(td_basic(a, "annbcrypt pw", &res), TD_AUTH_MALFORMED);		/* no colon */
	CU_ASSERT_EQUAL(td_basic(a, ":bcrypt pw", &res), TD_AUTH_MALFORMED);		/* no user */
	CU_ASSERT_EQUAL(td_basic(a, "ann:bcrypt\npw", &res), TD_AUTH_MALFORMED);	/* control */
	CU_ASSERT_EQUAL(td_areq(a, "Authorization: Basic YW5uOmJjcnlwdCBwdw\r\n", &res),
			TD_AUTH_MALFORMED);						/* no padding */
	CU_ASSERT_EQUAL(td_areq(a, "Authorization: Basic YW5u*mJj\r\n", &res), TD_AUTH_MALFORMED);
	CU_ASSERT_EQUAL(td_areq(a, "Authorization: Basic\r\n", &res), TD_AUTH_MALFORMED);
	CU_ASSERT_EQUAL(td_areq(a, "Authorization: Bearer YW5uOmJjcnlwdCBwdw==\r\n", &res),
			TD_AUTH_MALFORMED);
	CU_ASSERT_EQUAL(td_areq(a, "Authorization: Basic YW5uOmJjcnlwdCBwdw==\r\n", &res),
			TD_AUTH_OK);							/* base64 ok */
	CU_ASSERT_EQUAL(td_areq(a, "", &res), TD_AUTH_MISSING);
	td_auth_free(a);

	/* weak or unknown hash methods and broken lines are refused at load */
	CU_ASSERT_FATAL(td_twrite("users.md5", "old:$1$abcdefgh$4Ktxl4Q7JvPZmOwnGBBpX.\n", 38) == 0);
	c.users_file = td_tpath("users.md5");
	CU_ASSERT_PTR_NULL(td_auth_new(&c));
	CU_ASSERT_EQUAL(errno, EINVAL);
	CU_ASSERT_FATAL(td_twrite("users.salt", "bad:$6$ab!c$xyz\n", 16) == 0);	/* bad salt */
	c.users_file = td_tpath("users.salt");
	CU_ASSERT_PTR_NULL(td_auth_new(&c));
	CU_ASSERT_FATAL(td_twrite("users.plain", "old:secret\n", 11) == 0);
	c.users_file = td_tpath("users.plain");
	CU_ASSERT_PTR_NULL(td_auth_new(&c));
	snprintf(file, sizeof(file), "%s%s", l1, l1);
	CU_ASSERT_FATAL(td_twrite("users.dup", file, strlen(file)) == 0);
	c.users_file = td_tpath("users.dup");
	CU_ASSERT_PTR_NULL(td_auth_new(&c));
	c.users_file = td_tpath("nope");
	CU_ASSERT_PTR_NULL(td_auth_new(&c));
	CU_ASSERT_EQUAL(errno, ENOENT);
}

int td_suite_gateway_auth(void)
{
	CU_pSuite s = CU_add_suite("gateway auth", td_auth_init, td_auth_fini);

	if (!s)
		return CU_get_error();
	if (!CU_add_test(s, "base64url strictness", test_b64url) ||
	    !CU_add_test(s, "JWT HS256 accept", test_hs256_accept) ||
	    !CU_add_test(s, "JWT HS256 rejections", test_hs256_reject) ||
	    !CU_add_test(s, "JWT RS256 PEM and alg confusion", test_rs256_pem) ||
	    !CU_add_test(s, "JWT ES256 PEM", test_es256_pem) ||
	    !CU_add_test(s, "JWT JWKS kid selection", test_jwks) ||
	    !CU_add_test(s, "JWT RFC 7515 A.1/A.3 examples", test_rfc7515) ||
	    !CU_add_test(s, "auth Bearer header and challenge", test_auth_jwt) ||
	    !CU_add_test(s, "auth API keys", test_auth_api_key) ||
	    !CU_add_test(s, "auth Basic bcrypt/sha512/yescrypt", test_auth_basic))
		return CU_get_error();
	return 0;
}
