/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* CUnit suites for the kernel-free parts of state apply (ids, td_ports, the diff, runtime overrides) and the admin protocol. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <CUnit/CUnit.h>

#include "td/abi.h"
#include "addr.h"
#include "admin.h"
#include "config.h"
#include "state.h"

int td_suite_state(void);
int td_suite_admin(void);

static const char td_st_yaml[] =
	"l4:\n"
	"  services:\n"
	"    - name: web\n"
	"      vip: 10.200.0.100\n"
	"      port: 80\n"
	"      proto: tcp\n"
	"      mode: nat\n"
	"      backends:\n"
	"        - { address: 10.0.1.11, port: 8080 }\n"
	"        - { address: 10.0.1.12, port: 8080, weight: 2 }\n"
	"    - name: dns\n"
	"      vip: 10.200.0.100\n"
	"      port: 53\n"
	"      proto: udp\n"
	"      mode: dsr\n"
	"      backends:\n"
	"        - { address: 10.0.1.11, port: 53 }\n";

#define N_INFO 16
#define N_BE   16

static int td_st_load(struct td_config *cfg)
{
	struct td_errors errs = {};
	int err = td_config_load_buf("state.yaml", td_st_yaml, strlen(td_st_yaml), cfg, &errs);

	td_errors_free(&errs);
	return err;
}

/* backend slot as the agent would have written it */
static void td_st_be(struct td_backend *be, const char *addr, __u16 port, __u32 svc, __u8 flags)
{
	memset(be, 0, sizeof(*be));
	td_addr_parse(addr, &be->addr, &be->family);
	be->port = htons(port);
	be->svc_id = svc;
	be->flags = flags;
}

static void test_state_fresh_ids(void)
{
	struct td_svc_info info[N_INFO] = {};
	struct td_backend bes[N_BE] = {};
	struct td_config cfg = {};
	__u32 svc[2], be[3];

	CU_ASSERT_FATAL(td_st_load(&cfg) == 0);
	CU_ASSERT_EQUAL(td_state_assign_ids(info, N_INFO, bes, N_BE, &cfg, svc, be), 0);
	CU_ASSERT_EQUAL(svc[0], 0);
	CU_ASSERT_EQUAL(svc[1], 1);
	CU_ASSERT_EQUAL(be[0], 0);
	CU_ASSERT_EQUAL(be[1], 1);
	CU_ASSERT_EQUAL(be[2], 2);
	td_config_free(&cfg);
}

static void test_state_adopts_ids(void)
{
	struct td_svc_info info[N_INFO] = {};
	struct td_backend bes[N_BE] = {};
	struct td_config cfg = {};
	__u32 svc[2], be[3];

	CU_ASSERT_FATAL(td_st_load(&cfg) == 0);
	/* web was id 5 with 10.0.1.12:8080 as backend 7; backend 0 was used once (inactive) */
	snprintf(info[5].name, sizeof(info[5].name), "web");
	td_state_vip_key(&cfg.services[0], &info[5].vip);
	info[5].in_use = 1;
	td_st_be(&bes[7], "10.0.1.12", 8080, 5, TD_BE_F_ACTIVE | TD_BE_F_NEXTHOP);
	td_st_be(&bes[0], "10.9.9.9", 1, 3, 0);
	CU_ASSERT_EQUAL(td_state_assign_ids(info, N_INFO, bes, N_BE, &cfg, svc, be), 0);
	CU_ASSERT_EQUAL(svc[0], 5);
	CU_ASSERT_EQUAL(svc[1], 0);
	CU_ASSERT_EQUAL(be[1], 7);          /* same service, same endpoint: same id */
	CU_ASSERT_EQUAL(be[0], 1);          /* never used ids first, 0 was used */
	CU_ASSERT_EQUAL(be[2], 2);
	td_config_free(&cfg);
}

