/*
 * cmd_auth.c: auth enable/disable, user and role management, with
 * etcdctl 3.4's arguments, texts and outputs (printer_simple.go's lines;
 * the responses as JSON; header plus lists as fields).
 *
 * Passwords: etcdctl prompts on the terminal when a password is not on the
 * command line. moorctl never prompts (a script must not hang): give
 * "name:password", --new-user-password, or --interactive=false and the
 * password as the first word on stdin (etcdctl's non-interactive form).
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>

#include "cli_int.h"

#define PATH_AUTH "/etcdserverpb.Auth/"

#define AO(f) offsetof(struct mc_auth_opts, f)
const struct mc_flag mc_auth_flags[] = {
    {"new-user-password", 0, MC_FLAG_STRING, AO(new_user_password),
     "Supply password from the command line flag"},
    {"interactive", 0, MC_FLAG_BOOL, AO(interactive),
     "Read password from stdin instead of interactive terminal"},
    {"detail", 0, MC_FLAG_BOOL, AO(detail),
     "Show permissions of roles granted to the user"},
    {"prefix", 0, MC_FLAG_BOOL, AO(prefix), "grant a prefix permission"},
    {"from-key", 0, MC_FLAG_BOOL, AO(from_key),
     "grant a permission of keys that are greater than or equal to the "
     "given key using byte compare"},
};
const size_t mc_auth_flags_len = MOOR_ARRAY_LEN(mc_auth_flags);

void mc_auth_opts_defaults(void *opts)
{
    struct mc_auth_opts *o = opts;
    o->interactive = true;
}

/* Runs one Auth call and prints a header-only response with line as the
 * simple format's text. */
static int simple_call(struct mc_ctx *c, const char *method, const void *req,
                       const ProtobufCMessageDescriptor *rdesc,
                       const char *line)
{
    char path[96];
    snprintf(path, sizeof(path), PATH_AUTH "%s", method);
    ProtobufCMessage *resp = NULL;
    int code = mc_call(c, path, req, rdesc, &resp);
    if (code != MC_EXIT_OK) {
        return code;
    }
    /* Every Auth response starts with its header (field 1). */
    Etcdserverpb__AuthRoleAddResponse *h = (void *)resp;
    struct moor_buf out;
    moor_buf_init(&out);
    code =
        mc_emit(c, mc_print_header_only(&out, &c->pr, line, h->header), &out);
    moor_buf_close(&out);
    mc_pb_free(resp);
    return code;
}

/* ------------------------------------------------------------------------
 * auth enable / disable
 * ---------------------------------------------------------------------- */
int mc_cmd_auth_enable(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    (void)opts;
    (void)args;
    if (n != 0) {
        return mc_fail(c, MC_EXIT_USAGE,
                       "auth enable command does not accept any arguments");
    }
    char e[MOOR_ERRMSG_SIZE];
    struct rpc_client *cl;
    if (mc_client(c, &cl, e) != MOOR_OK) {
        return mc_fail(c, MC_EXIT_ERROR, "%s", e);
    }
    /* etcdctl: when root lacks the root role, create the role, grant it,
     * and try again (a bounded number of times here). */
    for (int attempt = 0; attempt < 3; attempt++) {
        Etcdserverpb__AuthEnableRequest req =
            ETCDSERVERPB__AUTH_ENABLE_REQUEST__INIT;
        ProtobufCMessage *resp = NULL;
        int rv = mc_unary(c, cl, c->token, PATH_AUTH "AuthEnable", &req.base,
                          &etcdserverpb__auth_enable_response__descriptor,
                          &resp, NULL, e);
        mc_pb_free(resp);
        if (rv == MOOR_OK) {
            fprintf(c->out, "Authentication Enabled\n");
            return MC_EXIT_OK;
        }
        if (strcmp(e, "etcdserver: root user does not have root role") != 0) {
            break;
        }
        Etcdserverpb__AuthRoleAddRequest ra =
            ETCDSERVERPB__AUTH_ROLE_ADD_REQUEST__INIT;
        ra.name = (char *)(uintptr_t) "root";
        rv = mc_unary(c, cl, c->token, PATH_AUTH "RoleAdd", &ra.base,
                      &etcdserverpb__auth_role_add_response__descriptor, &resp,
                      NULL, e);
        mc_pb_free(resp);
        if (rv != MOOR_OK) {
            break;
        }
        Etcdserverpb__AuthUserGrantRoleRequest gr =
            ETCDSERVERPB__AUTH_USER_GRANT_ROLE_REQUEST__INIT;
        gr.user = (char *)(uintptr_t) "root";
        gr.role = (char *)(uintptr_t) "root";
        rv = mc_unary(c, cl, c->token, PATH_AUTH "UserGrantRole", &gr.base,
                      &etcdserverpb__auth_user_grant_role_response__descriptor,
                      &resp, NULL, e);
        mc_pb_free(resp);
        if (rv != MOOR_OK) {
            break;
        }
    }
    return mc_fail(c, MC_EXIT_ERROR, "%s", e);
}

