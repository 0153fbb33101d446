/* test_raft_figure2.c: one test per rule of the Raft paper's Figure 2,
 * stepping a single member with hand-made messages and reading its answers
 * from the ready. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "raft/raft.h"

/* Member 1 of {1, 2, 3}, restored with entries of the given terms at
 * indexes 1.., commit and term as given; pre-vote as this says. */
static bool g_pre_vote;

static struct raft_node *member(const uint64_t *terms, size_t n, uint64_t term,
                                uint64_t commit)
{
    struct raft_config c;
    raft_config_init(&c, 1);
    c.conf.n = 3;
    for (uint32_t i = 0; i < 3; i++) {
        c.conf.members[i].id = i + 1;
    }
    c.pre_vote = g_pre_vote;
    c.check_quorum = false;
    struct raft_entry ents[16];
    for (size_t i = 0; i < n; i++) {
        ents[i] = (struct raft_entry){.term = terms[i], .index = i + 1};
    }
    struct raft_restore r = {
        .hard_state = {.term = term, .commit = commit},
        .entries = ents,
        .n_entries = n,
        .applied = commit,
    };
    struct raft_node *node = NULL;
    assert_int_equal(raft_node_new(&c, &r, &node), MOOR_OK);
    return node;
}

/* Drains the node's readies, persisting at once; returns the last message
 * it sent (of any kind, now or after), copied without entries. */
static struct raft_message last_reply(struct raft_node *n)
{
    struct raft_message out = {0};
    while (raft_node_has_ready(n)) {
        struct raft_ready rd;
        assert_int_equal(raft_node_ready(n, &rd), MOOR_OK);
        if (rd.n_msgs > 0) {
            out = rd.msgs[rd.n_msgs - 1];
        }
        if (rd.n_msgs_after > 0) {
            out = rd.msgs_after[rd.n_msgs_after - 1];
        }
        out.entries = NULL;
        out.n_entries = 0;
        uint64_t pi = rd.persist_index;
        uint64_t pt = rd.persist_term;
        raft_node_advance(n, &rd);
        if (pi != 0) {
            raft_node_persisted(n, pi, pt);
        }
    }
    return out;
}

static struct raft_message append(uint64_t term, uint64_t prev,
                                  uint64_t prev_term, struct raft_entry *e,
                                  size_t n, uint64_t commit)
{
    struct raft_message m = {.type = RAFT_MSG_APPEND,
                             .from = 2,
                             .to = 1,
                             .term = term,
                             .index = prev,
                             .log_term = prev_term,
                             .entries = e,
                             .n_entries = n,
                             .commit = commit};
    return m;
}

/* AppendEntries 1: reply false if term < currentTerm (with the term, so a
 * stale leader learns it). */
static void test_raft_append_from_older_term_is_refused_with_our_term(
    void **state)
{
    (void)state;
    uint64_t terms[] = {1, 2};
    /* (Without pre-vote or check-quorum a stale append is simply dropped,
     * as in etcd: nothing else could have raised our term unseen.) */
    g_pre_vote = true;
    struct raft_node *n = member(terms, 2, 3, 0);
    g_pre_vote = false;
    last_reply(n);
    struct raft_message m = append(2, 2, 2, NULL, 0, 0);
    assert_int_equal(raft_node_step(n, &m), MOOR_OK);
    struct raft_message r = last_reply(n);
    assert_int_equal(r.type, RAFT_MSG_APPEND_RESP);
    assert_int_equal(r.term, 3);
    assert_int_equal(raft_node_term(n), 3);
    assert_int_equal(raft_node_leader(n), 0);
    raft_node_free(n);
}

/* AppendEntries 2: reply false if the log has no entry at prevLogIndex
 * whose term matches prevLogTerm. */
static void test_raft_append_without_matching_prev_is_rejected(void **state)
{
    (void)state;
    uint64_t terms[] = {1, 1, 2};
    struct raft_node *n = member(terms, 3, 2, 0);
    last_reply(n);
    struct raft_message m = append(3, 3, 3, NULL, 0, 0);
    raft_node_step(n, &m);
    struct raft_message r = last_reply(n);
    assert_true(r.reject);
    assert_int_equal(r.index, 3);
    /* The hint: our last index with a term <= 3 is 3, of term 2. */
    assert_int_equal(r.reject_hint, 3);
    assert_int_equal(r.log_term, 2);
    m = append(3, 7, 3, NULL, 0, 0);
    raft_node_step(n, &m);
    r = last_reply(n);
    assert_true(r.reject);
    assert_int_equal(r.reject_hint, 3);
    raft_node_free(n);
}