static void test_state_changed_service_new_id(void)
{
	struct td_svc_info info[N_INFO] = {};
	struct td_backend bes[N_BE] = {};
	struct td_config cfg = {};
	__u32 svc[2], be[3];

	CU_ASSERT_FATAL(td_st_load(&cfg) == 0);
	/* id 0 holds "web" on port 81: a different service, its id must not be reused now */
	snprintf(info[0].name, sizeof(info[0].name), "web");
	td_state_vip_key(&cfg.services[0], &info[0].vip);
	info[0].vip.port = htons(81);
	info[0].in_use = 1;
	CU_ASSERT_EQUAL(td_state_assign_ids(info, N_INFO, bes, N_BE, &cfg, svc, be), 0);
	CU_ASSERT_EQUAL(svc[0], 1);
	CU_ASSERT_EQUAL(svc[1], 2);
	td_config_free(&cfg);
}

static void test_state_out_of_ids(void)
{
	struct td_svc_info info[N_INFO] = {};
	struct td_backend bes[2] = {};
	struct td_config cfg = {};
	__u32 svc[2], be[3];

	CU_ASSERT_FATAL(td_st_load(&cfg) == 0);
	CU_ASSERT_EQUAL(td_state_assign_ids(info, N_INFO, bes, 2, &cfg, svc, be), -ENOSPC);
	CU_ASSERT_EQUAL(td_state_assign_ids(info, 1, bes, N_BE, &cfg, svc, be), -ENOSPC);
	td_config_free(&cfg);
}

static void test_state_ports(void)
{
	struct td_config cfg = {};
	__u8 *ports = calloc(65536, 1);
	size_t i, set = 0;

	CU_ASSERT_FATAL(ports != NULL);
	CU_ASSERT_FATAL(td_st_load(&cfg) == 0);
	td_state_ports(&cfg, ports);
	CU_ASSERT_EQUAL(ports[80], TD_PORT_F_VIP);
	CU_ASSERT_EQUAL(ports[53], TD_PORT_F_VIP);     /* dsr backend port 53 is not a NAT port */
	CU_ASSERT_EQUAL(ports[8080], TD_PORT_F_BACKEND);
	for (i = 0; i < 65536; i++)
		set += ports[i] != 0;
	CU_ASSERT_EQUAL(set, 3);
	td_config_free(&cfg);
	free(ports);
}


/* ---- diff (td_state_plan) ---------------------------------------------------------------- */

/* A pinned view, as td_state_apply would read it back after applying cfg with ids 0.. */
struct td_st_pinned {
	struct td_svc_info info[N_INFO];
	struct td_backend bes[N_BE];
	struct td_svc svc[N_INFO];
	bool has_svc[N_INFO];
	bool has_ring[N_INFO];
	struct td_state_view v;
};

static void td_st_pin(struct td_st_pinned *p, const struct td_config *cfg, __u32 gen)
{
	size_t i, j, k = 0;

	memset(p, 0, sizeof(*p));
	for (i = 0; i < cfg->n_services; i++) {
		const struct td_service_cfg *s = &cfg->services[i];

		snprintf(p->info[i].name, sizeof(p->info[i].name), "%s", s->name);
		td_state_vip_key(s, &p->info[i].vip);
		p->info[i].in_use = 1;
		p->info[i].mode = s->mode;
		p->info[i].generation = gen;
		p->svc[i].id = i;
		p->svc[i].mode = s->mode;
		p->svc[i].ring_size = cfg->maglev_size;
		p->has_svc[i] = p->has_ring[i] = true;
		for (j = 0; j < s->n_backends; j++, k++) {
			struct td_backend *b = &p->bes[k];

			b->addr = s->backends[j].addr;
			b->family = s->backends[j].family;
			b->port = htons(s->backends[j].port);
			b->svc_id = i;
			b->weight = s->backends[j].weight;
			b->flags = TD_BE_F_ACTIVE;
		}
	}
	p->v.info = p->info;
	p->v.n_info = N_INFO;
	p->v.bes = p->bes;
	p->v.n_be = N_BE;
	p->v.svc = p->svc;
	p->v.has_svc = p->has_svc;
	p->v.has_ring = p->has_ring;
}

