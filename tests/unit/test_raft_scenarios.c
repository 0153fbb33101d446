/* test_raft_scenarios.c: the classic Raft cases walked through by hand on a
 * scripted cluster (raft_fixture.h). Run with MOOR_RAFT_TRACE=1 to see
 * every message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "raft_fixture.h"

static void test_raft_elects_a_leader_and_replicates(void **state)
{
    (void)state;
    struct raft_config c = fx_config();
    struct fx f;
    fx_init(&f, 3, &c);
    fx_elect(&f, 1);
    assert_int_equal(raft_node_role(fx_node(&f, 1)), RAFT_LEADER);
    assert_int_equal(raft_node_term(fx_node(&f, 1)), 1);
    assert_int_equal(raft_node_leader(fx_node(&f, 2)), 1);
    assert_int_equal(fx_propose(&f, 1, "a"), MOOR_OK);
    fx_stabilize(&f);
    for (uint64_t id = 1; id <= 3; id++) {
        assert_true(fx_applied(&f, id, "a"));
        assert_int_equal(raft_node_commit_index(fx_node(&f, id)), 2);
    }
    fx_close(&f);
}

static void test_raft_follower_forwards_proposals_and_fails_without_leader(
    void **state)
{
    (void)state;
    struct raft_config c = fx_config();
    struct fx f;
    fx_init(&f, 3, &c);
    assert_int_equal(fx_propose(&f, 2, "lost"), MOOR_ENOLEADER);
    fx_elect(&f, 1);
    assert_int_equal(fx_propose(&f, 2, "fwd"), MOOR_OK);
    fx_stabilize(&f);
    assert_true(fx_applied(&f, 1, "fwd"));
    assert_true(fx_applied(&f, 3, "fwd"));
    fx_close(&f);
}

/* Figure 8 of the Raft paper, with the planted bug as the control: the
 * same script commits and loses an entry when the leader counts replicas
 * of an earlier term's entry. Returns whether anyone applied "A". */