int mc_cmd_auth_disable(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    (void)opts;
    (void)args;
    if (n != 0) {
        return mc_fail(c, MC_EXIT_USAGE,
                       "auth disable command does not accept any arguments");
    }
    Etcdserverpb__AuthDisableRequest req =
        ETCDSERVERPB__AUTH_DISABLE_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    int code = mc_call(c, PATH_AUTH "AuthDisable", &req,
                       &etcdserverpb__auth_disable_response__descriptor, &resp);
    mc_pb_free(resp);
    if (code == MC_EXIT_OK) {
        fprintf(c->out, "Authentication Disabled\n");
    }
    return code;
}

/* ------------------------------------------------------------------------
 * Passwords
 * ---------------------------------------------------------------------- */

/* The password for user add / passwd: from --new-user-password, else the
 * first word of stdin with --interactive=false. Writes into pw (size
 * bytes). Returns MC_EXIT_OK or a usage error already printed. */
static int password_of(struct mc_ctx *c, const struct mc_auth_opts *o, char *pw,
                       size_t size)
{
    if (o->new_user_password != NULL) {
        if (strlen(o->new_user_password) >= size) {
            return mc_fail(c, MC_EXIT_USAGE, "password too long");
        }
        strcpy(pw, o->new_user_password);
        return MC_EXIT_OK;
    }
    if (o->interactive) {
        return mc_fail(c, MC_EXIT_USAGE,
                       "no password: give name:password, --new-user-password, "
                       "or --interactive=false with the password on stdin "
                       "(moorctl does not prompt)");
    }
    /* fmt.Scanf("%s"): the first white-space-delimited word. */
    size_t len = 0;
    int ch;
    while ((ch = fgetc(c->in)) != EOF && isspace(ch)) {
    }
    while (ch != EOF && !isspace(ch) && len + 1 < size) {
        pw[len++] = (char)ch;
        ch = fgetc(c->in);
    }
    pw[len] = 0;
    return MC_EXIT_OK;
}

/* ------------------------------------------------------------------------
 * user
 * ---------------------------------------------------------------------- */
#define NAME_MAX_ 256
#define PASSWORD_MAX 1024