static int td_st_load_str(const char *y, struct td_config *cfg)
{
	struct td_errors errs = {};
	int err = td_config_load_buf("plan.yaml", y, strlen(y), cfg, &errs);

	td_errors_free(&errs);
	return err;
}

static void test_plan_unchanged(void)
{
	static struct td_st_pinned p;
	struct td_state_plan pl;
	struct td_config cfg = {};

	CU_ASSERT_FATAL(td_st_load(&cfg) == 0);
	td_st_pin(&p, &cfg, 7);
	CU_ASSERT_FATAL(td_state_plan(&p.v, &cfg, &pl) == 0);
	CU_ASSERT_EQUAL(pl.generation, 8);
	CU_ASSERT_EQUAL(pl.n_same, 2);
	CU_ASSERT_EQUAL(pl.n_changed + pl.n_new + pl.n_gone, 0);
	CU_ASSERT_EQUAL(pl.change[0], TD_SVC_SAME);
	CU_ASSERT_EQUAL(pl.change[1], TD_SVC_SAME);
	td_state_plan_free(&pl);
	td_config_free(&cfg);
}

/* only the service whose ring inputs changed is rebuilt; each kind of input counts */
static void test_plan_changes(void)
{
	static struct td_st_pinned p;
	struct td_state_plan pl;
	struct td_config cfg = {}, c2 = {};
	struct td_backend_cfg *nb;

	CU_ASSERT_FATAL(td_st_load(&cfg) == 0);
	td_st_pin(&p, &cfg, 1);

	/* weight of one web backend */
	p.bes[1].weight = 5;
	CU_ASSERT_FATAL(td_state_plan(&p.v, &cfg, &pl) == 0);
	CU_ASSERT_EQUAL(pl.change[0], TD_SVC_CHANGED);
	CU_ASSERT_EQUAL(pl.change[1], TD_SVC_SAME);
	CU_ASSERT_EQUAL(pl.n_changed, 1);
	td_state_plan_free(&pl);
	p.bes[1].weight = 2;

	/* mode of dns */
	p.svc[1].mode = TD_MODE_NAT;
	CU_ASSERT_FATAL(td_state_plan(&p.v, &cfg, &pl) == 0);
	CU_ASSERT_EQUAL(pl.change[0], TD_SVC_SAME);
	CU_ASSERT_EQUAL(pl.change[1], TD_SVC_CHANGED);
	td_state_plan_free(&pl);
	p.svc[1].mode = TD_MODE_DSR;

	/* ring missing (e.g. a crash between writes): rebuilt */
	p.has_ring[0] = false;
	CU_ASSERT_FATAL(td_state_plan(&p.v, &cfg, &pl) == 0);
	CU_ASSERT_EQUAL(pl.change[0], TD_SVC_CHANGED);
	td_state_plan_free(&pl);
	p.has_ring[0] = true;

	/* ring size: every ring */
	cfg.maglev_size = 251;
	CU_ASSERT_FATAL(td_state_plan(&p.v, &cfg, &pl) == 0);
	CU_ASSERT_EQUAL(pl.n_changed, 2);
	td_state_plan_free(&pl);
	cfg.maglev_size = p.svc[0].ring_size;

	/* a backend more in web: web rebuilt, dns not */
	CU_ASSERT_FATAL(td_st_load(&c2) == 0);
	nb = realloc(c2.services[0].backends, 3 * sizeof(*nb));
	CU_ASSERT_FATAL(nb != NULL);
	c2.services[0].backends = nb;
	nb[2] = nb[1];
	td_addr_parse("10.0.1.13", &nb[2].addr, &nb[2].family);
	c2.services[0].n_backends = 3;
	CU_ASSERT_FATAL(td_state_plan(&p.v, &c2, &pl) == 0);
	CU_ASSERT_EQUAL(pl.change[0], TD_SVC_CHANGED);
	CU_ASSERT_EQUAL(pl.change[1], TD_SVC_SAME);
	CU_ASSERT_EQUAL(pl.be_ids[0], 0);          /* kept backends keep their ids */
	CU_ASSERT_EQUAL(pl.be_ids[1], 1);
	CU_ASSERT_EQUAL(pl.be_ids[2], 3);          /* 2 is dns's backend */
	td_state_plan_free(&pl);

	/* a backend less in web (same count check must catch the dropped one) */
	c2.services[0].n_backends = 1;
	CU_ASSERT_FATAL(td_state_plan(&p.v, &c2, &pl) == 0);
	CU_ASSERT_EQUAL(pl.change[0], TD_SVC_CHANGED);
	CU_ASSERT_EQUAL(pl.change[1], TD_SVC_SAME);
	td_state_plan_free(&pl);
	td_config_free(&c2);
	td_config_free(&cfg);
}