static bool figure8(uint32_t bugs, bool *diverged)
{
    struct raft_config c = fx_config();
    c.pre_vote = false;
    c.check_quorum = false;
    c.msg_entries_max = 1;
    c.test_bugs = bugs;
    struct fx f;
    fx_init(&f, 5, &c);
    /* (a) S1 leads term 1 and replicates "A" at index 2 to S2 only. */
    fx_elect(&f, 1);
    for (uint64_t id = 3; id <= 5; id++) {
        fx_cut(&f, 1, id);
    }
    assert_int_equal(fx_propose(&f, 1, "A"), MOOR_OK);
    fx_stabilize(&f);
    assert_int_equal(raft_node_last_index(fx_node(&f, 2)), 2);
    assert_int_equal(raft_node_commit_index(fx_node(&f, 1)), 1);
    /* (b) S5 wins term 2 with S3 and S4; its entry at 2 stays local. */
    fx_heal(&f);
    fx_cut(&f, 5, 1);
    fx_cut(&f, 5, 2);
    raft_node_campaign(fx_node(&f, 5));
    fx_deliver_type(&f, RAFT_MSG_VOTE);
    fx_deliver_type(&f, RAFT_MSG_VOTE_RESP);
    assert_int_equal(raft_node_role(fx_node(&f, 5)), RAFT_LEADER);
    assert_int_equal(raft_node_term(fx_node(&f, 5)), 2);
    assert_int_equal(raft_node_term_at(fx_node(&f, 5), 2), 2);
    fx_drop_all(&f);
    fx_crash(&f, 5);
    fx_heal(&f);
    /* (c) S1 restarts, loses term 2 (S3, S4 voted for S5), wins term 3. */
    fx_crash(&f, 1);
    fx_start(&f, 1);
    raft_node_campaign(fx_node(&f, 1));
    fx_deliver_type(&f, RAFT_MSG_VOTE);
    fx_deliver_type(&f, RAFT_MSG_VOTE_RESP);
    assert_int_not_equal(raft_node_role(fx_node(&f, 1)), RAFT_LEADER);
    raft_node_campaign(fx_node(&f, 1));
    fx_deliver_type(&f, RAFT_MSG_VOTE);
    fx_deliver_type(&f, RAFT_MSG_VOTE_RESP);
    assert_int_equal(raft_node_role(fx_node(&f, 1)), RAFT_LEADER);
    assert_int_equal(raft_node_term(fx_node(&f, 1)), 3);
    /* (d) S1 brings S3 up to index 2 (term 1) and S2 to its own term-3
     * entry: index 2 is now on S1, S2, S3, a majority. */
    assert_true(fx_deliver(&f, 1, 3, RAFT_MSG_APPEND));      /* rejected */
    assert_true(fx_deliver(&f, 3, 1, RAFT_MSG_APPEND_RESP)); /* probe 2 */
    assert_true(fx_deliver(&f, 1, 3, RAFT_MSG_APPEND));      /* [2:t1] */
    assert_true(fx_deliver(&f, 3, 1, RAFT_MSG_APPEND_RESP));
    assert_true(fx_deliver(&f, 1, 2, RAFT_MSG_APPEND)); /* [3:t3] */
    assert_true(fx_deliver(&f, 2, 1, RAFT_MSG_APPEND_RESP));
    assert_int_equal(raft_node_term_at(fx_node(&f, 3), 2), 1);
    assert_int_equal(raft_node_last_index(fx_node(&f, 3)), 2);
    /* §5.4.2: counting replicas commits only entries of the current term. */
    bool committed = raft_node_commit_index(fx_node(&f, 1)) >= 2;
    /* (e) S1 crashes; S5 returns and wins term 4 with S3 and S4, whose
     * last entries are of term 1: it overwrites index 2. */
    fx_drop_all(&f);
    fx_crash(&f, 1);
    fx_start(&f, 5);
    raft_node_campaign(fx_node(&f, 5)); /* term 3: S2, S3 voted for S1 */
    fx_stabilize(&f);
    raft_node_campaign(fx_node(&f, 5)); /* term 4 */
    fx_stabilize(&f);
    assert_int_equal(raft_node_role(fx_node(&f, 5)), RAFT_LEADER);
    assert_int_equal(fx_propose(&f, 5, "B"), MOOR_OK);
    fx_stabilize(&f);
    assert_true(fx_applied(&f, 3, "B"));
    bool any_a = false;
    for (uint64_t id = 1; id <= 5; id++) {
        any_a = any_a || fx_applied(&f, id, "A");
    }
    /* The entry "A" lost on S2..S5 while S1 applied it: divergence. */
    *diverged = fx_applied(&f, 1, "A") && !fx_applied(&f, 3, "A");
    assert_int_equal(committed, any_a);
    fx_close(&f);
    return any_a;
}

static void test_raft_figure8_old_term_entry_is_not_committed_by_counting(
    void **state)
{
    (void)state;
    bool diverged = false;
    assert_false(figure8(0, &diverged));
    assert_false(diverged);
    /* The control: with the rule broken, S1 applies "A", which the rest
     * of the cluster then overwrites (State Machine Safety is lost). */
    assert_true(figure8(RAFT_BUG_COMMIT_OLD_TERM, &diverged));
    assert_true(diverged);
}

static void test_raft_partitioned_old_leader_does_not_commit(void **state)
{
    (void)state;
    struct raft_config c = fx_config();
    struct fx f;
    fx_init(&f, 5, &c);
    fx_elect(&f, 1);
    for (uint64_t a = 1; a <= 2; a++) {
        for (uint64_t b = 3; b <= 5; b++) {
            fx_cut(&f, a, b);
        }
    }
    uint64_t commit = raft_node_commit_index(fx_node(&f, 1));
    assert_int_equal(fx_propose(&f, 1, "x"), MOOR_OK);
    fx_run(&f, 30);
    /* The minority never commits "x"; the majority elected a leader, and
     * the old one stepped down (check-quorum). */
    assert_int_equal(raft_node_commit_index(fx_node(&f, 1)), commit);
    uint64_t leader = fx_leader(&f);
    assert_true(leader >= 3);
    assert_int_not_equal(raft_node_role(fx_node(&f, 1)), RAFT_LEADER);
    assert_int_equal(fx_propose(&f, leader, "y"), MOOR_OK);
    fx_heal(&f);
    fx_run(&f, 5);
    for (uint64_t id = 1; id <= 5; id++) {
        assert_true(fx_applied(&f, id, "y"));
        assert_false(fx_applied(&f, id, "x"));
    }
    fx_close(&f);
}

