/* test_raft_basics.c: the pure pieces of raft/ (quorum math, the inflight
 * window, progress backtracking, the log, conf-change encoding) and the
 * node's contract at its edges (config validation, restore, the ready's
 * split of messages, bounds). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "raft/raft_int.h"
#include "raft_fixture.h"

static void test_raft_quorum_index_is_what_a_majority_holds(void **state)
{
    (void)state;
    uint64_t one[] = {7};
    assert_int_equal(raft__quorum_index(one, 1), 7);
    uint64_t three[] = {5, 9, 7};
    assert_int_equal(raft__quorum_index(three, 3), 7);
    uint64_t four[] = {1, 9, 7, 8};
    assert_int_equal(raft__quorum_index(four, 4), 7);
    uint64_t five[] = {0, 0, 3, 9, 9};
    assert_int_equal(raft__quorum_index(five, 5), 3);
}

static void test_raft_vote_result_needs_a_majority_of_voters(void **state)
{
    (void)state;
    assert_int_equal(raft__vote_result(1, 1, 0), RAFT_VOTE_WON);
    assert_int_equal(raft__vote_result(3, 1, 0), RAFT_VOTE_PENDING);
    assert_int_equal(raft__vote_result(3, 2, 1), RAFT_VOTE_WON);
    assert_int_equal(raft__vote_result(3, 1, 2), RAFT_VOTE_LOST);
    assert_int_equal(raft__vote_result(4, 2, 2), RAFT_VOTE_LOST);
    assert_int_equal(raft__vote_result(4, 2, 1), RAFT_VOTE_PENDING);
    assert_int_equal(raft__vote_result(5, 2, 2), RAFT_VOTE_PENDING);
}

static void test_raft_inflights_window_fills_and_frees_in_order(void **state)
{
    (void)state;
    uint64_t buf[3];
    struct raft_inflights in = {.buf = buf, .cap = 3};
    raft__inflights_add(&in, 10);
    raft__inflights_add(&in, 20);
    raft__inflights_add(&in, 30);
    assert_true(raft__inflights_full(&in));
    raft__inflights_free_le(&in, 15);
    assert_int_equal(in.count, 2);
    raft__inflights_add(&in, 40); /* wraps */
    assert_true(raft__inflights_full(&in));
    raft__inflights_free_first(&in);
    assert_int_equal(in.count, 2);
    raft__inflights_free_le(&in, 100);
    assert_int_equal(in.count, 0);
}

static void test_raft_progress_ignores_stale_rejections(void **state)
{
    (void)state;
    uint64_t buf[4];
    struct raft_progress pr = {.id = 2, .inflights = {.buf = buf, .cap = 4}};
    raft__progress_reset(&pr, 11);
    /* PROBE: only the answer to the probe at next - 1 = 10 counts. */
    assert_false(raft__progress_decrease(&pr, 9, 3));
    assert_true(raft__progress_decrease(&pr, 10, 3));
    assert_int_equal(pr.next, 4); /* the hint skipped back a whole term */
    assert_true(raft__progress_update(&pr, 5));
    raft__progress_become_replicate(&pr);
    assert_int_equal(pr.next, 6);
    /* REPLICATE: a rejection at or below match is stale. */
    assert_false(raft__progress_decrease(&pr, 5, 0));
    assert_true(raft__progress_decrease(&pr, 8, 0));
    assert_int_equal(pr.next, 6);
    raft__progress_become_snapshot(&pr, 50);
    assert_true(raft__progress_paused(&pr));
}