static void test_plan_add_remove_service(void)
{
	static const char y[] =
		"l4:\n"
		"  services:\n"
		"    - name: dns\n"
		"      vip: 10.200.0.100\n"
		"      port: 53\n"
		"      proto: udp\n"
		"      mode: dsr\n"
		"      backends:\n"
		"        - { address: 10.0.1.11, port: 53 }\n"
		"    - name: api\n"
		"      vip: 10.200.0.101\n"
		"      port: 443\n"
		"      proto: tcp\n"
		"      backends:\n"
		"        - { address: 10.0.2.1, port: 8443 }\n";
	static struct td_st_pinned p;
	struct td_state_plan pl;
	struct td_config cfg = {}, c2 = {};

	CU_ASSERT_FATAL(td_st_load(&cfg) == 0);
	td_st_pin(&p, &cfg, 3);
	CU_ASSERT_FATAL(td_st_load_str(y, &c2) == 0);
	CU_ASSERT_FATAL(td_state_plan(&p.v, &c2, &pl) == 0);
	CU_ASSERT_EQUAL(pl.svc_ids[0], 1);         /* dns keeps id 1 */
	CU_ASSERT_EQUAL(pl.change[0], TD_SVC_SAME);
	CU_ASSERT_EQUAL(pl.change[1], TD_SVC_NEW);
	CU_ASSERT_EQUAL(pl.svc_ids[1], 2);         /* web's id 0 is not reused at once */
	CU_ASSERT_EQUAL(pl.n_gone, 1);
	CU_ASSERT_EQUAL(pl.gone[0], 0);            /* web removed: its conntrack is flushed */
	CU_ASSERT_EQUAL(pl.n_new, 1);
	CU_ASSERT_EQUAL(pl.generation, 4);
	td_state_plan_free(&pl);
	td_config_free(&c2);
	td_config_free(&cfg);
}

/* ---- runtime overrides ------------------------------------------------------------------ */

static int td_ovr(struct td_overrides *o, const struct td_config *cfg, int op, const char *svc,
		  const char *ep, __u16 w)
{
	union td_addr a;
	__u8 fam;
	__u16 port;
	char msg[TD_ADMIN_ERR_LEN];

	CU_ASSERT_FATAL(td_endpoint_parse(ep, &a, &fam, &port) == 0);
	return td_overrides_change(o, cfg, op, svc, &a, fam, port, w, msg, sizeof(msg));
}

static __u16 td_rt_weight(const struct td_config *rt, size_t svc, const char *ep, bool *found)
{
	union td_addr a;
	__u8 fam;
	__u16 port;
	size_t j;

	td_endpoint_parse(ep, &a, &fam, &port);
	*found = false;
	for (j = 0; j < rt->services[svc].n_backends; j++) {
		const struct td_backend_cfg *b = &rt->services[svc].backends[j];

		if (b->family == fam && b->port == port && td_addr_equal(&b->addr, &a)) {
			*found = true;
			return b->weight;
		}
	}
	return 0;
}

