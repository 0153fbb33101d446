/* test_cli_snapshot.c: moorctl snapshot status on moor snapshot files
 * written by snapshot/: each output format, and refusals that name the
 * problem: a flipped byte, a truncated file, an etcd (bbolt) file, a
 * missing file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/cli.h"
#include "snapshot/snapshot.h"

#define S(lit) ((char *)(lit))

struct fixture
{
    char dir[64];
    char path[SNAP_PATH_MAX];
    uint32_t crc; /* crc32c of the kv stream written, but its last 4 bytes */
};

static const char stream[] = "a kv stream: any bytes, opaque to snapshot/";

static int produce(void *arg, struct moor_slice *chunk)
{
    int *calls = arg;
    *chunk = (*calls)++ == 0 ? moor_slice_make(stream, sizeof(stream))
                             : moor_slice_make(NULL, 0);
    return MOOR_OK;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/moorctl-snap-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    struct snap_meta m;
    memset(&m, 0, sizeof(m));
    m.term = 3;
    m.index = 42;
    m.applied_index = 42;
    m.revision = 1234;
    m.key_count = 77;
    int calls = 0;
    char err[MOOR_ERRMSG_SIZE];
    assert_int_equal(snap_save(f->dir, &m, produce, &calls, f->path, err),
                     MOOR_OK);
    f->crc = moor_crc32c(0, stream, sizeof(stream) - 4);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static int run(const char *path, const char *fmt, char *out, size_t out_size,
               char *err, size_t err_size)
{
    char *argv[] = {S("moorctl"),  S("-w"),     (char *)(uintptr_t)fmt,
                    S("snapshot"), S("status"), (char *)(uintptr_t)path};
    FILE *fin = tmpfile(), *fout = tmpfile(), *ferr = tmpfile();
    assert_non_null(fin);
    assert_non_null(fout);
    assert_non_null(ferr);
    int code = mc_main(6, argv, fin, fout, ferr);
    rewind(fout);
    rewind(ferr);
    out[fread(out, 1, out_size - 1, fout)] = 0;
    err[fread(err, 1, err_size - 1, ferr)] = 0;
    fclose(fin);
    fclose(fout);
    fclose(ferr);
    return code;
}

static long file_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

static void test_cli_snapshot_status_in_each_format(void **state)
{
    struct fixture *f = *state;
    char out[2048], err[1024], want[1024];
    long size = file_size(f->path);
    assert_int_equal(run(f->path, "json", out, sizeof(out), err, sizeof(err)),
                     0);
    snprintf(want, sizeof(want),
             "{\"hash\":%u,\"revision\":1234,\"totalKey\":77,\"totalSize\":%ld}"
             "\n",
             (unsigned)f->crc, size);
    assert_string_equal(out, want);
    assert_int_equal(run(f->path, "simple", out, sizeof(out), err, sizeof(err)),
                     0);
    snprintf(want, sizeof(want), "%x, 1234, 77, %ld B\n", (unsigned)f->crc,
             size);
    assert_string_equal(out, want);
    assert_int_equal(run(f->path, "fields", out, sizeof(out), err, sizeof(err)),
                     0);
    snprintf(want, sizeof(want),
             "\"Hash\" : %u\n\"Revision\" : 1234\n\"Keys\" : 77\n\"Size\" : "
             "%ld\n",
             (unsigned)f->crc, size);
    assert_string_equal(out, want);
    assert_int_equal(run(f->path, "table", out, sizeof(out), err, sizeof(err)),
                     0);
    assert_non_null(strstr(out, "| REVISION | TOTAL KEYS |"));
    assert_non_null(strstr(out, "|     1234 |         77 |"));
}

/* Copies the snapshot to a new file, changed by edit. */
static void copy_edited(const char *from, const char *to, long truncate_at,
                        long flip_at)
{
    FILE *in = fopen(from, "rb");
    FILE *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    int ch;
    long i = 0;
    while ((ch = fgetc(in)) != EOF && (truncate_at < 0 || i < truncate_at)) {
        fputc(i == flip_at ? ch ^ 0x40 : ch, out);
        i++;
    }
    fclose(in);
    fclose(out);
}

static void test_cli_snapshot_status_refuses_damaged_files(void **state)
{
    struct fixture *f = *state;
    char out[2048], err[1024], path[SNAP_PATH_MAX + 16];
    long size = file_size(f->path);

    snprintf(path, sizeof(path), "%s/flipped", f->dir);
    copy_edited(f->path, path, -1, size / 2);
    assert_int_equal(run(path, "simple", out, sizeof(out), err, sizeof(err)),
                     1);
    assert_string_equal(out, "");
    assert_non_null(strstr(err, "Error: invalid snapshot: "));
    assert_non_null(strstr(err, path));

    snprintf(path, sizeof(path), "%s/truncated", f->dir);
    copy_edited(f->path, path, size - 10, -1);
    assert_int_equal(run(path, "simple", out, sizeof(out), err, sizeof(err)),
                     1);
    assert_non_null(strstr(err, "Error: invalid snapshot: "));
    assert_non_null(strstr(err, path));

    snprintf(path, sizeof(path), "%s/bolt.db", f->dir);
    FILE *b = fopen(path, "wb");
    assert_non_null(b);
    uint8_t page[4096] = {0};
    moor_put_le32(page + 16, 0xED0CDAEDu);
    fwrite(page, 1, sizeof(page), b);
    fclose(b);
    assert_int_equal(run(path, "simple", out, sizeof(out), err, sizeof(err)),
                     1);
    assert_non_null(strstr(err, "is an etcd (bbolt) snapshot, not a moor one"));

    snprintf(path, sizeof(path), "%s/missing", f->dir);
    assert_int_equal(run(path, "simple", out, sizeof(out), err, sizeof(err)),
                     1);
    assert_non_null(strstr(err, ": no such file or directory\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cli_snapshot_status_in_each_format,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_cli_snapshot_status_refuses_damaged_files, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