static void test_raft_log_finds_conflicts_by_term(void **state)
{
    (void)state;
    struct raft_log l;
    raft__log_init(&l, 2, 1);
    /* entries 3..8 with terms 1 1 2 2 4 4 */
    uint64_t terms[] = {1, 1, 2, 2, 4, 4};
    for (uint64_t i = 0; i < 6; i++) {
        struct raft_entry e = {.index = 3 + i, .term = terms[i]};
        assert_int_equal(raft__log_append(&l, &e, 1), MOOR_OK);
    }
    assert_int_equal(raft__log_last(&l), 8);
    assert_int_equal(raft__log_term(&l, 2), 1);
    assert_int_equal(raft__log_term(&l, 1), 0);
    assert_int_equal(raft__log_term(&l, 9), 0);
    assert_int_equal(raft__log_find_conflict_by_term(&l, 8, 3), 6);
    assert_int_equal(raft__log_find_conflict_by_term(&l, 8, 4), 8);
    assert_int_equal(raft__log_find_conflict_by_term(&l, 8, 0), 2);
    assert_int_equal(raft__log_find_conflict_by_term(&l, 100, 1), 4);
    assert_true(raft__log_up_to_date(&l, 4, 8));
    assert_false(raft__log_up_to_date(&l, 4, 7));
    assert_true(raft__log_up_to_date(&l, 5, 1));
    raft__log_truncate(&l, 6);
    assert_int_equal(raft__log_last(&l), 5);
    raft__log_compact(&l, 4);
    assert_int_equal(raft__log_first(&l), 5);
    assert_int_equal(raft__log_term(&l, 4), 1);
    raft__log_close(&l);
}

static void test_raft_conf_change_round_trips_and_applies(void **state)
{
    (void)state;
    struct raft_conf_change cc = {.type = RAFT_CONF_ADD_LEARNER,
                                  .node_id = 0x0102030405060708ull,
                                  .context = moor_slice_str("peer-urls")};
    struct moor_bytes *b = raft_conf_change_encode(&cc);
    assert_non_null(b);
    assert_int_equal(b->len, 10 + 9);
    struct raft_conf_change out;
    assert_int_equal(raft_conf_change_decode(moor_bytes_slice(b), &out),
                     MOOR_OK);
    assert_int_equal(out.type, cc.type);
    assert_true(out.node_id == cc.node_id);
    assert_true(moor_slice_eq(out.context, cc.context));
    b->data[0] = 9;
    assert_int_equal(raft_conf_change_decode(moor_bytes_slice(b), &out),
                     MOOR_EPROTO);
    moor_bytes_unref(b);
    assert_int_equal(
        raft_conf_change_decode(moor_slice_make("\x01\x01", 2), &out),
        MOOR_EPROTO);

    struct raft_conf c = {.n = 2, .members = {{.id = 1}, {.id = 2}}};
    struct raft_conf_change add = {.type = RAFT_CONF_ADD_LEARNER, .node_id = 3};
    assert_int_equal(raft_conf_apply(&c, &add), MOOR_OK);
    assert_int_equal(raft_conf_apply(&c, &add), MOOR_EINVAL);
    assert_true(raft_conf_find(&c, 3)->learner);
    assert_int_equal(raft_conf_voters(&c), 2);
    struct raft_conf_change promote = {.type = RAFT_CONF_PROMOTE, .node_id = 3};
    assert_int_equal(raft_conf_apply(&c, &promote), MOOR_OK);
    assert_int_equal(raft_conf_apply(&c, &promote), MOOR_EINVAL);
    struct raft_conf_change rm = {.type = RAFT_CONF_REMOVE, .node_id = 1};
    assert_int_equal(raft_conf_apply(&c, &rm), MOOR_OK);
    assert_int_equal(raft_conf_apply(&c, &rm), MOOR_EINVAL);
    assert_int_equal(c.n, 2);
    assert_null(raft_conf_find(&c, 1));
    assert_int_equal(raft_conf_voters(&c), 2);
}

