/*
 * run.c: moorctl's front door: the command table, global flags and the
 * environment, dispatch, help and version.
 */
#include <stdlib.h>

#include "cli_int.h"

#define MOORCTL_VERSION "0.1.0"
#define MOORCTL_API_VERSION "3.4"

static const struct mc_cmd cmds[] = {
    {"get", NULL, "get [options] <key> [range_end]",
     "Gets the key or a range of keys", mc_get_flags,
     sizeof(struct mc_get_opts), mc_cmd_get, NULL},
    {"put", NULL,
     "put [options] <key> <value> (<value> can also be given "
     "from stdin)",
     "Puts the given key into the store", mc_put_flags,
     sizeof(struct mc_put_opts), mc_cmd_put, NULL},
    {"del", NULL, "del [options] <key> [range_end]",
     "Removes the specified key or range of keys [key, range_end)",
     mc_del_flags, sizeof(struct mc_del_opts), mc_cmd_del, NULL},
    {"txn", NULL, "txn [options]",
     "Txn processes all the requests in one transaction", mc_txn_flags,
     sizeof(struct mc_txn_opts), mc_cmd_txn, NULL},
    {"compaction", NULL, "compaction [options] <revision>",
     "Compacts the event history in etcd", mc_compact_flags,
     sizeof(struct mc_compact_opts), mc_cmd_compaction, NULL},
    {"watch", NULL, "watch [options] [key or prefix] [range_end]",
     "Watches events stream on keys or prefixes", mc_watch_flags,
     sizeof(struct mc_watch_opts), mc_cmd_watch, NULL},
    {"lease", "grant", "lease grant <ttl>", "Creates leases", NULL,
     sizeof(struct mc_lease_opts), mc_cmd_lease_grant, NULL},
    {"lease", "revoke", "lease revoke <leaseID>", "Revokes leases", NULL,
     sizeof(struct mc_lease_opts), mc_cmd_lease_revoke, NULL},
    {"lease", "timetolive", "lease timetolive <leaseID> [options]",
     "Get lease information", mc_lease_flags, sizeof(struct mc_lease_opts),
     mc_cmd_lease_ttl, NULL},
    {"lease", "list", "lease list", "List all active leases", NULL,
     sizeof(struct mc_lease_opts), mc_cmd_lease_list, NULL},
    {"lease", "keep-alive", "lease keep-alive [options] <leaseID>",
     "Keeps leases alive (renew)", mc_lease_flags, sizeof(struct mc_lease_opts),
     mc_cmd_lease_keepalive, NULL},
    {"member", "list", "member list", "Lists all members in the cluster", NULL,
     sizeof(struct mc_member_opts), mc_cmd_member_list, NULL},
    {"member", "add", "member add <memberName> [options]",
     "Adds a member into the cluster", mc_member_flags,
     sizeof(struct mc_member_opts), mc_cmd_member_add, NULL},
    {"member", "remove", "member remove <memberID>",
     "Removes a member from the cluster", NULL, sizeof(struct mc_member_opts),
     mc_cmd_member_remove, NULL},
    {"member", "update", "member update <memberID> [options]",
     "Updates a member in the cluster", mc_member_flags,
     sizeof(struct mc_member_opts), mc_cmd_member_update, NULL},
    {"member", "promote", "member promote <memberID>",
     "Promotes a non-voting member in the cluster", NULL,
     sizeof(struct mc_member_opts), mc_cmd_member_promote, NULL},
    {"endpoint", "health", "endpoint health",
     "Checks the healthiness of endpoints specified in `--endpoints` flag",
     mc_ep_flags, sizeof(struct mc_ep_opts), mc_cmd_ep_health, NULL},
    {"endpoint", "status", "endpoint status",
     "Prints out the status of endpoints specified in `--endpoints` flag",
     mc_ep_flags, sizeof(struct mc_ep_opts), mc_cmd_ep_status, NULL},
    {"endpoint", "hashkv", "endpoint hashkv",
     "Prints the KV history hash for each endpoint in --endpoints", mc_ep_flags,
     sizeof(struct mc_ep_opts), mc_cmd_ep_hashkv, NULL},
    {"alarm", "list", "alarm list", "Lists all alarms", NULL,
     sizeof(struct mc_ep_opts), mc_cmd_alarm_list, NULL},
    {"alarm", "disarm", "alarm disarm", "Disarms all alarms", NULL,
     sizeof(struct mc_ep_opts), mc_cmd_alarm_disarm, NULL},
    {"defrag", NULL, "defrag [options]",
     "Defragments the storage of the etcd members with given endpoints",
     mc_ep_flags, sizeof(struct mc_ep_opts), mc_cmd_defrag, NULL},
    {"move-leader", NULL, "move-leader <transferee-member-id>",
     "Transfers leadership to another etcd cluster member.", NULL,
     sizeof(struct mc_ep_opts), mc_cmd_move_leader, NULL},
    {"snapshot", "status", "snapshot status <filename>",
     "Gets backend snapshot status of a given file (moor snapshot files)", NULL,
     sizeof(struct mc_ep_opts), mc_cmd_snapshot_status, NULL},
    {"snapshot", "save", "snapshot save <filename>",
     "Stores an etcd node backend snapshot to a given file", NULL,
     sizeof(struct mc_ep_opts), mc_cmd_snapshot_save, NULL},
    {"snapshot", "restore", "snapshot restore <filename> [options]",
     "Restores a moor snapshot file into a data directory for a new cluster",
     mc_restore_flags, sizeof(struct mc_restore_opts), mc_cmd_snapshot_restore,
     NULL},
    {"auth", "enable", "auth enable", "Enables authentication", NULL,
     sizeof(struct mc_auth_opts), mc_cmd_auth_enable, NULL},
    {"auth", "disable", "auth disable", "Disables authentication", NULL,
     sizeof(struct mc_auth_opts), mc_cmd_auth_disable, NULL},
    {"user", "add", "user add <user name or user:password> [options]",
     "Adds a new user", mc_auth_flags, sizeof(struct mc_auth_opts),
     mc_cmd_user_add, mc_auth_opts_defaults},
    {"user", "delete", "user delete <user name>", "Deletes a user", NULL,
     sizeof(struct mc_auth_opts), mc_cmd_user_delete, NULL},
    {"user", "get", "user get <user name> [options]",
     "Gets detailed information of a user", mc_auth_flags,
     sizeof(struct mc_auth_opts), mc_cmd_user_get, mc_auth_opts_defaults},
    {"user", "list", "user list", "Lists all users", NULL,
     sizeof(struct mc_auth_opts), mc_cmd_user_list, NULL},
    {"user", "passwd", "user passwd <user name> [options]",
     "Changes password of user", mc_auth_flags, sizeof(struct mc_auth_opts),
     mc_cmd_user_passwd, mc_auth_opts_defaults},
    {"user", "grant-role", "user grant-role <user name> <role name>",
     "Grants a role to a user", NULL, sizeof(struct mc_auth_opts),
     mc_cmd_user_grant_role, NULL},
    {"user", "revoke-role", "user revoke-role <user name> <role name>",
     "Revokes a role from a user", NULL, sizeof(struct mc_auth_opts),
     mc_cmd_user_revoke_role, NULL},
    {"role", "add", "role add <role name>", "Adds a new role", NULL,
     sizeof(struct mc_auth_opts), mc_cmd_role_add, NULL},
    {"role", "delete", "role delete <role name>", "Deletes a role", NULL,
     sizeof(struct mc_auth_opts), mc_cmd_role_delete, NULL},
    {"role", "get", "role get <role name>",
     "Gets detailed information of a role", NULL, sizeof(struct mc_auth_opts),
     mc_cmd_role_get, NULL},
    {"role", "list", "role list", "Lists all roles", NULL,
     sizeof(struct mc_auth_opts), mc_cmd_role_list, NULL},
    {"role", "grant-permission",
     "role grant-permission [options] <role name> <permission type> <key> "
     "[endkey]",
     "Grants a key to a role", mc_auth_flags, sizeof(struct mc_auth_opts),
     mc_cmd_role_grant, mc_auth_opts_defaults},
    {"role", "revoke-permission",
     "role revoke-permission <role name> <key> [endkey]",
     "Revokes a key from a role", mc_auth_flags, sizeof(struct mc_auth_opts),
     mc_cmd_role_revoke, mc_auth_opts_defaults},
};

