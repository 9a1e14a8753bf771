/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Per-packet bench: kernel-reported prog-test-run durations for the floor, non-VIP, established and new flows. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "xdp_lb.skel.h"
#include "tc_lb.skel.h"
#include "xdp_pass.skel.h"
#include "fixtures.h"

#define TD_BENCH_BUDGET_S   60.0     /* wall time allowed for one per-call case, all rounds */
#define TD_BENCH_REDUCED    200000u  /* calls per round when the budget would be exceeded */
#define TD_BENCH_SAMPLE     4096u    /* every SAMPLE-th call's output is compared byte by byte */

/* one per-call case: input and expected output of call i of round r */
struct td_bench_case {
	const char *name;
	enum td_fx_prog prog;
	int verdict;
	void (*in)(__u32 r, __u32 i, struct td_pkt_spec *s);
	void (*out)(__u32 r, __u32 i, struct td_pkt_spec *s);
	bool clear_flows;                /* empty td_ct/td_rnat before each round */
};

static double td_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int td_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double td_median(double *v, int n)
{
	qsort(v, n, sizeof(*v), td_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- packets ----------------------------------------------------------------------------- */

static const struct td_pkt_spec td_b_est_in =
	PKT(V4, MAC_LB, MAC_CLIENT, CLIENT4, VIP4N, TCP, CPORT, TCP_PORT, 64, .tcp_flags = TD_PKT_TH_ACK);
static const struct td_pkt_spec td_b_est_out =
	PKT(V4, MAC_BE_A, MAC_LB_BE, CLIENT4, BE4A, TCP, CPORT, BE_TCP, 63, .tcp_flags = TD_PKT_TH_ACK);
static const struct td_pkt_spec td_b_nonvip =
	PKT(V4, MAC_LB, MAC_CLIENT, CLIENT4, OTHER4, TCP, CPORT, 443, 64, .tcp_flags = TD_PKT_TH_ACK);

static void td_b_nonvip_fn(__u32 r, __u32 i, struct td_pkt_spec *s)
{
	*s = td_b_nonvip;
}

static void td_b_est_in_fn(__u32 r, __u32 i, struct td_pkt_spec *s)
{
	*s = td_b_est_in;
}

static void td_b_est_out_fn(__u32 r, __u32 i, struct td_pkt_spec *s)
{
	*s = td_b_est_out;
}

/* new flow: source 11.0.0.0 + (round, call) so no two calls of the run share a flow */
static union td_addr td_b_src;

static void td_b_new_src(__u32 r, __u32 i, union td_addr *a)
{
	__u32 g = (r << 21) + i;

	memset(a, 0, sizeof(*a));
	a->bytes[0] = 11 + (g >> 24);
	a->bytes[1] = (g >> 16) & 0xff;
	a->bytes[2] = (g >> 8) & 0xff;
	a->bytes[3] = g & 0xff;
}

static void td_b_new_in_fn(__u32 r, __u32 i, struct td_pkt_spec *s)
{
	*s = (struct td_pkt_spec)PKT(V4, MAC_LB, MAC_CLIENT, CLIENT4, VIP4N, TCP, CPORT, TCP_PORT, 64);
	td_b_new_src(r, i, &td_b_src);
	s->src = &td_b_src;
}

static void td_b_new_out_fn(__u32 r, __u32 i, struct td_pkt_spec *s)
{
	*s = (struct td_pkt_spec)PKT(V4, MAC_BE_A, MAC_LB_BE, CLIENT4, BE4A, TCP, CPORT, BE_TCP, 63);
	td_b_new_src(r, i, &td_b_src);
	s->src = &td_b_src;
}

/* new DSR flow: one conntrack insert (no reverse entry) */
static void td_b_new_dsr_in_fn(__u32 r, __u32 i, struct td_pkt_spec *s)
{
	*s = (struct td_pkt_spec)PKT(V4, MAC_LB, MAC_CLIENT, CLIENT4, VIP4D, TCP, CPORT, TCP_PORT, 64);
	td_b_new_src(r, i, &td_b_src);
	s->src = &td_b_src;
}

static void td_b_new_dsr_out_fn(__u32 r, __u32 i, struct td_pkt_spec *s)
{
	*s = (struct td_pkt_spec)PKT(V4, MAC_BE_A, MAC_LB_BE, CLIENT4, VIP4D, TCP, CPORT, TCP_PORT, 64);
	td_b_new_src(r, i, &td_b_src);
	s->src = &td_b_src;
}

static void td_b_tc_in_fn(__u32 r, __u32 i, struct td_pkt_spec *s)
{
	*s = (struct td_pkt_spec)PKT(V4, MAC_CLIENT, MAC_LB, BE4A, CLIENT4, TCP, BE_TCP, CPORT, 64,
				     .tcp_flags = TD_PKT_TH_ACK);
}

static void td_b_tc_out_fn(__u32 r, __u32 i, struct td_pkt_spec *s)
{
	*s = (struct td_pkt_spec)PKT(V4, MAC_CLIENT, MAC_LB, VIP4N, CLIENT4, TCP, TCP_PORT, CPORT, 64,
				     .tcp_flags = TD_PKT_TH_ACK);
}

/* ---- runners ----------------------------------------------------------------------------- */

/* One call with repeat = n: the kernel's own per-iteration average; median over rounds. */
static int td_bench_repeat(const char *name, int prog_fd, const struct td_pkt_spec *spec,
			   __u32 n, int rounds, int want, double *ns_out)
{
	__u8 in[TD_PKT_MAX], out[TD_PKT_MAX];
	double v[16];
	__u32 len, verdict, dur;
	int in_len, r, err;

	in_len = td_pkt_build(spec, in, sizeof(in));
	if (in_len < 0)
		return in_len;
	if (rounds > 16)
		rounds = 16;
	for (r = 0; r < rounds; r++) {
		err = td_run_xdp(prog_fd, in, in_len, 1, n, out, &len, &verdict, &dur);
		if (err) {
			fprintf(stderr, "bench %s: test run: %s\n", name, strerror(-err));
			return err;
		}
		if ((int)verdict != want || (int)len != in_len || memcmp(in, out, in_len)) {
			fprintf(stderr, "bench %s: verdict %u (want %d) or output changed\n", name,
				verdict, want);
			return -EBADMSG;
		}
		v[r] = dur;
	}
	*ns_out = td_median(v, rounds);
	printf("bench: xdp_%s ns_per_pkt=%.1f calls=%u rounds=%d\n", name, *ns_out, n, rounds);
	return 0;
}

/* One round of `calls` separate runs with repeat = 1; mean kernel duration per packet. */
static int td_bench_round(struct td_env *env, const struct td_bench_case *c, __u32 r, __u32 calls,
			  double *mean)
{
	__u8 in[TD_PKT_MAX], out[TD_PKT_MAX], exp[TD_PKT_MAX];
	struct td_pkt_spec s;
	__u32 i, len, verdict, dur;
	int prog_fd, in_len, exp_len, err;
	double sum = 0;
	char why[160];

	prog_fd = c->prog == TD_FX_XDP ? bpf_program__fd(env->xdp->progs.td_xdp_lb) :
		  c->prog == TD_FX_TC ? bpf_program__fd(env->tc->progs.td_tc_lb) :
		  bpf_program__fd(env->pass->progs.td_xdp_pass);
	for (i = 0; i < calls; i++) {
		c->in(r, i, &s);
		in_len = td_pkt_build(&s, in, sizeof(in));
		if (in_len < 0)
			return in_len;
		if (c->prog != TD_FX_TC)
			err = td_run_xdp(prog_fd, in, in_len, env->ifindex_lo, 1, out, &len, &verdict, &dur);
		else
			err = td_run_tc(prog_fd, in, in_len, 1, out, &len, &verdict, &dur);
		if (err) {
			fprintf(stderr, "bench %s: call %u: %s\n", c->name, i, strerror(-err));
			return err;
		}
		if ((int)verdict != c->verdict) {
			fprintf(stderr, "bench %s: call %u: verdict %u, expected %d\n", c->name, i,
				verdict, c->verdict);
			return -EBADMSG;
		}
		if (i % TD_BENCH_SAMPLE == 0) {
			c->out(r, i, &s);
			exp_len = td_pkt_build(&s, exp, sizeof(exp));
			if (exp_len < 0 || (int)len != exp_len || memcmp(out, exp, exp_len)) {
				fprintf(stderr, "bench %s: call %u: output differs from the expected frame\n",
					c->name, i);
				return -EBADMSG;
			}
			if (td_pkt_verify(out, len, why, sizeof(why))) {
				fprintf(stderr, "bench %s: call %u: %s\n", c->name, i, why);
				return -EBADMSG;
			}
		}
		sum += dur;
	}
	*mean = sum / calls;
	return 0;
}

static int td_bench_calls(struct td_env *env, const struct td_bench_case *c, __u32 calls,
			  int rounds, double *ns_out)
{
	double v[16], t0, est;
	__u32 want = calls;
	bool reduced = false;
	int r, err;

	if (rounds > 16)
		rounds = 16;
	for (r = 0; r < rounds; r++) {
		if (c->clear_flows && (err = td_env_clear_flows(env)))
			return err;
		t0 = td_now();
		err = td_bench_round(env, c, r, calls, &v[r]);
		if (err)
			return err;
		est = (td_now() - t0) * rounds;
		/* first round tells whether all rounds fit the budget; if not, shrink and restart */
		if (r == 0 && !reduced && est > TD_BENCH_BUDGET_S && calls > TD_BENCH_REDUCED) {
			calls = TD_BENCH_REDUCED;
			reduced = true;
			r = -1;
		}
	}
	*ns_out = td_median(v, rounds);
	printf("bench: %s_%s ns_per_pkt=%.1f calls=%u rounds=%d%s\n",
	       c->prog == TD_FX_TC ? "tc" : "xdp", c->name, *ns_out, calls, rounds, reduced ? " (reduced from the requested calls: over the 60 s budget)" : "");
	(void)want;
	return 0;
}

int td_bench_run(struct td_env *env, __u32 calls, int rounds)
{
	static const struct td_bench_case est = {
		"established", TD_FX_XDP, XDP_TX, td_b_est_in_fn, td_b_est_out_fn, false };
	static const struct td_bench_case floor1 = {
		"floor_per_call", TD_FX_XDP_PASS, XDP_PASS, td_b_nonvip_fn, td_b_nonvip_fn, false };
	static const struct td_bench_case nf = {
		"new_flow", TD_FX_XDP, XDP_TX, td_b_new_in_fn, td_b_new_out_fn, true };
	static const struct td_bench_case nfd = {
		"new_flow_dsr", TD_FX_XDP, XDP_TX, td_b_new_dsr_in_fn, td_b_new_dsr_out_fn, true };
	static const struct td_bench_case tc = {
		"rnat", TD_FX_TC, TC_ACT_OK, td_b_tc_in_fn, td_b_tc_out_fn, false };
	__u8 buf[TD_PKT_MAX], out[TD_PKT_MAX];
	double floor_ns = 0, non_vip = 0, est_ns = 0, nf_ns = 0, tc_ns = 0, floor1_ns = 0;
	__u32 len, verdict;
	int err, n;

	err = td_env_reset(env);
	if (!err)
		err = td_fx_std_setup(env);
	if (err) {
		fprintf(stderr, "bench setup: %s\n", strerror(-err));
		return err;
	}
	err = td_bench_repeat("floor", bpf_program__fd(env->pass->progs.td_xdp_pass), &td_b_nonvip,
			      calls, rounds, XDP_PASS, &floor_ns);
	if (!err)
		err = td_bench_repeat("non_vip", bpf_program__fd(env->xdp->progs.td_xdp_lb),
				      &td_b_nonvip, calls, rounds, XDP_PASS, &non_vip);
	if (err)
		return err;

	/* establish the flow once, then time it */
	n = td_pkt_build(&td_b_est_in, buf, sizeof(buf));
	if (n < 0)
		return n;
	err = td_run_xdp(bpf_program__fd(env->xdp->progs.td_xdp_lb), buf, n, env->ifindex_lo, 1,
			 out, &len, &verdict, NULL);
	if (err || verdict != XDP_TX) {
		fprintf(stderr, "bench: first packet of the established flow: verdict %u\n", verdict);
		return err ? err : -EBADMSG;
	}
	/* the same repeat = 1 method on xdp_pass: what a single-run measurement costs by itself */
	err = td_bench_calls(env, &floor1, calls, rounds, &floor1_ns);
	if (!err)
		err = td_bench_calls(env, &est, calls, rounds, &est_ns);
	if (!err)
		err = td_bench_calls(env, &nf, calls, rounds, &nf_ns);
	if (!err)
		err = td_env_clear_flows(env);
	if (!err)
		err = td_bench_calls(env, &nfd, calls, rounds, &nf_ns);
	if (err)
		return err;
	printf("bench: xdp_established_vs_floor ratio=%.2f\n", floor_ns > 0 ? est_ns / floor_ns : 0);
	printf("bench: xdp_established_vs_floor_per_call ratio=%.2f\n",
	       floor1_ns > 0 ? est_ns / floor1_ns : 0);

	/* tc reverse NAT: the reply of the established flow (its td_rnat entry is re-created) */
	err = td_env_clear_flows(env);
	if (!err)
		err = td_run_xdp(bpf_program__fd(env->xdp->progs.td_xdp_lb), buf, n, env->ifindex_lo,
				 1, out, &len, &verdict, NULL);
	if (!err)
		err = td_bench_calls(env, &tc, calls, rounds, &tc_ns);
	return err;
}