static void test_overrides(void)
{
	struct td_config cfg = {}, rt = {};
	struct td_overrides o = {};
	bool found;

	CU_ASSERT_FATAL(td_st_load(&cfg) == 0);
	/* errors change nothing */
	CU_ASSERT_EQUAL(td_ovr(&o, &cfg, TD_OVR_DRAIN, "nope", "10.0.1.11:8080", 0), -ENOENT);
	CU_ASSERT_EQUAL(td_ovr(&o, &cfg, TD_OVR_DRAIN, "web", "10.0.1.99:8080", 0), -ENOENT);
	CU_ASSERT_EQUAL(td_ovr(&o, &cfg, TD_OVR_ADD, "web", "10.0.1.11:8080", 1), -EEXIST);
	CU_ASSERT_EQUAL(td_ovr(&o, &cfg, TD_OVR_ADD, "web", "[fd00::1]:8080", 1), -EINVAL);
	CU_ASSERT_EQUAL(td_ovr(&o, &cfg, TD_OVR_ADD, "dns", "10.0.1.12:5353", 1), -EINVAL);
	CU_ASSERT_EQUAL(td_ovr(&o, &cfg, 0, "web", "10.0.1.11:8080", 0), -EALREADY);
	CU_ASSERT_EQUAL(o.n, 0);

	/* drain, add, remove */
	CU_ASSERT_EQUAL(td_ovr(&o, &cfg, TD_OVR_DRAIN, "web", "10.0.1.12:8080", 0), 0);
	CU_ASSERT_EQUAL(td_ovr(&o, &cfg, TD_OVR_DRAIN, "web", "10.0.1.12:8080", 0), -EALREADY);
	CU_ASSERT_EQUAL(td_ovr(&o, &cfg, TD_OVR_ADD, "web", "10.0.1.13:8080", 4), 0);
	CU_ASSERT_EQUAL(td_ovr(&o, &cfg, TD_OVR_REMOVE, "dns", "10.0.1.11:53", 0), 0);
	CU_ASSERT_EQUAL(td_ovr(&o, &cfg, TD_OVR_DRAIN, "dns", "10.0.1.11:53", 0), -ENOENT);
	CU_ASSERT_EQUAL(o.n, 3);
	CU_ASSERT_FATAL(td_state_runtime(&cfg, &o, NULL, NULL, &rt, NULL) == 0);
	CU_ASSERT_EQUAL(rt.n_services, 2);
	CU_ASSERT_EQUAL(rt.services[0].n_backends, 3);
	CU_ASSERT_EQUAL(td_rt_weight(&rt, 0, "10.0.1.11:8080", &found), 1);
	CU_ASSERT_EQUAL(td_rt_weight(&rt, 0, "10.0.1.12:8080", &found), 0);   /* drained */
	CU_ASSERT(found);
	CU_ASSERT_EQUAL(td_rt_weight(&rt, 0, "10.0.1.13:8080", &found), 4);   /* added */
	CU_ASSERT(found);
	CU_ASSERT_EQUAL(rt.services[1].n_backends, 0);                        /* removed */
	CU_ASSERT_EQUAL(cfg.services[1].n_backends, 1);                       /* file intact */
	CU_ASSERT_EQUAL(cfg.services[0].backends[1].weight, 2);
	td_config_free(&rt);

	/* undo: undrain, remove the added one, add the removed one back */
	CU_ASSERT_EQUAL(td_ovr(&o, &cfg, 0, "web", "10.0.1.12:8080", 0), 0);
	CU_ASSERT_EQUAL(td_ovr(&o, &cfg, TD_OVR_REMOVE, "web", "10.0.1.13:8080", 0), 0);
	CU_ASSERT_EQUAL(td_ovr(&o, &cfg, TD_OVR_ADD, "dns", "10.0.1.11:53", 1), 0);
	CU_ASSERT_EQUAL(o.n, 0);
	td_overrides_free(&o);
	td_config_free(&cfg);
}