static void test_raft_node_new_validates_config_and_restore(void **state)
{
    (void)state;
    struct raft_config c;
    raft_config_init(&c, 1);
    c.conf.n = 1;
    c.conf.members[0].id = 1;
    struct raft_node *n = NULL;
    struct raft_config bad = c;
    bad.election_ticks = bad.heartbeat_ticks;
    assert_int_equal(raft_node_new(&bad, NULL, &n), MOOR_EINVAL);
    bad = c;
    bad.conf.n = 2;
    bad.conf.members[1].id = 1;
    assert_int_equal(raft_node_new(&bad, NULL, &n), MOOR_EINVAL);
    /* Entries must follow the snapshot; commit must be in the log. */
    struct raft_entry ents[2] = {{.term = 1, .index = 1},
                                 {.term = 1, .index = 3}};
    struct raft_restore r = {.entries = ents, .n_entries = 2};
    assert_int_equal(raft_node_new(&c, &r, &n), MOOR_EINVAL);
    ents[1].index = 2;
    r.hard_state.commit = 3;
    assert_int_equal(raft_node_new(&c, &r, &n), MOOR_EINVAL);
    r.hard_state = (struct raft_hard_state){.term = 1, .vote = 1, .commit = 2};
    assert_int_equal(raft_node_new(&c, &r, &n), MOOR_OK);
    assert_int_equal(raft_node_last_index(n), 2);
    assert_int_equal(raft_node_commit_index(n), 2);
    assert_int_equal(raft_node_term(n), 1);
    /* The restored committed entries are handed out to apply again. */
    assert_true(raft_node_has_ready(n));
    struct raft_ready rd;
    assert_int_equal(raft_node_ready(n, &rd), MOOR_OK);
    assert_int_equal(rd.n_committed, 2);
    assert_int_equal(rd.n_entries, 0);
    raft_node_advance(n, &rd);
    assert_int_equal(raft_node_applied_index(n), 2);
    raft_node_free(n);
}

static void test_raft_ready_holds_acks_and_votes_until_durable(void **state)
{
    (void)state;
    struct raft_config c = fx_config();
    struct fx f;
    fx_init(&f, 3, &c);
    /* A candidate's vote requests follow its new term to disk. */
    struct raft_node *n1 = fx_node(&f, 1);
    raft_node_campaign(n1);
    struct raft_ready rd;
    assert_int_equal(raft_node_ready(n1, &rd), MOOR_OK);
    assert_int_equal(rd.n_msgs, 2); /* pre-votes change no state */
    assert_int_equal(rd.msgs[0].type, RAFT_MSG_PRE_VOTE);
    assert_false(rd.must_sync);
    raft_node_advance(n1, &rd);
    /* Grant the pre-votes by hand, then the real campaign. */
    struct raft_message grant = {
        .type = RAFT_MSG_PRE_VOTE_RESP, .from = 2, .to = 1, .term = 1};
    assert_int_equal(raft_node_step(n1, &grant), MOOR_OK);
    assert_int_equal(raft_node_role(n1), RAFT_CANDIDATE);
    assert_int_equal(raft_node_ready(n1, &rd), MOOR_OK);
    assert_true(rd.must_sync);
    assert_true(rd.hard_state_changed);
    assert_int_equal(rd.hard_state.vote, 1);
    assert_int_equal(rd.n_msgs, 0);
    assert_int_equal(rd.n_msgs_after, 2);
    assert_int_equal(rd.msgs_after[0].type, RAFT_MSG_VOTE);
    raft_node_advance(n1, &rd);
    /* A follower's ack of entries waits for them too. */
    struct raft_node *n2 = fx_node(&f, 2);
    struct raft_entry e = {.term = 1, .index = 1};
    struct raft_message app = {.type = RAFT_MSG_APPEND,
                               .from = 1,
                               .to = 2,
                               .term = 1,
                               .entries = &e,
                               .n_entries = 1};
    assert_int_equal(raft_node_step(n2, &app), MOOR_OK);
    assert_int_equal(raft_node_ready(n2, &rd), MOOR_OK);
    assert_int_equal(rd.n_entries, 1);
    assert_int_equal(rd.persist_index, 1);
    assert_int_equal(rd.persist_term, 1);
    assert_int_equal(rd.n_msgs_after, 1);
    assert_int_equal(rd.msgs_after[0].type, RAFT_MSG_APPEND_RESP);
    assert_int_equal(rd.msgs_after[0].index, 1);
    raft_node_advance(n2, &rd);
    assert_int_equal(raft_node_persisted_index(n2), 0);
    raft_node_persisted(n2, 1, 2); /* stale term: ignored */
    assert_int_equal(raft_node_persisted_index(n2), 0);
    raft_node_persisted(n2, 1, 1);
    assert_int_equal(raft_node_persisted_index(n2), 1);
    fx_close(&f);
}