int mc_cmd_user_add(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    const struct mc_auth_opts *o = opts;
    if (n != 1) {
        return mc_fail(c, MC_EXIT_USAGE,
                       "user add command requires user name as its argument");
    }
    char name[NAME_MAX_], pw[PASSWORD_MAX];
    const char *colon = strchr(args[0], ':');
    size_t nlen = strlen(args[0]);
    int code = MC_EXIT_OK;
    if (o->new_user_password == NULL && colon != NULL) {
        nlen = (size_t)(colon - args[0]);
        if (nlen == 0) {
            return mc_fail(c, MC_EXIT_USAGE, "empty user name is not allowed");
        }
        if (strlen(colon + 1) >= sizeof(pw)) {
            return mc_fail(c, MC_EXIT_USAGE, "password too long");
        }
        strcpy(pw, colon + 1);
    } else {
        code = password_of(c, o, pw, sizeof(pw));
    }
    if (code != MC_EXIT_OK) {
        return code;
    }
    if (nlen >= sizeof(name)) {
        return mc_fail(c, MC_EXIT_USAGE, "user name too long");
    }
    memcpy(name, args[0], nlen);
    name[nlen] = 0;
    Etcdserverpb__AuthUserAddRequest req =
        ETCDSERVERPB__AUTH_USER_ADD_REQUEST__INIT;
    req.name = name;
    req.password = pw;
    char line[NAME_MAX_ + 32];
    snprintf(line, sizeof(line), "User %s created\n", name);
    return simple_call(c, "UserAdd", &req,
                       &etcdserverpb__auth_user_add_response__descriptor, line);
}

int mc_cmd_user_delete(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    (void)opts;
    if (n != 1) {
        return mc_fail(c, MC_EXIT_USAGE,
                       "user delete command requires user "
                       "name as its argument");
    }
    Etcdserverpb__AuthUserDeleteRequest req =
        ETCDSERVERPB__AUTH_USER_DELETE_REQUEST__INIT;
    req.name = args[0];
    char line[NAME_MAX_ + 32];
    snprintf(line, sizeof(line), "User %s deleted\n", args[0]);
    return simple_call(c, "UserDelete", &req,
                       &etcdserverpb__auth_user_delete_response__descriptor,
                       line);
}

int mc_cmd_user_passwd(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    const struct mc_auth_opts *o = opts;
    if (n != 1) {
        return mc_fail(c, MC_EXIT_USAGE,
                       "user passwd command requires user "
                       "name as its argument");
    }
    char pw[PASSWORD_MAX];
    int code = password_of(c, o, pw, sizeof(pw));
    if (code != MC_EXIT_OK) {
        return code;
    }
    Etcdserverpb__AuthUserChangePasswordRequest req =
        ETCDSERVERPB__AUTH_USER_CHANGE_PASSWORD_REQUEST__INIT;
    req.name = args[0];
    req.password = pw;
    return simple_call(
        c, "UserChangePassword", &req,
        &etcdserverpb__auth_user_change_password_response__descriptor,
        "Password updated\n");
}

static int user_role(struct mc_ctx *c, char **args, size_t n, bool grant)
{
    if (n != 2) {
        return mc_fail(c, MC_EXIT_USAGE, "%s",
                       grant ? "user grant command requires user name and "
                               "role name as its argument"
                             : "user revoke-role requires user name and role "
                               "name as its argument");
    }
    char line[2 * NAME_MAX_ + 64];
    snprintf(line, sizeof(line), "Role %s is %s user %s\n", args[1],
             grant ? "granted to" : "revoked from", args[0]);
    if (grant) {
        Etcdserverpb__AuthUserGrantRoleRequest req =
            ETCDSERVERPB__AUTH_USER_GRANT_ROLE_REQUEST__INIT;
        req.user = args[0];
        req.role = args[1];
        return simple_call(
            c, "UserGrantRole", &req,
            &etcdserverpb__auth_user_grant_role_response__descriptor, line);
    }
    Etcdserverpb__AuthUserRevokeRoleRequest req =
        ETCDSERVERPB__AUTH_USER_REVOKE_ROLE_REQUEST__INIT;
    req.name = args[0];
    req.role = args[1];
    return simple_call(
        c, "UserRevokeRole", &req,
        &etcdserverpb__auth_user_revoke_role_response__descriptor, line);
}

int mc_cmd_user_grant_role(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    (void)opts;
    return user_role(c, args, n, true);
}

int mc_cmd_user_revoke_role(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    (void)opts;
    return user_role(c, args, n, false);
}

/* Prints names (user list, role list, user get's roles): simple one per
 * line (or after "User: x\nRoles:"), JSON with key, fields as "Label" : "a"
 * "b". */