/* A member cut off campaigns over and over. Returns the leader's term
 * after it rejoins. */
static uint64_t rejoin(bool pre_vote, uint64_t *cut_off_term)
{
    struct raft_config c = fx_config();
    c.pre_vote = pre_vote;
    struct fx f;
    fx_init(&f, 3, &c);
    fx_elect(&f, 1);
    fx_isolate(&f, 3);
    fx_run(&f, 100);
    *cut_off_term = raft_node_term(fx_node(&f, 3));
    assert_int_equal(raft_node_role(fx_node(&f, 1)), RAFT_LEADER);
    fx_heal(&f);
    fx_run(&f, 50);
    uint64_t leader = fx_leader(&f);
    assert_int_not_equal(leader, 0);
    uint64_t term = raft_node_term(fx_node(&f, leader));
    assert_int_equal(fx_propose(&f, leader, "after"), MOOR_OK);
    fx_stabilize(&f);
    assert_true(fx_applied(&f, 3, "after"));
    fx_close(&f);
    return term;
}

static void test_raft_prevote_stops_term_inflation_by_rejoining_member(
    void **state)
{
    (void)state;
    uint64_t cut_off_term = 0;
    /* With pre-vote the cut-off member never raises its term, and its
     * return disturbs nothing. */
    assert_int_equal(rejoin(true, &cut_off_term), 1);
    assert_int_equal(cut_off_term, 1);
    /* Without it, its term climbs and its return forces an election. */
    assert_true(rejoin(false, &cut_off_term) > 1);
    assert_true(cut_off_term > 1);
}

static void test_raft_check_quorum_leader_steps_down_when_cut_off(void **state)
{
    (void)state;
    struct raft_config c = fx_config();
    struct fx f;
    fx_init(&f, 3, &c);
    fx_elect(&f, 1);
    fx_isolate(&f, 1);
    /* The check runs every election timeout over who answered since the
     * last one, so the cut-off leader goes within two timeouts. */
    fx_run(&f, 9);
    assert_int_equal(raft_node_role(fx_node(&f, 1)), RAFT_LEADER);
    fx_run(&f, 11);
    assert_int_equal(raft_node_role(fx_node(&f, 1)), RAFT_FOLLOWER);
    fx_close(&f);
    /* Without check-quorum it would lead forever. */
    c.check_quorum = false;
    fx_init(&f, 3, &c);
    fx_elect(&f, 1);
    fx_isolate(&f, 1);
    fx_run(&f, 100);
    assert_int_equal(raft_node_role(fx_node(&f, 1)), RAFT_LEADER);
    fx_close(&f);
}

static void test_raft_member_in_lease_ignores_vote_requests(void **state)
{
    (void)state;
    struct raft_config c = fx_config();
    c.pre_vote = false;
    struct fx f;
    fx_init(&f, 3, &c);
    fx_elect(&f, 1);
    /* 3 campaigns at once: 2 heard from leader 1 just now and ignores it,
     * the leader too; nobody's term moves but the candidate's. */
    uint64_t answers = f.delivered[RAFT_MSG_VOTE_RESP];
    raft_node_campaign(fx_node(&f, 3));
    fx_deliver_type(&f, RAFT_MSG_VOTE);
    fx_deliver_type(&f, RAFT_MSG_VOTE_RESP);
    assert_int_equal(raft_node_term(fx_node(&f, 1)), 1);
    assert_int_equal(raft_node_term(fx_node(&f, 2)), 1);
    assert_int_equal(raft_node_term(fx_node(&f, 3)), 2);
    assert_int_equal(f.delivered[RAFT_MSG_VOTE_RESP], answers);
    assert_int_equal(raft_node_role(fx_node(&f, 1)), RAFT_LEADER);
    fx_close(&f);
}

