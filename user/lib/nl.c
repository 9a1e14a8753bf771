/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Next hops of backends from the kernel's routes and neighbour table (libnl-route-3). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <netlink/netlink.h>
#include <netlink/cache.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>
#include <netlink/route/nexthop.h>
#include <bpf/bpf.h>

#include "addr.h"
#include "log.h"
#include "nl.h"

/* how a missing neighbour is resolved; the first method that works on this kernel sticks */
enum td_nl_trigger { TD_TRIG_NTF_USE = 0, TD_TRIG_UDP = 1 };

struct td_nl {
	struct nl_sock *sk;
	struct nl_cache *links;
	struct nl_cache *routes;
	struct nl_cache *neighs;
	enum td_nl_trigger trigger;
	bool trigger_logged;
};

void td_nl_close(struct td_nl *nl)
{
	if (!nl)
		return;
	if (nl->neighs)
		nl_cache_free(nl->neighs);
	if (nl->routes)
		nl_cache_free(nl->routes);
	if (nl->links)
		nl_cache_free(nl->links);
	if (nl->sk)
		nl_socket_free(nl->sk);
	free(nl);
}

static int td_nl_errno(int nlerr)
{
	switch (-nlerr) {
	case NLE_NOMEM: return -ENOMEM;
	case NLE_PERM: return -EPERM;
	case NLE_OBJ_NOTFOUND: return -ENOENT;
	case NLE_EXIST: return -EEXIST;
	case NLE_INVAL: return -EINVAL;
	default: return -EIO;
	}
}

struct td_nl *td_nl_open(void)
{
	struct td_nl *nl;
	int err;

	nl = calloc(1, sizeof(*nl));
	if (!nl) {
		err = -ENOMEM;
		goto cleanup;
	}
	nl->sk = nl_socket_alloc();
	if (!nl->sk) {
		err = -ENOMEM;
		goto cleanup;
	}
	err = nl_connect(nl->sk, NETLINK_ROUTE);
	if (!err)
		err = rtnl_link_alloc_cache(nl->sk, AF_UNSPEC, &nl->links);
	if (!err)
		err = rtnl_route_alloc_cache(nl->sk, AF_UNSPEC, 0, &nl->routes);
	if (!err)
		err = rtnl_neigh_alloc_cache(nl->sk, &nl->neighs);
	if (err) {
		td_err("netlink: %s", nl_geterror(err));
		err = td_nl_errno(err);
		goto cleanup;
	}
	return nl;
cleanup:
	td_nl_close(nl);
	errno = -err;
	return NULL;
}

int td_nl_update(struct td_nl *nl)
{
	int err;

	err = nl_cache_refill(nl->sk, nl->links);
	if (!err)
		err = nl_cache_refill(nl->sk, nl->routes);
	if (!err)
		err = nl_cache_refill(nl->sk, nl->neighs);
	if (err) {
		td_warn("netlink refresh: %s", nl_geterror(err));
		return td_nl_errno(err);
	}
	return 0;
}

static int td_af(__u8 family)
{
	return family == TD_AF_INET6 ? AF_INET6 : AF_INET;
}

static size_t td_alen(__u8 family)
{
	return family == TD_AF_INET6 ? 16 : 4;
}

/* first plen bits of a and b equal */
static bool td_prefix_match(const __u8 *a, const __u8 *b, unsigned int plen)
{
	unsigned int bytes = plen / 8, bits = plen % 8;

	if (memcmp(a, b, bytes))
		return false;
	if (!bits)
		return true;
	return ((a[bytes] ^ b[bytes]) & (0xff << (8 - bits))) == 0;
}

struct td_route_pick {
	const __u8 *addr;
	int af;
	size_t alen;
	int best_plen;
	bool local;
	int ifindex;
	__u8 gw[16];
	bool has_gw;
};