static int print_names(struct mc_ctx *c, const Etcdserverpb__ResponseHeader *h,
                       const char *key, const char *label, const char *user_get,
                       char **names, size_t n)
{
    struct moor_buf out, hb;
    moor_buf_init(&out);
    moor_buf_init(&hb);
    int rv = MOOR_OK;
    switch (c->pr.fmt) {
    case MC_FMT_SIMPLE:
        if (user_get != NULL) {
            rv = moor_buf_printf(&out, "User: %s\nRoles:", user_get);
        }
        for (size_t i = 0; i < n && rv == MOOR_OK; i++) {
            rv = moor_buf_printf(&out, user_get != NULL ? " %s" : "%s\n",
                                 names[i]);
        }
        if (rv == MOOR_OK && user_get != NULL) {
            rv = moor_buf_putc(&out, '\n');
        }
        break;
    case MC_FMT_JSON: {
        /* {"header":{...},"<key>":[...]}: the header as the printer of
         * header-only responses writes it, then the list. */
        struct mc_print p = c->pr;
        rv = mc_print_header_only(&hb, &p, "", h);
        if (rv == MOOR_OK && hb.len >= 2) {
            rv = moor_buf_append(&out, hb.ptr, hb.len - 2); /* drop "}\n" */
        }
        if (rv == MOOR_OK && n > 0) {
            rv = moor_buf_printf(&out, "%s\"%s\":[", out.len > 1 ? "," : "",
                                 key);
            for (size_t i = 0; i < n && rv == MOOR_OK; i++) {
                if (i > 0) {
                    rv = moor_buf_putc(&out, ',');
                }
                if (rv == MOOR_OK) {
                    rv =
                        mc_json_string_append(&out, names[i], strlen(names[i]));
                }
            }
            if (rv == MOOR_OK) {
                rv = moor_buf_putc(&out, ']');
            }
        }
        if (rv == MOOR_OK) {
            rv = moor_buf_append(&out, "}\n", 2);
        }
        break;
    }
    case MC_FMT_FIELDS:
        if (strcmp(key, "roles") != 0 || user_get != NULL) {
            /* etcdctl 3.4 has no fields printer for users. */
            rv = MOOR_EINVAL;
            break;
        }
        rv = mc_print_header_only(&out, &c->pr, "", h);
        if (rv == MOOR_OK) {
            rv = moor_buf_printf(&out, "\"%s\" :", label);
        }
        for (size_t i = 0; i < n && rv == MOOR_OK; i++) {
            rv = moor_buf_putc(&out, ' ');
            if (rv == MOOR_OK) {
                rv = mc_goquote_append(&out, names[i], strlen(names[i]));
            }
        }
        if (rv == MOOR_OK) {
            rv = moor_buf_putc(&out, '\n');
        }
        break;
    default:
        rv = MOOR_EINVAL;
    }
    moor_buf_close(&hb);
    int code = mc_emit(c, rv, &out);
    moor_buf_close(&out);
    return code;
}

static int role_get(struct mc_ctx *c, const char *role);

int mc_cmd_user_get(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    const struct mc_auth_opts *o = opts;
    if (n != 1) {
        return mc_fail(c, MC_EXIT_USAGE,
                       "user get command requires user name as its argument");
    }
    Etcdserverpb__AuthUserGetRequest req =
        ETCDSERVERPB__AUTH_USER_GET_REQUEST__INIT;
    req.name = args[0];
    Etcdserverpb__AuthUserGetResponse *resp = NULL;
    int code =
        mc_call(c, PATH_AUTH "UserGet", &req,
                &etcdserverpb__auth_user_get_response__descriptor, &resp);
    if (code != MC_EXIT_OK) {
        return code;
    }
    if (o->detail) {
        fprintf(c->out, "User: %s\n", args[0]);
        for (size_t i = 0; i < resp->n_roles && code == MC_EXIT_OK; i++) {
            fprintf(c->out, "\n");
            code = role_get(c, resp->roles[i]);
        }
    } else {
        code = print_names(c, resp->header, "roles", "Roles", args[0],
                           resp->roles, resp->n_roles);
    }
    mc_pb_free(resp);
    return code;
}