/* Flag tables whose length the table above cannot name statically. */
static size_t cmd_flags_len(const struct mc_cmd *cmd)
{
    const struct
    {
        const struct mc_flag *t;
        const size_t *len;
    } lens[] = {
        {mc_get_flags, &mc_get_flags_len},
        {mc_put_flags, &mc_put_flags_len},
        {mc_del_flags, &mc_del_flags_len},
        {mc_txn_flags, &mc_txn_flags_len},
        {mc_compact_flags, &mc_compact_flags_len},
        {mc_watch_flags, &mc_watch_flags_len},
        {mc_lease_flags, &mc_lease_flags_len},
        {mc_member_flags, &mc_member_flags_len},
        {mc_ep_flags, &mc_ep_flags_len},
        {mc_auth_flags, &mc_auth_flags_len},
        {mc_restore_flags, &mc_restore_flags_len},
    };
    for (size_t i = 0; i < MOOR_ARRAY_LEN(lens); i++) {
        if (lens[i].t == cmd->flags) {
            return *lens[i].len;
        }
    }
    return 0;
}

static void usage_all(FILE *f)
{
    fprintf(f,
            "NAME:\n\tmoorctl - A simple command line client for moor "
            "and etcd3.\n\nUSAGE:\n\tmoorctl [flags] <command>\n\n"
            "VERSION:\n\t%s\n\nAPI VERSION:\n\t%s\n\nCOMMANDS:\n",
            MOORCTL_VERSION, MOORCTL_API_VERSION);
    for (size_t i = 0; i < MOOR_ARRAY_LEN(cmds); i++) {
        char name[64];
        snprintf(name, sizeof(name), "%s%s%s", cmds[i].name,
                 cmds[i].sub != NULL ? " " : "",
                 cmds[i].sub != NULL ? cmds[i].sub : "");
        fprintf(f, "\t%-24s%s\n", name, cmds[i].help);
    }
    fprintf(f, "\t%-24s%s\n", "version", "Prints the version of moorctl");
    fprintf(f, "\nOPTIONS:\n");
    for (size_t i = 0; i < mc_global_flags_len; i++) {
        const struct mc_flag *fl = &mc_global_flags[i];
        if (fl->shorthand != 0) {
            fprintf(f, "  -%c, --%-28s%s\n", fl->shorthand, fl->name, fl->help);
        } else {
            fprintf(f, "      --%-28s%s\n", fl->name, fl->help);
        }
    }
}