static void test_raft_bounds_are_defined_errors(void **state)
{
    (void)state;
    struct raft_config c = fx_config();
    c.msg_entries_max = 2;
    c.uncommitted_bytes_max = 10;
    c.read_index_max = 1;
    struct fx f;
    fx_init(&f, 3, &c);
    fx_elect(&f, 1);
    fx_isolate(&f, 1);
    struct moor_bytes *v[3];
    for (int i = 0; i < 3; i++) {
        v[i] = moor_bytes_copy("123456", 6);
    }
    struct raft_node *n1 = fx_node(&f, 1);
    assert_int_equal(raft_node_propose(n1, v, 3), MOOR_ETOOBIG);
    assert_int_equal(raft_node_propose(n1, v, 1), MOOR_OK);
    /* 6 + 6 bytes would pass the 10-byte uncommitted bound. */
    assert_int_equal(raft_node_propose(n1, v + 1, 1), MOOR_EDROPPED);
    assert_int_equal(raft_node_read_index(n1, v[0]), MOOR_OK);
    assert_int_equal(raft_node_read_index(n1, v[1]), MOOR_EBUSY);
    assert_int_equal(raft_node_transfer_leader(n1, 1), MOOR_EINVAL);
    assert_int_equal(raft_node_transfer_leader(n1, 9), MOOR_EINVAL);
    assert_int_equal(raft_node_transfer_leader(fx_node(&f, 2), 3),
                     MOOR_ENOTLEADER);
    for (int i = 0; i < 3; i++) {
        moor_bytes_unref(v[i]);
    }
    fx_close(&f);
}

static void test_raft_single_member_commits_once_durable(void **state)
{
    (void)state;
    struct raft_config c = fx_config();
    struct fx f;
    fx_init(&f, 1, &c);
    f.m[1].slow_disk = true;
    fx_elect(&f, 1);
    assert_int_equal(raft_node_role(fx_node(&f, 1)), RAFT_LEADER);
    assert_int_equal(fx_propose(&f, 1, "solo"), MOOR_OK);
    assert_int_equal(raft_node_commit_index(fx_node(&f, 1)), 0);
    fx_flush(&f, 1);
    assert_int_equal(raft_node_commit_index(fx_node(&f, 1)), 2);
    assert_true(fx_applied(&f, 1, "solo"));
    struct moor_bytes *ctx = moor_bytes_copy("q", 1);
    assert_int_equal(raft_node_read_index(fx_node(&f, 1), ctx), MOOR_OK);
    moor_bytes_unref(ctx);
    fx_process(&f);
    assert_int_equal(f.m[1].n_reads, 1);
    assert_int_equal(f.m[1].read_index[0], 2);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raft_quorum_index_is_what_a_majority_holds),
        cmocka_unit_test(test_raft_vote_result_needs_a_majority_of_voters),
        cmocka_unit_test(test_raft_inflights_window_fills_and_frees_in_order),
        cmocka_unit_test(test_raft_progress_ignores_stale_rejections),
        cmocka_unit_test(test_raft_log_finds_conflicts_by_term),
        cmocka_unit_test(test_raft_conf_change_round_trips_and_applies),
        cmocka_unit_test(test_raft_node_new_validates_config_and_restore),
        cmocka_unit_test(test_raft_ready_holds_acks_and_votes_until_durable),
        cmocka_unit_test(test_raft_bounds_are_defined_errors),
        cmocka_unit_test(test_raft_single_member_commits_once_durable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