/* AppendEntries 3 and 4: delete a conflicting entry and all that follow
 * it; append new entries not already in the log (entries already there
 * are kept). */
static void test_raft_append_truncates_conflicts_and_keeps_matches(void **state)
{
    (void)state;
    uint64_t terms[] = {1, 1, 2, 2};
    struct raft_node *n = member(terms, 4, 2, 0);
    last_reply(n);
    struct raft_entry e[3] = {{.term = 1, .index = 2},
                              {.term = 3, .index = 3},
                              {.term = 3, .index = 4}};
    struct raft_message m = append(3, 1, 1, e, 3, 0);
    raft_node_step(n, &m);
    struct raft_ready rd;
    assert_int_equal(raft_node_ready(n, &rd), MOOR_OK);
    /* Storage is told to rewrite from index 3 (index 2 matched). */
    assert_int_equal(rd.n_entries, 2);
    assert_int_equal(rd.entries[0].index, 3);
    assert_int_equal(rd.entries[0].term, 3);
    raft_node_advance(n, &rd);
    assert_int_equal(raft_node_last_index(n), 4);
    assert_int_equal(raft_node_term_at(n, 4), 3);
    /* A stale, shorter append does not truncate what matches. */
    m = append(3, 1, 1, e, 1, 0);
    raft_node_step(n, &m);
    assert_int_equal(raft_node_last_index(n), 4);
    raft_node_free(n);
}

/* AppendEntries 5: commitIndex = min(leaderCommit, index of last new
 * entry); and "if commitIndex > lastApplied, apply". */
static void test_raft_follower_commit_is_bounded_by_last_new_entry(void **state)
{
    (void)state;
    uint64_t terms[] = {1};
    struct raft_node *n = member(terms, 1, 1, 0);
    last_reply(n);
    struct raft_entry e[2] = {{.term = 1, .index = 2}, {.term = 1, .index = 3}};
    struct raft_message m = append(1, 1, 1, e, 2, 9);
    raft_node_step(n, &m);
    assert_int_equal(raft_node_commit_index(n), 3);
    struct raft_message r = last_reply(n);
    assert_int_equal(r.index, 3);
    assert_int_equal(raft_node_applied_index(n), 3);
    /* A heartbeat carrying a commit beyond the log moves it no further. */
    struct raft_message hb = {
        .type = RAFT_MSG_HEARTBEAT, .from = 2, .to = 1, .term = 1, .commit = 2};
    raft_node_step(n, &hb);
    assert_int_equal(raft_node_commit_index(n), 3);
    raft_node_free(n);
}

/* RequestVote: grant if votedFor is null or the candidate, and the
 * candidate's log is at least as up to date (§5.4.1); one vote per term. */
static void test_raft_vote_granted_once_per_term_to_up_to_date_log(void **state)
{
    (void)state;
    uint64_t terms[] = {1, 2};
    struct raft_node *n = member(terms, 2, 2, 0);
    last_reply(n);
    struct raft_message v = {.type = RAFT_MSG_VOTE,
                             .from = 2,
                             .to = 1,
                             .term = 3,
                             .index = 5,
                             .log_term = 1};
    raft_node_step(n, &v); /* older last term: refused */
    struct raft_message r = last_reply(n);
    assert_int_equal(r.type, RAFT_MSG_VOTE_RESP);
    assert_true(r.reject);
    assert_int_equal(raft_node_term(n), 3);
    v.index = 1;
    v.log_term = 2; /* same last term, shorter log: refused */
    raft_node_step(n, &v);
    assert_true(last_reply(n).reject);
    v.index = 2;
    raft_node_step(n, &v);
    r = last_reply(n);
    assert_false(r.reject);
    assert_int_equal(raft_node_vote(n), 2);
    v.from = 3; /* same term, another candidate */
    v.index = 9;
    v.log_term = 3;
    raft_node_step(n, &v);
    assert_true(last_reply(n).reject);
    v.from = 2; /* the same candidate again: granted again */
    raft_node_step(n, &v);
    assert_false(last_reply(n).reject);
    raft_node_free(n);
}