static bool td_down_12(void *arg, const struct td_service_cfg *s, const struct td_backend_cfg *b)
{
	union td_addr a;
	__u8 fam;

	(void)s;
	td_addr_parse(arg, &a, &fam);
	return td_addr_equal(&b->addr, &a);
}

static void test_runtime_health(void)
{
	struct td_config cfg = {}, rt = {};
	struct td_overrides o = {};
	size_t failopen = 9;
	bool found;

	CU_ASSERT_FATAL(td_st_load(&cfg) == 0);
	/* a down backend leaves the ring */
	CU_ASSERT_FATAL(td_state_runtime(&cfg, &o, td_down_12, "10.0.1.12", &rt, &failopen) == 0);
	CU_ASSERT_EQUAL(failopen, 0);
	CU_ASSERT_EQUAL(td_rt_weight(&rt, 0, "10.0.1.11:8080", &found), 1);
	CU_ASSERT_EQUAL(td_rt_weight(&rt, 0, "10.0.1.12:8080", &found), 0);
	td_config_free(&rt);
	/* every backend down: fail open, the service keeps its weights */
	CU_ASSERT_FATAL(td_state_runtime(&cfg, &o, td_down_12, "10.0.1.11", &rt, &failopen) == 0);
	CU_ASSERT_EQUAL(failopen, 1);                                          /* dns */
	CU_ASSERT_EQUAL(td_rt_weight(&rt, 1, "10.0.1.11:53", &found), 1);
	CU_ASSERT_EQUAL(td_rt_weight(&rt, 0, "10.0.1.11:8080", &found), 0);   /* web has 12 */
	td_config_free(&rt);
	td_config_free(&cfg);
}

/* informational td_backends flags of the runtime view: drained, down (not when failing open), override */
static void test_runtime_flags(void)
{
	struct td_config cfg = {}, rt = {};
	struct td_overrides o = {};
	size_t failopen = 9;
	__u8 *fl = NULL;

	CU_ASSERT_FATAL(td_st_load(&cfg) == 0);
	CU_ASSERT_EQUAL(td_ovr(&o, &cfg, TD_OVR_DRAIN, "web", "10.0.1.12:8080", 0), 0);
	CU_ASSERT_EQUAL(td_ovr(&o, &cfg, TD_OVR_ADD, "web", "10.0.1.13:8080", 4), 0);
	CU_ASSERT_FATAL(td_state_runtime_flags(&cfg, &o, td_down_12, "10.0.1.11", &rt, &fl,
					       &failopen) == 0);
	CU_ASSERT_FATAL(fl != NULL);
	CU_ASSERT_EQUAL(failopen, 1);                         /* dns: its only backend is down */
	CU_ASSERT_EQUAL_FATAL(td_state_n_backends(&rt), 4);
	CU_ASSERT_EQUAL(fl[0], TD_BE_F_DOWN);                 /* web 10.0.1.11: out for health */
	CU_ASSERT_EQUAL(rt.services[0].backends[0].weight, 0);
	CU_ASSERT_EQUAL(fl[1], TD_BE_F_DRAINED);              /* web 10.0.1.12 */
	CU_ASSERT_EQUAL(fl[2], TD_BE_F_OVERRIDE);             /* web 10.0.1.13, added */
	CU_ASSERT_EQUAL(fl[3], 0);                            /* dns fails open: not marked down */
	CU_ASSERT_EQUAL(rt.services[1].backends[0].weight, 1);
	free(fl);
	fl = NULL;
	td_config_free(&rt);
	/* no overrides, nothing down: no flags; the plain call still works without them */
	td_overrides_free(&o);
	CU_ASSERT_FATAL(td_state_runtime_flags(&cfg, &o, NULL, NULL, &rt, &fl, NULL) == 0);
	CU_ASSERT(fl && !fl[0] && !fl[1] && !fl[2]);
	free(fl);
	td_config_free(&rt);
	td_config_free(&cfg);
}