static void usage_cmd(FILE *f, const struct mc_cmd *cmd)
{
    fprintf(f, "NAME:\n\t%s%s%s - %s\n\nUSAGE:\n\tmoorctl %s\n", cmd->name,
            cmd->sub != NULL ? " " : "", cmd->sub != NULL ? cmd->sub : "",
            cmd->help, cmd->usage);
    size_t n = cmd_flags_len(cmd);
    if (n > 0) {
        fprintf(f, "\nOPTIONS:\n");
    }
    for (size_t i = 0; i < n; i++) {
        const struct mc_flag *fl = &cmd->flags[i];
        if (fl->shorthand != 0) {
            fprintf(f, "  -%c, --%-28s%s\n", fl->shorthand, fl->name, fl->help);
        } else {
            fprintf(f, "      --%-28s%s\n", fl->name, fl->help);
        }
    }
}

static bool global_takes_value(const char *arg)
{
    if (arg[0] != '-' || arg[1] == 0 || strchr(arg, '=') != NULL) {
        return false;
    }
    for (size_t i = 0; i < mc_global_flags_len; i++) {
        const struct mc_flag *f = &mc_global_flags[i];
        if (f->type == MC_FLAG_BOOL) {
            continue;
        }
        if ((arg[1] == '-' && strcmp(arg + 2, f->name) == 0) ||
            (arg[1] == f->shorthand && arg[2] == 0)) {
            return true;
        }
    }
    return false;
}