static void td_route_visit(struct nl_object *obj, void *arg)
{
	struct rtnl_route *r = (struct rtnl_route *)obj;
	struct td_route_pick *p = arg;
	struct nl_addr *dst = rtnl_route_get_dst(r);
	struct rtnl_nexthop *nh;
	struct nl_addr *gw;
	unsigned int plen;

	if (rtnl_route_get_family(r) != p->af || !dst)
		return;
	plen = nl_addr_get_prefixlen(dst);
	if (plen > p->alen * 8)
		return;
	if (plen && (nl_addr_get_len(dst) != p->alen ||
		     !td_prefix_match(nl_addr_get_binary_addr(dst), p->addr, plen)))
		return;
	if (rtnl_route_get_table(r) == RT_TABLE_LOCAL) {
		if (rtnl_route_get_type(r) == RTN_LOCAL && plen == p->alen * 8)
			p->local = true;
		return;
	}
	if (rtnl_route_get_table(r) != RT_TABLE_MAIN || rtnl_route_get_type(r) != RTN_UNICAST)
		return;
	if ((int)plen <= p->best_plen || rtnl_route_get_nnexthops(r) < 1)
		return;
	nh = rtnl_route_nexthop_n(r, 0);
	if (!nh)
		return;
	p->best_plen = plen;
	p->ifindex = rtnl_route_nh_get_ifindex(nh);
	gw = rtnl_route_nh_get_gateway(nh);
	p->has_gw = gw && nl_addr_get_len(gw) == p->alen;
	if (p->has_gw)
		memcpy(p->gw, nl_addr_get_binary_addr(gw), p->alen);
}