/* All servers: a message with a higher term makes us a follower of that
 * term; candidates: an append from the new leader makes us its follower. */
static void test_raft_higher_term_and_new_leader_make_a_follower(void **state)
{
    (void)state;
    uint64_t terms[] = {1};
    struct raft_node *n = member(terms, 1, 1, 1);
    raft_node_campaign(n);
    last_reply(n);
    assert_int_equal(raft_node_role(n), RAFT_CANDIDATE);
    assert_int_equal(raft_node_term(n), 2);
    struct raft_message m = append(2, 1, 1, NULL, 0, 1);
    raft_node_step(n, &m);
    assert_int_equal(raft_node_role(n), RAFT_FOLLOWER);
    assert_int_equal(raft_node_leader(n), 2);
    assert_int_equal(raft_node_term(n), 2);
    struct raft_message resp = {.type = RAFT_MSG_VOTE_RESP,
                                .from = 3,
                                .to = 1,
                                .term = 5,
                                .reject = true};
    raft_node_step(n, &resp);
    assert_int_equal(raft_node_term(n), 5);
    assert_int_equal(raft_node_leader(n), 0);
    raft_node_free(n);
}

/* Leaders: on election, send empty appends; if an append fails because of
 * log inconsistency, decrement nextIndex and retry; once a majority has an
 * entry of the current term, commit it. */
static void test_raft_leader_backs_up_and_commits_on_majority(void **state)
{
    (void)state;
    uint64_t terms[] = {1, 1, 1};
    struct raft_node *n = member(terms, 3, 1, 1);
    raft_node_campaign(n);
    last_reply(n);
    struct raft_message g = {
        .type = RAFT_MSG_VOTE_RESP, .from = 2, .to = 1, .term = 2};
    raft_node_step(n, &g);
    assert_int_equal(raft_node_role(n), RAFT_LEADER);
    struct raft_ready rd;
    assert_int_equal(raft_node_ready(n, &rd), MOOR_OK);
    /* Its empty entry of term 2 goes out to both followers. */
    assert_int_equal(rd.n_entries, 1);
    assert_int_equal(rd.entries[0].term, 2);
    /* Its term went to disk with the campaign, so the appends may leave
     * before the entry is durable (thesis §10.2.1). */
    assert_int_equal(rd.n_msgs, 2);
    assert_int_equal(rd.n_msgs_after, 0);
    assert_int_equal(rd.msgs[0].type, RAFT_MSG_APPEND);
    assert_int_equal(rd.msgs[0].index, 3);
    assert_int_equal(rd.msgs[0].n_entries, 1);
    uint64_t pi = rd.persist_index;
    raft_node_advance(n, &rd);
    raft_node_persisted(n, pi, 2);
    /* Follower 2 lacks index 3: it rejects, with a hint of index 1. */
    struct raft_message rej = {.type = RAFT_MSG_APPEND_RESP,
                               .from = 2,
                               .to = 1,
                               .term = 2,
                               .reject = true,
                               .index = 3,
                               .reject_hint = 1,
                               .log_term = 1};
    raft_node_step(n, &rej);
    assert_int_equal(raft_node_ready(n, &rd), MOOR_OK);
    assert_int_equal(rd.n_msgs, 1);
    assert_int_equal(rd.msgs[0].index, 1); /* retry after index 1 */
    assert_int_equal(rd.msgs[0].n_entries, 3);
    raft_node_advance(n, &rd);
    assert_int_equal(raft_node_commit_index(n), 1);
    struct raft_message ok = {.type = RAFT_MSG_APPEND_RESP,
                              .from = 2,
                              .to = 1,
                              .term = 2,
                              .index = 4};
    raft_node_step(n, &ok);
    assert_int_equal(raft_node_commit_index(n), 4);
    raft_node_free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_raft_append_from_older_term_is_refused_with_our_term),
        cmocka_unit_test(test_raft_append_without_matching_prev_is_rejected),
        cmocka_unit_test(
            test_raft_append_truncates_conflicts_and_keeps_matches),
        cmocka_unit_test(
            test_raft_follower_commit_is_bounded_by_last_new_entry),
        cmocka_unit_test(
            test_raft_vote_granted_once_per_term_to_up_to_date_log),
        cmocka_unit_test(test_raft_higher_term_and_new_leader_make_a_follower),
        cmocka_unit_test(test_raft_leader_backs_up_and_commits_on_majority),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