/* Finds the command words among argv (skipping flags and the values of
 * global flags): the first one or two non-flag words. */
static void find_words(int argc, char **argv, int *w1, int *w2)
{
    *w1 = *w2 = -1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            break;
        }
        if (argv[i][0] == '-' && argv[i][1] != 0) {
            if (global_takes_value(argv[i])) {
                i++;
            }
            continue;
        }
        if (*w1 < 0) {
            *w1 = i;
        } else {
            *w2 = i;
            return;
        }
    }
}

static const char *real_getenv(const char *name, void *arg)
{
    (void)arg;
    return getenv(name);
}

static int setup_tls(struct mc_ctx *c)
{
    struct mc_global *g = &c->g;
    c->use_tls = g->cacert != NULL || g->cert != NULL || g->key != NULL ||
                 g->insecure_skip_tls_verify || !g->insecure_transport;
    c->tls.ca_file = g->cacert;
    c->tls.cert_file = g->cert;
    c->tls.key_file = g->key;
    c->tls.insecure_skip_verify = g->insecure_skip_tls_verify;
    if ((g->cert == NULL) != (g->key == NULL)) {
        return mc_fail(c, MC_EXIT_USAGE,
                       "both --cert and --key must be given, or neither");
    }
    return MC_EXIT_OK;
}

/* Finds the command named by argv's first words. Sets *cmd (NULL for
 * "version" or no command at all) and the argv indexes of the command
 * words (-1 when absent). Returns MC_EXIT_OK or a usage error. */
static int find_command(struct mc_ctx *c, int argc, char **argv,
                        const struct mc_cmd **cmd, bool *version, int *w1,
                        int *w2)
{
    find_words(argc - 1, argv + 1, w1, w2);
    *w1 += *w1 >= 0 ? 1 : 0;
    *w2 += *w2 >= 0 ? 1 : 0;
    *cmd = NULL;
    *version = false;
    if (*w1 < 0) {
        return MC_EXIT_OK;
    }
    const char *name = argv[*w1];
    const char *sub = *w2 > 0 ? argv[*w2] : NULL;
    bool known = false;
    *version = strcmp(name, "version") == 0;
    for (size_t i = 0; i < MOOR_ARRAY_LEN(cmds) && *cmd == NULL; i++) {
        if (strcmp(cmds[i].name, name) != 0) {
            continue;
        }
        known = true;
        if (cmds[i].sub == NULL ||
            (sub != NULL && strcmp(cmds[i].sub, sub) == 0)) {
            *cmd = &cmds[i];
        }
    }
    if (*cmd != NULL || *version) {
        return MC_EXIT_OK;
    }
    if (known) {
        return mc_fail(c, MC_EXIT_USAGE,
                       "unknown or missing subcommand for \"%s\"", name);
    }
    return mc_fail(c, MC_EXIT_USAGE, "unknown command \"%s\" for \"moorctl\"",
                   name);
}