/* Ask the kernel to resolve addr on ifindex; the result shows up in a later refresh. */
static void td_nl_trigger(struct td_nl *nl, int ifindex, const __u8 *addr, __u8 family)
{
	struct rtnl_neigh *n = NULL;
	struct nl_addr *dst = NULL;
	struct sockaddr_storage ss = {};
	union td_addr a = {};
	socklen_t sl;
	int err = -1, fd;

	if (nl->trigger == TD_TRIG_NTF_USE) {
		n = rtnl_neigh_alloc();
		dst = nl_addr_build(td_af(family), addr, td_alen(family));
		if (n && dst) {
			rtnl_neigh_set_ifindex(n, ifindex);
			rtnl_neigh_set_dst(n, dst);
			rtnl_neigh_set_state(n, NUD_NONE);
			rtnl_neigh_set_flags(n, NTF_USE);
			err = rtnl_neigh_add(nl->sk, n, NLM_F_CREATE | NLM_F_REPLACE);
		}
		if (dst)
			nl_addr_put(dst);
		if (n)
			rtnl_neigh_put(n);
		if (!err) {
			if (!nl->trigger_logged)
				td_info("neighbour resolution: netlink NTF_USE works on this kernel");
			nl->trigger_logged = true;
			return;
		}
		td_info("neighbour resolution: NTF_USE failed (%s), using UDP probes to port 9",
			nl_geterror(err));
		nl->trigger = TD_TRIG_UDP;
	}
	/* fallback: an empty datagram to the discard port makes the stack resolve the MAC */
	memcpy(&a, addr, family == TD_AF_INET6 ? 16 : 4);
	sl = td_sockaddr_from(&a, family, 9, &ss);
	fd = socket(td_af(family), SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return;
	if (!connect(fd, (struct sockaddr *)&ss, sl))
		(void)!send(fd, "", 0, 0);
	close(fd);
}

int td_nl_resolve(struct td_nl *nl, const union td_addr *addr, __u8 family, struct td_nexthop *nh)
{
	struct td_route_pick pick = {
		.addr = addr->bytes, .af = td_af(family), .alen = td_alen(family), .best_plen = -1,
	};
	struct rtnl_neigh *neigh = NULL;
	struct rtnl_link *link = NULL;
	struct nl_addr *hop = NULL, *ll, *mac;
	const __u8 *target;
	int state, err = 0;

	memset(nh, 0, sizeof(*nh));
	nl_cache_foreach(nl->routes, td_route_visit, &pick);
	if (pick.local) {
		err = -EADDRINUSE;
		goto cleanup;
	}
	if (pick.best_plen < 0 || pick.ifindex <= 0) {
		err = -ENETUNREACH;
		goto cleanup;
	}
	link = rtnl_link_get(nl->links, pick.ifindex);
	mac = link ? rtnl_link_get_addr(link) : NULL;
	if (!mac || nl_addr_get_len(mac) != 6) {
		err = -ENETUNREACH;   /* not an Ethernet link (lo, tun): nothing to cache */
		goto cleanup;
	}
	target = pick.has_gw ? pick.gw : addr->bytes;
	hop = nl_addr_build(pick.af, target, pick.alen);
	if (!hop) {
		err = -ENOMEM;
		goto cleanup;
	}
	neigh = rtnl_neigh_get(nl->neighs, pick.ifindex, hop);
	state = neigh ? rtnl_neigh_get_state(neigh) : NUD_NONE;
	ll = neigh ? rtnl_neigh_get_lladdr(neigh) : NULL;
	if (state & NUD_FAILED) {
		td_nl_trigger(nl, pick.ifindex, target, family);   /* try again next time */
		err = -EHOSTUNREACH;
		goto cleanup;
	}
	if (!(state & (NUD_PERMANENT | NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE)) || !ll || nl_addr_get_len(ll) != 6) {
		if (!(state & NUD_INCOMPLETE))
			td_nl_trigger(nl, pick.ifindex, target, family);
		err = -EAGAIN;
		goto cleanup;
	}
	nh->ifindex = pick.ifindex;
	memcpy(nh->dmac, nl_addr_get_binary_addr(ll), 6);
	memcpy(nh->smac, nl_addr_get_binary_addr(mac), 6);
cleanup:
	if (neigh)
		rtnl_neigh_put(neigh);
	if (hop)
		nl_addr_put(hop);
	if (link)
		rtnl_link_put(link);
	return err;
}

int td_nl_refresh(struct td_nl *nl, int backends_fd, const __u32 *ids, size_t n)
{
	char ep[TD_ENDPOINTSTRLEN];
	struct td_nexthop nh;
	struct td_backend be, nb;
	int err, resolved = 0;
	size_t i;

	err = td_nl_update(nl);
	if (err)
		return err;
	for (i = 0; i < n; i++) {
		if (bpf_map_lookup_elem(backends_fd, &ids[i], &be) || !(be.flags & TD_BE_F_ACTIVE))
			continue;
		err = td_nl_resolve(nl, &be.addr, be.family, &nh);
		nb = be;
		if (!err) {
			nb.flags |= TD_BE_F_NEXTHOP;
			nb.ifindex = nh.ifindex;
			memcpy(nb.dmac, nh.dmac, 6);
			memcpy(nb.smac, nh.smac, 6);
			resolved++;
		} else if (err != -EAGAIN) {
			/* FAILED, no route, local: the datapath falls back to bpf_fib_lookup */
			nb.flags &= ~TD_BE_F_NEXTHOP;
		}
		if (!memcmp(&nb, &be, sizeof(nb)))
			continue;
		td_endpoint_format(&be.addr, be.family, ntohs(be.port), ep, sizeof(ep));
		if (bpf_map_update_elem(backends_fd, &ids[i], &nb, BPF_EXIST)) {
			td_warn("backend %u (%s): cannot update next hop: %s", ids[i], ep,
				strerror(errno));
			continue;
		}
		if (nb.flags & TD_BE_F_NEXTHOP)
			td_info("backend %u (%s): next hop ifindex %u mac "
				"%02x:%02x:%02x:%02x:%02x:%02x", ids[i], ep, nb.ifindex,
				nb.dmac[0], nb.dmac[1], nb.dmac[2], nb.dmac[3], nb.dmac[4], nb.dmac[5]);
		else
			td_warn("backend %u (%s): next hop lost (%s)", ids[i], ep, strerror(-err));
	}
	return resolved;
}
