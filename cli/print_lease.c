/*
 * print_lease.c: the lease commands' responses.
 * The formats and the shared writer: print.c, print_int.h.
 */
#include <stdio.h>

#include "print_int.h"

/* ------------------------------------------------------------------------
 * Leases
 * ---------------------------------------------------------------------- */
int mc_print_lease_grant(struct moor_buf *out, const struct mc_print *p,
                         const Etcdserverpb__LeaseGrantResponse *r)
{
    struct mc__w w = {out, MOOR_OK};
    bool f = true;
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
        mc__ws(&w, "lease ");
        mc__wlease(&w, r->id);
        mc__wf(&w, " granted with TTL(%llds)\n", (long long)r->ttl);
        break;
    case MC_FMT_JSON:
        mc__ws(&w, "{");
        mc__j_header_fields(&w, &f, r->header);
        mc__ji64(&w, &f, "ID", r->id, false);
        mc__ji64(&w, &f, "TTL", r->ttl, false);
        mc__jkey(&w, &f, "Error");
        mc__wjstr(&w, r->error);
        mc__ws(&w, "}\n");
        break;
    case MC_FMT_FIELDS:
        mc__f_hdr(&w, r->header);
        mc__wf(&w, "\"ID\" : %lld\n\"TTL\" : %lld\n", (long long)r->id,
               (long long)r->ttl);
        break;
    default:
        return MOOR_EINVAL;
    }
    return w.rv;
}

int mc_print_lease_revoke(struct moor_buf *out, const struct mc_print *p,
                          int64_t id,
                          const Etcdserverpb__LeaseRevokeResponse *r)
{
    struct mc__w w = {out, MOOR_OK};
    bool f = true;
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
        mc__ws(&w, "lease ");
        mc__wlease(&w, id);
        mc__ws(&w, " revoked\n");
        break;
    case MC_FMT_JSON:
        mc__ws(&w, "{");
        mc__j_header(&w, &f, "header", r->header);
        mc__ws(&w, "}\n");
        break;
    case MC_FMT_FIELDS:
        mc__f_hdr(&w, r->header);
        break;
    default:
        return MOOR_EINVAL;
    }
    return w.rv;
}

int mc_print_lease_ttl(struct moor_buf *out, const struct mc_print *p,
                       bool keys,
                       const Etcdserverpb__LeaseTimeToLiveResponse *r)
{
    struct mc__w w = {out, MOOR_OK};
    bool f = true;
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
        mc__ws(&w, "lease ");
        mc__wlease(&w, r->id);
        if (r->grantedttl == 0 && r->ttl == -1) {
            mc__ws(&w, " already expired\n");
            break;
        }
        mc__wf(&w, " granted with TTL(%llds), remaining(%llds)",
               (long long)r->grantedttl, (long long)r->ttl);
        if (keys) {
            mc__ws(&w, ", attached keys([");
            for (size_t i = 0; i < r->n_keys; i++) {
                if (i > 0) {
                    mc__ws(&w, " ");
                }
                mc__wb(&w, r->keys[i].data, r->keys[i].len);
            }
            mc__ws(&w, "])");
        }
        mc__ws(&w, "\n");
        break;
    case MC_FMT_JSON:
        mc__ws(&w, "{");
        mc__j_header_fields(&w, &f, r->header);
        mc__ji64(&w, &f, "id", r->id, false);
        mc__ji64(&w, &f, "ttl", r->ttl, false);
        mc__ji64(&w, &f, "granted-ttl", r->grantedttl, false);
        mc__jkey(&w, &f, "keys");
        if (r->n_keys == 0) {
            mc__ws(&w, "null");
        } else {
            mc__ws(&w, "[");
            for (size_t i = 0; i < r->n_keys; i++) {
                if (i > 0) {
                    mc__ws(&w, ",");
                }
                mc__wb64(&w, r->keys[i]);
            }
            mc__ws(&w, "]");
        }
        mc__ws(&w, "}\n");
        break;
    case MC_FMT_FIELDS:
        mc__f_hdr(&w, r->header);
        mc__wf(&w, "\"ID\" : %lld\n\"TTL\" : %lld\n\"GrantedTTL\" : %lld\n",
               (long long)r->id, (long long)r->ttl, (long long)r->grantedttl);
        for (size_t i = 0; i < r->n_keys; i++) {
            mc__ws(&w, "\"Key\" : ");
            mc__wquote(&w, r->keys[i].data, r->keys[i].len);
            mc__ws(&w, "\n");
        }
        break;
    default:
        return MOOR_EINVAL;
    }
    return w.rv;
}

int mc_print_lease_list(struct moor_buf *out, const struct mc_print *p,
                        const Etcdserverpb__LeaseLeasesResponse *r)
{
    struct mc__w w = {out, MOOR_OK};
    bool f = true;
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
        mc__wf(&w, "found %zu leases\n", r->n_leases);
        for (size_t i = 0; i < r->n_leases; i++) {
            mc__wlease(&w, r->leases[i]->id);
            mc__ws(&w, "\n");
        }
        break;
    case MC_FMT_JSON:
        mc__ws(&w, "{");
        mc__j_header_fields(&w, &f, r->header);
        mc__jkey(&w, &f, "leases");
        mc__ws(&w, "[");
        for (size_t i = 0; i < r->n_leases; i++) {
            mc__wf(&w, "%s{\"id\":%lld}", i > 0 ? "," : "",
                   (long long)r->leases[i]->id);
        }
        mc__ws(&w, "]}\n");
        break;
    case MC_FMT_FIELDS:
        mc__f_hdr(&w, r->header);
        for (size_t i = 0; i < r->n_leases; i++) {
            mc__wf(&w, "\"ID\" : %lld\n", (long long)r->leases[i]->id);
        }
        break;
    default:
        return MOOR_EINVAL;
    }
    return w.rv;
}

int mc_print_keepalive(struct moor_buf *out, const struct mc_print *p,
                       const Etcdserverpb__LeaseKeepAliveResponse *r)
{
    struct mc__w w = {out, MOOR_OK};
    bool f = true;
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
        mc__ws(&w, "lease ");
        mc__wlease(&w, r->id);
        mc__wf(&w, " keepalived with TTL(%lld)\n", (long long)r->ttl);
        break;
    case MC_FMT_JSON:
        mc__ws(&w, "{");
        mc__j_header_fields(&w, &f, r->header);
        mc__ji64(&w, &f, "ID", r->id, false);
        mc__ji64(&w, &f, "TTL", r->ttl, false);
        mc__ws(&w, "}\n");
        break;
    case MC_FMT_FIELDS:
        mc__f_hdr(&w, r->header);
        mc__wf(&w, "\"ID\" : %lld\n\"TTL\" : %lld\n", (long long)r->id,
               (long long)r->ttl);
        break;
    default:
        return MOOR_EINVAL;
    }
    return w.rv;
}