static void test_raft_leader_transfer_during_partition_is_abandoned(
    void **state)
{
    (void)state;
    struct raft_config c = fx_config();
    struct fx f;
    fx_init(&f, 3, &c);
    fx_elect(&f, 1);
    fx_cut(&f, 1, 3);
    assert_int_equal(fx_propose(&f, 1, "p"), MOOR_OK);
    fx_stabilize(&f);
    assert_int_equal(raft_node_transfer_leader(fx_node(&f, 1), 3), MOOR_OK);
    assert_int_equal(raft_node_transferee(fx_node(&f, 1)), 3);
    /* While transferring the leader takes no proposals. */
    assert_int_equal(fx_propose(&f, 1, "q"), MOOR_EDROPPED);
    fx_run(&f, 10);
    /* 3 could not catch up: after an election timeout the leader gives
     * up and serves again. */
    assert_int_equal(raft_node_role(fx_node(&f, 1)), RAFT_LEADER);
    assert_int_equal(raft_node_transferee(fx_node(&f, 1)), 0);
    assert_int_equal(fx_propose(&f, 1, "r"), MOOR_OK);
    /* Healed, the transfer goes through: 3 catches up, gets TimeoutNow,
     * and wins at once. */
    fx_heal(&f);
    fx_stabilize(&f);
    assert_int_equal(raft_node_transfer_leader(fx_node(&f, 1), 3), MOOR_OK);
    fx_stabilize(&f);
    assert_int_equal(raft_node_role(fx_node(&f, 3)), RAFT_LEADER);
    assert_int_equal(raft_node_leader(fx_node(&f, 1)), 3);
    assert_true(f.delivered[RAFT_MSG_TIMEOUT_NOW] >= 1);
    assert_true(fx_applied(&f, 3, "p"));
    assert_true(fx_applied(&f, 3, "r"));
    fx_close(&f);
}

static void test_raft_removed_leader_steps_down_after_commit(void **state)
{
    (void)state;
    struct raft_config c = fx_config();
    struct fx f;
    fx_init(&f, 3, &c);
    fx_elect(&f, 1);
    struct raft_conf_change cc = {.type = RAFT_CONF_REMOVE, .node_id = 1};
    assert_int_equal(raft_node_propose_conf_change(fx_node(&f, 1), &cc),
                     MOOR_OK);
    /* The configuration takes effect when appended (thesis §4.1): the
     * leader leads a group it is not in until the change commits. */
    assert_null(raft_conf_find(raft_node_conf(fx_node(&f, 1)), 1));
    assert_int_equal(raft_node_role(fx_node(&f, 1)), RAFT_LEADER);
    fx_stabilize(&f);
    assert_int_equal(raft_node_role(fx_node(&f, 1)), RAFT_FOLLOWER);
    assert_null(raft_conf_find(raft_node_conf(fx_node(&f, 2)), 1));
    fx_run(&f, 30);
    uint64_t leader = fx_leader(&f);
    assert_true(leader == 2 || leader == 3);
    assert_int_equal(fx_propose(&f, leader, "without 1"), MOOR_OK);
    fx_stabilize(&f);
    assert_true(fx_applied(&f, 2, "without 1"));
    assert_true(fx_applied(&f, 3, "without 1"));
    fx_close(&f);
}