int mc_cmd_user_list(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    (void)opts;
    (void)args;
    (void)n;
    Etcdserverpb__AuthUserListRequest req =
        ETCDSERVERPB__AUTH_USER_LIST_REQUEST__INIT;
    Etcdserverpb__AuthUserListResponse *resp = NULL;
    int code =
        mc_call(c, PATH_AUTH "UserList", &req,
                &etcdserverpb__auth_user_list_response__descriptor, &resp);
    if (code == MC_EXIT_OK) {
        code = print_names(c, resp->header, "users", "Users", NULL, resp->users,
                           resp->n_users);
    }
    mc_pb_free(resp);
    return code;
}

/* ------------------------------------------------------------------------
 * role
 * ---------------------------------------------------------------------- */
static int role_named(struct mc_ctx *c, size_t n, const char *what)
{
    if (n != 1) {
        return mc_fail(c, MC_EXIT_USAGE,
                       "role %s command requires role name as its argument",
                       what);
    }
    return MC_EXIT_OK;
}

int mc_cmd_role_add(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    (void)opts;
    int code = role_named(c, n, "add");
    if (code != MC_EXIT_OK) {
        return code;
    }
    Etcdserverpb__AuthRoleAddRequest req =
        ETCDSERVERPB__AUTH_ROLE_ADD_REQUEST__INIT;
    req.name = args[0];
    char line[NAME_MAX_ + 32];
    snprintf(line, sizeof(line), "Role %s created\n", args[0]);
    return simple_call(c, "RoleAdd", &req,
                       &etcdserverpb__auth_role_add_response__descriptor, line);
}

int mc_cmd_role_delete(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    (void)opts;
    int code = role_named(c, n, "delete");
    if (code != MC_EXIT_OK) {
        return code;
    }
    Etcdserverpb__AuthRoleDeleteRequest req =
        ETCDSERVERPB__AUTH_ROLE_DELETE_REQUEST__INIT;
    req.role = args[0];
    char line[NAME_MAX_ + 32];
    snprintf(line, sizeof(line), "Role %s deleted\n", args[0]);
    return simple_call(c, "RoleDelete", &req,
                       &etcdserverpb__auth_role_delete_response__descriptor,
                       line);
}

int mc_cmd_role_list(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    (void)opts;
    (void)args;
    (void)n;
    Etcdserverpb__AuthRoleListRequest req =
        ETCDSERVERPB__AUTH_ROLE_LIST_REQUEST__INIT;
    Etcdserverpb__AuthRoleListResponse *resp = NULL;
    int code =
        mc_call(c, PATH_AUTH "RoleList", &req,
                &etcdserverpb__auth_role_list_response__descriptor, &resp);
    if (code == MC_EXIT_OK) {
        code = print_names(c, resp->header, "roles", "Roles", NULL, resp->roles,
                           resp->n_roles);
    }
    mc_pb_free(resp);
    return code;
}

static const char *perm_name(Authpb__Permission__Type t)
{
    return t == AUTHPB__PERMISSION__TYPE__WRITE       ? "WRITE"
           : t == AUTHPB__PERMISSION__TYPE__READWRITE ? "READWRITE"
                                                      : "READ";
}

/* Appends the strings and byte ranges given as (pointer, length) pairs,
 * ended by a NULL pointer; a length of SIZE_MAX means strlen. Keys may
 * hold any byte, NUL included, so they are never printed with %s. */
static int put(struct moor_buf *out, ...)
{
    va_list ap;
    int rv = MOOR_OK;
    va_start(ap, out);
    for (;;) {
        const void *p = va_arg(ap, const void *);
        if (p == NULL) {
            break;
        }
        size_t len = va_arg(ap, size_t);
        if (rv == MOOR_OK) {
            rv = moor_buf_append(out, p, len == SIZE_MAX ? strlen(p) : len);
        }
    }
    va_end(ap);
    return rv;
}