/* ---- admin protocol ----------------------------------------------------------------------- */

static int td_req(const char *line, struct td_admin_req *r)
{
	char err[TD_ADMIN_ERR_LEN];
	int rc = td_admin_req_parse(line, strlen(line), r, err, sizeof(err));

	CU_ASSERT(rc == 0 || err[0] != '\0');   /* every refusal says why */
	return rc;
}

static void test_admin_parse(void)
{
	struct td_admin_req r;
	char *big, *line;

	CU_ASSERT_EQUAL(td_req("{\"cmd\":\"status\"}", &r), 0);
	CU_ASSERT_EQUAL(r.cmd, TD_ADM_STATUS);
	CU_ASSERT_EQUAL(td_req(" {\"cmd\":\"reload\"} \r", &r), 0);
	CU_ASSERT_EQUAL(r.cmd, TD_ADM_RELOAD);
	CU_ASSERT_EQUAL(td_req("{\"cmd\":\"drain\",\"service\":\"web\",\"backend\":\"10.0.1.11:8080\"}",
			       &r), 0);
	CU_ASSERT_EQUAL(r.cmd, TD_ADM_DRAIN);
	CU_ASSERT_STRING_EQUAL(r.service, "web");
	CU_ASSERT_EQUAL(r.port, 8080);
	CU_ASSERT_EQUAL(r.family, TD_AF_INET);
	CU_ASSERT_EQUAL(td_req("{\"cmd\":\"backend_add\",\"service\":\"w\",\"backend\":\"[fd00::1]:80\","
			       "\"weight\":7}", &r), 0);
	CU_ASSERT_EQUAL(r.weight, 7);
	CU_ASSERT_EQUAL(r.family, TD_AF_INET6);
	CU_ASSERT_EQUAL(td_req("{\"cmd\":\"backend_add\",\"service\":\"w\",\"backend\":\"1.2.3.4:80\"}",
			       &r), 0);
	CU_ASSERT_EQUAL(r.weight, 1);

	/* refused */
	CU_ASSERT_EQUAL(td_req("", &r), -EINVAL);
	CU_ASSERT_EQUAL(td_req("{\"cmd\":\"status\"", &r), -EINVAL);
	CU_ASSERT_EQUAL(td_req("{\"cmd\":\"status\"} x", &r), -EINVAL);
	CU_ASSERT_EQUAL(td_req("{\"cmd\":\"status\"}{}", &r), -EINVAL);
	CU_ASSERT_EQUAL(td_req("[\"status\"]", &r), -EINVAL);
	CU_ASSERT_EQUAL(td_req("{\"cmd\":\"reboot\"}", &r), -EINVAL);
	CU_ASSERT_EQUAL(td_req("{\"cmd\":7}", &r), -EINVAL);
	CU_ASSERT_EQUAL(td_req("{}", &r), -EINVAL);
	CU_ASSERT_EQUAL(td_req("{\"cmd\":\"status\",\"force\":true}", &r), -EINVAL);
	CU_ASSERT_EQUAL(td_req("{\"cmd\":\"drain\",\"backend\":\"1.2.3.4:80\"}", &r), -EINVAL);
	CU_ASSERT_EQUAL(td_req("{\"cmd\":\"drain\",\"service\":\"w\"}", &r), -EINVAL);
	CU_ASSERT_EQUAL(td_req("{\"cmd\":\"drain\",\"service\":\"w\",\"backend\":\"1.2.3.4\"}", &r),
			-EINVAL);
	CU_ASSERT_EQUAL(td_req("{\"cmd\":\"drain\",\"service\":\"w\",\"backend\":\"fd00::1:80\"}", &r),
			-EINVAL);
	CU_ASSERT_EQUAL(td_req("{\"cmd\":\"drain\",\"service\":\"w\",\"backend\":\"1.2.3.4:0\"}", &r),
			-EINVAL);
	CU_ASSERT_EQUAL(td_req("{\"cmd\":\"drain\",\"service\":\"w\",\"backend\":\"1.2.3.4:80\","
			       "\"weight\":1}", &r), -EINVAL);
	CU_ASSERT_EQUAL(td_req("{\"cmd\":\"backend_add\",\"service\":\"w\",\"backend\":\"1.2.3.4:80\","
			       "\"weight\":70000}", &r), -EINVAL);
	CU_ASSERT_EQUAL(td_req("{\"cmd\":\"backend_add\",\"service\":\"w\",\"backend\":\"1.2.3.4:80\","
			       "\"weight\":\"1\"}", &r), -EINVAL);
	CU_ASSERT_EQUAL(td_req("{\"cmd\":\"drain\",\"service\":\"0123456789012345678901234567890123\","
			       "\"backend\":\"1.2.3.4:80\"}", &r), -EINVAL);
	CU_ASSERT_EQUAL(r.cmd, TD_ADM_NONE);
	big = malloc(TD_ADMIN_MAX_REQUEST + 2);
	CU_ASSERT_FATAL(big != NULL);
	memset(big, ' ', TD_ADMIN_MAX_REQUEST + 1);
	big[TD_ADMIN_MAX_REQUEST + 1] = '\0';
	big[0] = '{';
	CU_ASSERT_EQUAL(td_req(big, &r), -EINVAL);
	free(big);

	/* format -> parse round trip */
	memset(&r, 0, sizeof(r));
	r.cmd = TD_ADM_BACKEND_ADD;
	snprintf(r.service, sizeof(r.service), "web");
	td_endpoint_parse("[fd00:1::5]:8443", &r.addr, &r.family, &r.port);
	r.weight = 3;
	line = td_admin_req_format(&r);
	CU_ASSERT_FATAL(line != NULL);
	CU_ASSERT_STRING_EQUAL(line, "{\"cmd\":\"backend_add\",\"service\":\"web\","
			       "\"backend\":\"[fd00:1::5]:8443\",\"weight\":3}");
	free(line);
}