static void test_raft_conf_change_waits_for_previous_one(void **state)
{
    (void)state;
    struct raft_config c = fx_config();
    struct fx f;
    fx_init(&f, 3, &c);
    /* Before its first commit a new leader refuses changes (the fix to the
     * single-server change bug). */
    raft_node_campaign(fx_node(&f, 1));
    fx_deliver_type(&f, RAFT_MSG_PRE_VOTE);
    fx_deliver_type(&f, RAFT_MSG_PRE_VOTE_RESP);
    fx_deliver_type(&f, RAFT_MSG_VOTE);
    fx_deliver_type(&f, RAFT_MSG_VOTE_RESP);
    assert_int_equal(raft_node_role(fx_node(&f, 1)), RAFT_LEADER);
    struct raft_conf_change add = {.type = RAFT_CONF_ADD_LEARNER, .node_id = 4};
    assert_int_equal(raft_node_propose_conf_change(fx_node(&f, 1), &add),
                     MOOR_EBUSY);
    fx_stabilize(&f);
    assert_int_equal(raft_node_propose_conf_change(fx_node(&f, 1), &add),
                     MOOR_OK);
    struct raft_conf_change promote = {.type = RAFT_CONF_PROMOTE, .node_id = 4};
    assert_int_equal(raft_node_propose_conf_change(fx_node(&f, 1), &promote),
                     MOOR_EBUSY);
    /* The learner joins: it starts with the bootstrap configuration and
     * learns the rest from the log. */
    fx_start(&f, 4);
    fx_run(&f, 3);
    assert_true(raft_conf_find(raft_node_conf(fx_node(&f, 4)), 4)->learner);
    assert_int_equal(raft_node_propose_conf_change(fx_node(&f, 1), &promote),
                     MOOR_OK);
    fx_stabilize(&f);
    assert_false(raft_conf_find(raft_node_conf(fx_node(&f, 4)), 4)->learner);
    assert_int_equal(raft_conf_voters(raft_node_conf(fx_node(&f, 2))), 4);
    struct raft_conf_change bad = {.type = RAFT_CONF_PROMOTE, .node_id = 2};
    assert_int_equal(raft_node_propose_conf_change(fx_node(&f, 1), &bad),
                     MOOR_EINVAL);
    assert_int_equal(raft_node_propose_conf_change(fx_node(&f, 2), &bad),
                     MOOR_ENOTLEADER);
    fx_close(&f);
}

static void test_raft_snapshot_is_sent_to_lagging_follower(void **state)
{
    (void)state;
    struct raft_config c = fx_config();
    struct fx f;
    fx_init(&f, 3, &c);
    fx_elect(&f, 1);
    fx_isolate(&f, 3);
    char v[8];
    for (int i = 0; i < 5; i++) {
        snprintf(v, sizeof(v), "v%d", i);
        assert_int_equal(fx_propose(&f, 1, v), MOOR_OK);
    }
    fx_stabilize(&f);
    uint64_t applied = raft_node_applied_index(fx_node(&f, 1));
    assert_int_equal(applied, 6);
    struct moor_bytes *img = moor_bytes_copy("image", 5);
    assert_int_equal(raft_node_compact(fx_node(&f, 1), applied, img), MOOR_OK);
    moor_bytes_unref(img);
    assert_int_equal(raft_node_compact(fx_node(&f, 1), applied + 1, NULL),
                     MOOR_EINVAL);
    assert_int_equal(raft_node_first_index(fx_node(&f, 1)), applied + 1);
    fx_heal(&f);
    fx_run(&f, 3);
    assert_int_equal(f.delivered[RAFT_MSG_SNAPSHOT], 1);
    assert_int_equal(raft_node_snapshot(fx_node(&f, 3))->index, applied);
    assert_memory_equal(raft_node_snapshot(fx_node(&f, 3))->data->data, "image",
                        5);
    assert_int_equal(f.m[3].applied_index, applied);
    assert_int_equal(fx_propose(&f, 1, "z"), MOOR_OK);
    fx_stabilize(&f);
    assert_true(fx_applied(&f, 3, "z"));
    /* The snapshot and what followed survive a restart. */
    fx_crash(&f, 3);
    fx_start(&f, 3);
    assert_int_equal(raft_node_first_index(fx_node(&f, 3)), applied + 1);
    fx_run(&f, 2);
    assert_true(fx_applied(&f, 3, "z"));
    fx_close(&f);
}