static int run(struct mc_ctx *c, int argc, char **argv)
{
    char e[MOOR_ERRMSG_SIZE];
    int rv = mc_global_from_env(&c->g, real_getenv, NULL, e);
    if (rv != MOOR_OK) {
        return mc_fail(c, MC_EXIT_USAGE, "%s", e);
    }
    const struct mc_cmd *cmd;
    bool version;
    int w1, w2;
    int code = find_command(c, argc, argv, &cmd, &version, &w1, &w2);
    if (code != MC_EXIT_OK) {
        return code;
    }

    /* Parse every argument except the command words. */
    char **rest = moor_malloc((size_t)argc * sizeof(char *));
    void *opts = moor_calloc(1, cmd != NULL ? cmd->opts_size : 1);
    char *pos[MC_ARGS_MAX];
    size_t npos = 0;
    if (rest == NULL || opts == NULL) {
        code = mc_fail(c, MC_EXIT_ERROR, "out of memory");
        goto out;
    }
    if (cmd != NULL && cmd->defaults != NULL) {
        cmd->defaults(opts);
    }
    int nrest = 0;
    for (int i = 1; i < argc; i++) {
        if (i != w1 && (i != w2 || cmd == NULL || cmd->sub == NULL)) {
            rest[nrest++] = argv[i];
        }
    }
    struct mc_flagset sets[2] = {
        {mc_global_flags, mc_global_flags_len, &c->g},
        {cmd != NULL ? cmd->flags : NULL, cmd != NULL ? cmd_flags_len(cmd) : 0,
         opts},
    };
    rv = mc_flags_parse_sep(nrest, rest, sets, 2, pos, &npos, &c->sep, e);
    if (rv == MOOR_ENOMEM) {
        code = mc_fail(c, MC_EXIT_ERROR, "out of memory");
        goto out;
    }
    if (rv != MOOR_OK) {
        code = mc_fail(c, MC_EXIT_USAGE, "%s", e);
        goto out;
    }
    if (c->g.help || (cmd == NULL && !version)) {
        if (cmd != NULL) {
            usage_cmd(c->out, cmd);
        } else {
            usage_all(c->g.help ? c->out : c->err);
        }
        code = c->g.help ? MC_EXIT_OK : MC_EXIT_USAGE;
        goto out;
    }
    if (version) {
        fprintf(c->out, "moorctl version: %s\nAPI version: %s\n",
                MOORCTL_VERSION, MOORCTL_API_VERSION);
        goto out;
    }
    if (mc_global_format(&c->g, &c->pr.fmt) != MOOR_OK) {
        code = mc_fail(c, MC_EXIT_USAGE, "unknown output format \"%s\"",
                       c->g.write_out);
        goto out;
    }
    c->pr.hex = c->g.hex;
    if (c->g.discovery_srv != NULL) {
        code = mc_fail(c, MC_EXIT_USAGE,
                       "--discovery-srv is not supported by moorctl; give "
                       "--endpoints");
        goto out;
    }
    if (c->g.user == NULL && c->g.password != NULL) {
        code = mc_fail(c, MC_EXIT_USAGE, "--password given without --user");
        goto out;
    }
    if (c->g.user != NULL && c->g.password == NULL &&
        strchr(c->g.user, ':') == NULL) {
        /* etcdctl prompts for it; moorctl never waits on a prompt. */
        code = mc_fail(c, MC_EXIT_USAGE,
                       "no password for user %s: give --user=name:password "
                       "or --password",
                       c->g.user);
        goto out;
    }
    code = setup_tls(c);
    if (code != MC_EXIT_OK) {
        goto out;
    }
    code = cmd->run(c, opts, pos, npos);
out:
    if (cmd != NULL && opts != NULL) {
        mc_opts_close(cmd->flags, cmd_flags_len(cmd), opts);
    }
    moor_free(opts);
    moor_free(rest);
    return code;
}

int mc_main(int argc, char **argv, FILE *in, FILE *out, FILE *err)
{
    struct mc_ctx c;
    memset(&c, 0, sizeof(c));
    c.in = in;
    c.out = out;
    c.err = err;
    if (mc_global_init(&c.g) != MOOR_OK) {
        fprintf(err, "Error: out of memory\n");
        return MC_EXIT_ERROR;
    }
    int code = run(&c, argc, argv);
    fflush(out);
    if (c.client != NULL) {
        mc_client_close(&c, c.client);
        c.client = NULL;
    }
    moor_free(c.token);
    if (c.loop_ready) {
        /* Let closing handles finish, then close the loop. */
        for (int i = 0; i < 1000 && uv_loop_alive(&c.loop); i++) {
            uv_run(&c.loop, UV_RUN_NOWAIT);
        }
        uv_loop_close(&c.loop);
    }
    mc_global_close(&c.g);
    return code;
}