#define STR(s) (const void *)(s), SIZE_MAX
#define BIN(d) (const void *)(d).data, (d).len

/* One permission line of role get's simple format. */
static int perm_line(struct moor_buf *out, const Authpb__Permission *p)
{
    const ProtobufCBinaryData *k = &p->key, *e = &p->range_end;
    if (e->len == 0) {
        return put(out, STR("\t"), BIN(*k), STR("\n"), NULL);
    }
    int rv;
    if (e->len == 1 && e->data[0] == 0) {
        rv = put(out, STR("\t["), BIN(*k), STR(", <open ended>"), NULL);
    } else {
        rv = put(out, STR("\t["), BIN(*k), STR(", "), BIN(*e), STR(")"), NULL);
    }
    uint8_t end[1024];
    if (rv == MOOR_OK && k->len < sizeof(end)) {
        size_t n = mc_prefix_end(k->data, k->len, end);
        if (n == e->len && memcmp(end, e->data, n) == 0) {
            rv = put(out, STR(" (prefix "), BIN(*k), STR(")"), NULL);
        }
    }
    return rv == MOOR_OK ? moor_buf_putc(out, '\n') : rv;
}

static int print_role(struct moor_buf *out, const struct mc_print *p,
                      const char *role,
                      const Etcdserverpb__AuthRoleGetResponse *r)
{
    int rv = MOOR_OK;
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
        rv = moor_buf_printf(out, "Role %s\nKV Read:\n", role);
        for (size_t i = 0; i < r->n_perm && rv == MOOR_OK; i++) {
            if (r->perm[i]->permtype != AUTHPB__PERMISSION__TYPE__WRITE) {
                rv = perm_line(out, r->perm[i]);
            }
        }
        if (rv == MOOR_OK) {
            rv = moor_buf_printf(out, "KV Write:\n");
        }
        for (size_t i = 0; i < r->n_perm && rv == MOOR_OK; i++) {
            if (r->perm[i]->permtype != AUTHPB__PERMISSION__TYPE__READ) {
                rv = perm_line(out, r->perm[i]);
            }
        }
        return rv;
    case MC_FMT_JSON: {
        struct moor_buf hb;
        moor_buf_init(&hb);
        rv = mc_print_header_only(&hb, p, "", r->header);
        if (rv == MOOR_OK && hb.len >= 2) {
            rv = moor_buf_append(out, hb.ptr, hb.len - 2);
        }
        moor_buf_close(&hb);
        if (rv == MOOR_OK && r->n_perm > 0) {
            rv = moor_buf_printf(out, ",\"perm\":[");
        }
        for (size_t i = 0; i < r->n_perm && rv == MOOR_OK; i++) {
            const Authpb__Permission *pm = r->perm[i];
            bool first = true;
            rv = moor_buf_printf(out, "%s{", i > 0 ? "," : "");
            if (rv == MOOR_OK && pm->permtype != 0) {
                rv = moor_buf_printf(out, "\"permType\":%d", (int)pm->permtype);
                first = false;
            }
            if (rv == MOOR_OK && pm->key.len > 0) {
                rv = moor_buf_printf(out, "%s\"key\":\"", first ? "" : ",");
                rv = rv == MOOR_OK
                         ? mc_base64_append(out, pm->key.data, pm->key.len)
                         : rv;
                rv = rv == MOOR_OK ? moor_buf_putc(out, '"') : rv;
                first = false;
            }
            if (rv == MOOR_OK && pm->range_end.len > 0) {
                rv = moor_buf_printf(out, "%s\"range_end\":\"",
                                     first ? "" : ",");
                rv = rv == MOOR_OK ? mc_base64_append(out, pm->range_end.data,
                                                      pm->range_end.len)
                                   : rv;
                rv = rv == MOOR_OK ? moor_buf_putc(out, '"') : rv;
            }
            rv = rv == MOOR_OK ? moor_buf_putc(out, '}') : rv;
        }
        if (rv == MOOR_OK && r->n_perm > 0) {
            rv = moor_buf_putc(out, ']');
        }
        return rv == MOOR_OK ? moor_buf_append(out, "}\n", 2) : rv;
    }
    case MC_FMT_FIELDS:
        rv = mc_print_header_only(out, p, "", r->header);
        for (size_t i = 0; i < r->n_perm && rv == MOOR_OK; i++) {
            const Authpb__Permission *pm = r->perm[i];
            rv = moor_buf_printf(
                out, "\"PermType\" :  %s\n\"Key\" : ", perm_name(pm->permtype));
            rv = rv == MOOR_OK
                     ? mc_goquote_append(out, pm->key.data, pm->key.len)
                     : rv;
            rv = rv == MOOR_OK ? moor_buf_printf(out, "\n\"RangeEnd\" : ") : rv;
            rv = rv == MOOR_OK ? mc_goquote_append(out, pm->range_end.data,
                                                   pm->range_end.len)
                               : rv;
            rv = rv == MOOR_OK ? moor_buf_putc(out, '\n') : rv;
        }
        return rv;
    default:
        return MOOR_EINVAL;
    }
}