static void test_raft_read_index_is_served_after_one_heartbeat_round(
    void **state)
{
    (void)state;
    struct raft_config c = fx_config();
    struct fx f;
    fx_init(&f, 3, &c);
    fx_elect(&f, 1);
    assert_int_equal(fx_propose(&f, 1, "w"), MOOR_OK);
    fx_stabilize(&f);
    uint64_t hb = f.delivered[RAFT_MSG_HEARTBEAT];
    struct moor_bytes *r1 = moor_bytes_copy("r1", 2);
    struct moor_bytes *r2 = moor_bytes_copy("r2", 2);
    struct moor_bytes *r3 = moor_bytes_copy("r3", 2);
    assert_int_equal(raft_node_read_index(fx_node(&f, 1), r1), MOOR_OK);
    assert_int_equal(raft_node_read_index(fx_node(&f, 1), r2), MOOR_OK);
    assert_int_equal(raft_node_read_index(fx_node(&f, 2), r3), MOOR_OK);
    fx_stabilize(&f);
    /* r1 and r2 shared one round (one heartbeat per follower); r3 came
     * through follower 2 and took the next. */
    assert_int_equal(f.m[1].n_reads, 2);
    assert_string_equal(f.m[1].read_ctx[0], "r1");
    assert_string_equal(f.m[1].read_ctx[1], "r2");
    assert_int_equal(f.m[1].read_index[0], 2);
    assert_int_equal(f.m[2].n_reads, 1);
    assert_string_equal(f.m[2].read_ctx[0], "r3");
    assert_int_equal(f.m[2].read_index[0], 2);
    assert_true(f.delivered[RAFT_MSG_HEARTBEAT] - hb <= 4);
    moor_bytes_unref(r1);
    moor_bytes_unref(r2);
    moor_bytes_unref(r3);
    fx_close(&f);
}

static void test_raft_read_index_on_deposed_leader_is_never_served(void **state)
{
    (void)state;
    struct raft_config c = fx_config();
    struct fx f;
    fx_init(&f, 3, &c);
    fx_elect(&f, 1);
    fx_isolate(&f, 1);
    struct moor_bytes *r = moor_bytes_copy("stale", 5);
    assert_int_equal(raft_node_read_index(fx_node(&f, 1), r), MOOR_OK);
    moor_bytes_unref(r);
    fx_run(&f, 30);
    uint64_t leader = fx_leader(&f);
    assert_true(leader == 2 || leader == 3);
    assert_int_equal(fx_propose(&f, leader, "newer"), MOOR_OK);
    fx_stabilize(&f);
    fx_heal(&f);
    fx_run(&f, 5);
    /* Had it answered, the read would miss "newer". */
    assert_int_equal(f.m[1].n_reads, 0);
    assert_true(fx_applied(&f, 1, "newer"));
    /* A follower without a leader refuses at once. */
    fx_isolate(&f, 2);
    fx_run(&f, 30);
    r = moor_bytes_copy("x", 1);
    assert_int_equal(raft_node_read_index(fx_node(&f, 2), r), MOOR_ENOLEADER);
    moor_bytes_unref(r);
    fx_close(&f);
}

static void test_raft_leader_appends_before_durable_but_counts_itself_after(
    void **state)
{
    (void)state;
    struct raft_config c = fx_config();
    struct fx f;
    fx_init(&f, 3, &c);
    fx_elect(&f, 1);
    fx_cut(&f, 1, 3);
    f.m[1].slow_disk = true;
    uint64_t commit = raft_node_commit_index(fx_node(&f, 1));
    assert_int_equal(fx_propose(&f, 1, "d"), MOOR_OK);
    /* The append left before the leader's own write completed ... */
    assert_true(fx_deliver(&f, 1, 2, RAFT_MSG_APPEND));
    assert_true(fx_deliver(&f, 2, 1, RAFT_MSG_APPEND_RESP));
    assert_int_equal(raft_node_last_index(fx_node(&f, 2)), commit + 1);
    /* ... but one follower is not a majority of three without the
     * leader's durable copy (thesis §10.2.1). */
    assert_int_equal(raft_node_commit_index(fx_node(&f, 1)), commit);
    fx_flush(&f, 1);
    assert_int_equal(raft_node_commit_index(fx_node(&f, 1)), commit + 1);
    assert_true(fx_applied(&f, 1, "d"));
    fx_close(&f);
}