int td_suite_admin(void)
{
	CU_pSuite s = CU_add_suite("admin", NULL, NULL);

	if (!s)
		return CU_get_error();
	if (!CU_add_test(s, "request parsing", test_admin_parse))
		return CU_get_error();
	return 0;
}

int td_suite_state(void)
{
	CU_pSuite s = CU_add_suite("state", NULL, NULL);

	if (!s)
		return CU_get_error();
	if (!CU_add_test(s, "fresh ids", test_state_fresh_ids) ||
	    !CU_add_test(s, "adopts ids", test_state_adopts_ids) ||
	    !CU_add_test(s, "changed service gets a new id", test_state_changed_service_new_id) ||
	    !CU_add_test(s, "out of ids", test_state_out_of_ids) ||
	    !CU_add_test(s, "td_ports", test_state_ports) ||
	    !CU_add_test(s, "diff: unchanged config rebuilds nothing", test_plan_unchanged) ||
	    !CU_add_test(s, "diff: only changed rings rebuilt", test_plan_changes) ||
	    !CU_add_test(s, "diff: services added and removed", test_plan_add_remove_service) ||
	    !CU_add_test(s, "runtime overrides", test_overrides) ||
	    !CU_add_test(s, "runtime view with health", test_runtime_health) ||
	    !CU_add_test(s, "runtime view flags: drained, down, override", test_runtime_flags))
		return CU_get_error();
	return 0;
}