static int role_get(struct mc_ctx *c, const char *role)
{
    Etcdserverpb__AuthRoleGetRequest req =
        ETCDSERVERPB__AUTH_ROLE_GET_REQUEST__INIT;
    req.role = (char *)(uintptr_t)role;
    Etcdserverpb__AuthRoleGetResponse *resp = NULL;
    int code =
        mc_call(c, PATH_AUTH "RoleGet", &req,
                &etcdserverpb__auth_role_get_response__descriptor, &resp);
    if (code == MC_EXIT_OK) {
        struct moor_buf out;
        moor_buf_init(&out);
        code = mc_emit(c, print_role(&out, &c->pr, role, resp), &out);
        moor_buf_close(&out);
    }
    mc_pb_free(resp);
    return code;
}

int mc_cmd_role_get(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    (void)opts;
    int code = role_named(c, n, "get");
    return code != MC_EXIT_OK ? code : role_get(c, args[0]);
}

/* etcdctl's permRange: key and range end from the arguments and flags.
 * The key and end are arena strings; *end_len 0 means a single key. */
static int perm_range(struct mc_ctx *c, struct mc_arena *a,
                      const struct mc_auth_opts *o, char **args, size_t n,
                      ProtobufCBinaryData *key, ProtobufCBinaryData *end)
{
    size_t klen = strlen(args[0]);
    if (o->prefix && o->from_key) {
        return mc_fail(c, MC_EXIT_USAGE,
                       "--from-key and --prefix flags are mutually exclusive");
    }
    if (klen == 0) {
        /* The empty key is "\0"; with --prefix or --from-key, the whole
         * keyspace. */
        key->data = mc_arena_dup(a, "", 1);
        key->len = 1;
        if (o->prefix || o->from_key) {
            end->data = mc_arena_dup(a, "", 1);
            end->len = 1;
        }
        return key->data != NULL ? MC_EXIT_OK
                                 : mc_fail(c, MC_EXIT_ERROR, "out of memory");
    }
    key->data = (uint8_t *)args[0];
    key->len = klen;
    if (n == 2) {
        if (o->prefix || o->from_key) {
            return mc_fail(c, MC_EXIT_USAGE,
                           "unexpected endkey argument with --%s flag",
                           o->prefix ? "prefix" : "from-key");
        }
        end->data = (uint8_t *)args[1];
        end->len = strlen(args[1]);
    } else if (o->from_key) {
        end->data = mc_arena_dup(a, "", 1);
        end->len = 1;
    } else if (o->prefix) {
        uint8_t *e = mc_arena_alloc(a, klen + 1);
        if (e == NULL) {
            return mc_fail(c, MC_EXIT_ERROR, "out of memory");
        }
        end->len = mc_prefix_end(key->data, klen, e);
        end->data = e;
    }
    return MC_EXIT_OK;
}