static void test_raft_crash_loses_only_what_was_not_durable(void **state)
{
    (void)state;
    struct raft_config c = fx_config();
    struct fx f;
    fx_init(&f, 3, &c);
    fx_elect(&f, 1);
    fx_isolate(&f, 1);
    f.m[1].slow_disk = true;
    assert_int_equal(fx_propose(&f, 1, "gone"), MOOR_OK);
    uint64_t last = raft_node_last_index(fx_node(&f, 1));
    fx_crash(&f, 1);
    fx_drop_all(&f); /* its appends never got through */
    fx_heal(&f);
    f.m[1].slow_disk = false;
    fx_start(&f, 1);
    assert_int_equal(raft_node_last_index(fx_node(&f, 1)), last - 1);
    fx_run(&f, 30);
    uint64_t leader = fx_leader(&f);
    assert_int_not_equal(leader, 0);
    assert_int_equal(fx_propose(&f, leader, "kept"), MOOR_OK);
    fx_stabilize(&f);
    for (uint64_t id = 1; id <= 3; id++) {
        assert_true(fx_applied(&f, id, "kept"));
        assert_false(fx_applied(&f, id, "gone"));
    }
    fx_close(&f);
}

static void test_raft_leader_lost_hook_campaigns_early(void **state)
{
    (void)state;
    struct raft_config c = fx_config();
    struct fx f;
    fx_init(&f, 3, &c);
    fx_elect(&f, 1);
    fx_crash(&f, 1);
    /* Both followers see their connection to 1 reset. */
    raft_node_report_leader_lost(fx_node(&f, 2), 1);
    raft_node_report_leader_lost(fx_node(&f, 3), 1);
    assert_int_equal(raft_node_leader(fx_node(&f, 2)), 0);
    int ticks = 0;
    while (fx_leader(&f) == 0 && ticks < 100) {
        fx_run(&f, 1);
        ticks++;
    }
    /* Well under one election timeout (10 ticks), and with no split vote:
     * 2 (first by id among the survivors) campaigns first and wins the
     * one election, term 2; 3's turn comes two ticks later. */
    assert_true(ticks <= 3);
    assert_int_equal(fx_leader(&f), 2);
    assert_int_equal(raft_node_term(fx_node(&f, 2)), 2);
    assert_int_equal(raft_node_term(fx_node(&f, 3)), 2);
    fx_close(&f);
    /* A follower that alone thinks the leader is gone disturbs nothing:
     * the other still hears the leader and refuses the pre-vote. */
    fx_init(&f, 3, &c);
    fx_elect(&f, 1);
    raft_node_report_leader_lost(fx_node(&f, 2), 1);
    fx_run(&f, 8);
    assert_int_equal(fx_leader(&f), 1);
    assert_int_equal(raft_node_term(fx_node(&f, 1)), 1);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raft_elects_a_leader_and_replicates),
        cmocka_unit_test(
            test_raft_follower_forwards_proposals_and_fails_without_leader),
        cmocka_unit_test(
            test_raft_figure8_old_term_entry_is_not_committed_by_counting),
        cmocka_unit_test(test_raft_partitioned_old_leader_does_not_commit),
        cmocka_unit_test(
            test_raft_prevote_stops_term_inflation_by_rejoining_member),
        cmocka_unit_test(test_raft_check_quorum_leader_steps_down_when_cut_off),
        cmocka_unit_test(test_raft_member_in_lease_ignores_vote_requests),
        cmocka_unit_test(
            test_raft_leader_transfer_during_partition_is_abandoned),
        cmocka_unit_test(test_raft_removed_leader_steps_down_after_commit),
        cmocka_unit_test(test_raft_conf_change_waits_for_previous_one),
        cmocka_unit_test(test_raft_snapshot_is_sent_to_lagging_follower),
        cmocka_unit_test(
            test_raft_read_index_is_served_after_one_heartbeat_round),
        cmocka_unit_test(
            test_raft_read_index_on_deposed_leader_is_never_served),
        cmocka_unit_test(
            test_raft_leader_appends_before_durable_but_counts_itself_after),
        cmocka_unit_test(test_raft_crash_loses_only_what_was_not_durable),
        cmocka_unit_test(test_raft_leader_lost_hook_campaigns_early),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