int mc_cmd_role_grant(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    const struct mc_auth_opts *o = opts;
    if (n < 3 || n > 4) {
        return mc_fail(c, MC_EXIT_USAGE,
                       "role grant command requires role name, permission "
                       "type, and key [endkey] as its argument");
    }
    Authpb__Permission perm = AUTHPB__PERMISSION__INIT;
    if (strcasecmp(args[1], "read") == 0) {
        perm.permtype = AUTHPB__PERMISSION__TYPE__READ;
    } else if (strcasecmp(args[1], "write") == 0) {
        perm.permtype = AUTHPB__PERMISSION__TYPE__WRITE;
    } else if (strcasecmp(args[1], "readwrite") == 0) {
        perm.permtype = AUTHPB__PERMISSION__TYPE__READWRITE;
    } else {
        return mc_fail(c, MC_EXIT_USAGE, "invalid permission type: %s",
                       args[1]);
    }
    struct mc_arena a;
    mc_arena_init(&a);
    int code =
        perm_range(c, &a, o, args + 2, n - 2, &perm.key, &perm.range_end);
    if (code == MC_EXIT_OK) {
        Etcdserverpb__AuthRoleGrantPermissionRequest req =
            ETCDSERVERPB__AUTH_ROLE_GRANT_PERMISSION_REQUEST__INIT;
        req.name = args[0];
        req.perm = &perm;
        char line[NAME_MAX_ + 32];
        snprintf(line, sizeof(line), "Role %s updated\n", args[0]);
        code = simple_call(
            c, "RoleGrantPermission", &req,
            &etcdserverpb__auth_role_grant_permission_response__descriptor,
            line);
    }
    mc_arena_close(&a);
    return code;
}

int mc_cmd_role_revoke(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    const struct mc_auth_opts *o = opts;
    if (n < 2 || n > 3) {
        return mc_fail(c, MC_EXIT_USAGE,
                       "role revoke-permission command requires role name "
                       "and key [endkey] as its argument");
    }
    struct mc_arena a;
    mc_arena_init(&a);
    Etcdserverpb__AuthRoleRevokePermissionRequest req =
        ETCDSERVERPB__AUTH_ROLE_REVOKE_PERMISSION_REQUEST__INIT;
    req.role = args[0];
    int code = perm_range(c, &a, o, args + 1, n - 1, &req.key, &req.range_end);
    if (code == MC_EXIT_OK) {
        struct moor_buf line;
        moor_buf_init(&line);
        const ProtobufCBinaryData *k = &req.key, *e = &req.range_end;
        int rv;
        if (e->len == 0) {
            rv = put(&line, STR("Permission of key "), BIN(*k),
                     STR(" is revoked from role "), STR(args[0]), STR("\n"),
                     NULL);
        } else if (e->len == 1 && e->data[0] == 0) {
            rv = put(&line, STR("Permission of range ["), BIN(*k),
                     STR(", <open ended> is revoked from role "), STR(args[0]),
                     STR("\n"), NULL);
        } else {
            rv = put(&line, STR("Permission of range ["), BIN(*k), STR(", "),
                     BIN(*e), STR(") is revoked from role "), STR(args[0]),
                     STR("\n"), NULL);
        }
        if (rv == MOOR_OK) {
            rv = moor_buf_putc(&line, 0);
        }
        code =
            rv != MOOR_OK
                ? mc_fail(c, MC_EXIT_ERROR, "out of memory")
                : simple_call(
                      c, "RoleRevokePermission", &req,
                      &etcdserverpb__auth_role_revoke_permission_response__descriptor,
                      (const char *)line.ptr);
        moor_buf_close(&line);
    }
    mc_arena_close(&a);
    return code;
}
