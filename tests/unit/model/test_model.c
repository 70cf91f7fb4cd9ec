/*
 * test_model.c -- the churn model's parts one at a time: the CSV reader
 * (quotes, line ends, the refusals and their places), the schema (kinds,
 * blanks as missing, one-hot layout, unseen categories), the metrics on
 * cases small enough to check by hand, the folds' balance, the baseline
 * and the model file's refusals.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test.h"
#include "model/model_int.h"
#include "util/csv.h"
#include "util/util.h"

/* Parse text; the table on success, the message in *msg (owned) either way. */
static int parse(struct csv *c, const char *text, char **msg)
{
    struct buf d;
    buf_init(&d, 0);
    int rc = csv_parse(c, "t.csv", text, strlen(text), &d);
    *msg = buf_steal(&d);
    return rc;
}

static void csv_quotes_and_line_ends(void)
{
    struct csv c;
    char *msg;
    const char *text = "\xef\xbb\xbf" "a,b,c\r\n"
                       "1,\"x, y\",\"say \"\"hi\"\"\"\r\n"
                       "\n"
                       "2,\"two\nlines\",\r"
                       "3,,\"\"";
    ASSERT_EQ(parse(&c, text, &msg), 0);
    free(msg);
    ASSERT_EQ(c.ncols, 3);
    ASSERT_EQ(c.nrows, 3);
    ASSERT_STREQ(csv_cell(&c, 0, 0), "a"); /* the byte-order mark is not part of the name */
    ASSERT_STREQ(csv_cell(&c, 1, 1), "x, y");
    ASSERT_STREQ(csv_cell(&c, 1, 2), "say \"hi\"");
    ASSERT_STREQ(csv_cell(&c, 2, 1), "two\nlines");
    ASSERT_STREQ(csv_cell(&c, 2, 2), "");
    ASSERT_STREQ(csv_cell(&c, 3, 1), "");
    ASSERT_STREQ(csv_cell(&c, 3, 2), "");
    ASSERT_EQ(csv_line(&c, 1), 2);
    ASSERT_EQ(csv_line(&c, 2), 4); /* the empty line 3 was skipped */
    ASSERT_EQ(csv_line(&c, 3), 6); /* row 2 spans lines 4 and 5 */
    ASSERT_EQ(csv_column(&c, "c"), 2);
    ASSERT_EQ(csv_column(&c, "z"), -1);
    csv_cleanup(&c);
}

static void csv_refusals_name_the_place(void)
{
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"a,b,c\n1,2,3\n4,5\n", "t.csv:3: 2 fields, header has 3 (data row 2)"},
        {"a,b\n1,2,3\n", "t.csv:2: 3 fields, header has 2 (data row 1)"},
        {"a,b\n1,\"2\n", "t.csv:2: field 2: quoted field not closed"},
        {"a,b\n1,\"2\"x\n", "t.csv:2: field 2: text after the closing quote"},
        {"a,a\n1,2\n", "t.csv:1: column 'a' appears twice (fields 1 and 2)"},
        {"a,,c\n1,2,3\n", "t.csv:1: header field 2 is empty"},
        {"", "t.csv: empty: no header row"},
        {"\n\n", "t.csv: empty: no header row"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct csv c;
        char *msg;
        int rc = parse(&c, cases[i].text, &msg);
        if (rc == 0)
            csv_cleanup(&c);
        ASSERT(rc != 0);
        ASSERT_CONTAINS(msg, cases[i].msg);
        ASSERT_EQ(c.nrows, 0); /* nothing handed back */
        free(msg);
    }
    /* A NUL byte inside a field. */
    struct csv c;
    struct buf d;
    buf_init(&d, 0);
    ASSERT(csv_parse(&c, "t.csv", "a\nx\0y\n", 6, &d) != 0);
    ASSERT_CONTAINS(d.data, "t.csv:2: a NUL byte");
    buf_cleanup(&d);
}

static void numbers(void)
{
    double v = 0;
    ASSERT_EQ(model_parse_number(" 29.85 ", &v), 0);
    ASSERT(v == 29.85);
    ASSERT_EQ(model_parse_number("-1e3", &v), 0);
    ASSERT(v == -1000);
    ASSERT_EQ(model_parse_number(".5", &v), 0);
    ASSERT(v == 0.5);
    const char *bad[] = {"", " ", "nan", "inf", "0x10", "1e", "1.2.3", "12a", "-", "1e999", "."};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        ASSERT(model_parse_number(bad[i], &v) != 0);
}

/* A Telco-like table: blank TotalCharges, yes/no, categories, an id and the label. */
static const char telco[] = "id,tenure,Partner,Contract,Total,Churn\n"
                            "A1,1,Yes,Month-to-month,29.85,No\n"
                            "A2,34,No,One year,1889.5,No\n"
                            "A3,0,no,Two year, ,Yes\n"
                            "A4,2,TRUE,Month-to-month,108.15,Yes\n"
                            "A5,45,false,,1840.75,No\n";

static void schema_kinds_and_encoding(void)
{
    struct csv c;
    char *msg;
    ASSERT_EQ(parse(&c, telco, &msg), 0);
    free(msg);
    struct model_schema s;
    struct buf d;
    buf_init(&d, 0);
    ASSERT_EQ(model_schema_learn(&s, &c, "Churn", "Yes", "id", &d), 0);
    ASSERT_EQ(s.ncols, 4); /* id and label left out */
    ASSERT_STREQ(s.cols[0].name, "tenure");
    ASSERT_EQ(s.cols[0].kind, MODEL_NUMERIC);
    ASSERT_EQ(s.cols[1].kind, MODEL_BOOLEAN);
    ASSERT_EQ(s.cols[2].kind, MODEL_CATEGORICAL);
    ASSERT_EQ(s.cols[2].ncat, 3);
    ASSERT_EQ(s.cols[2].n_missing, 1);
    ASSERT_STREQ(s.cols[2].cats[0], "Month-to-month"); /* sorted by name */
    ASSERT_STREQ(s.cols[2].cats[2], "Two year");
    ASSERT_EQ(s.cols[3].kind, MODEL_NUMERIC); /* 4 of 4 non-blank values are numbers */
    ASSERT_EQ(s.cols[3].n_missing, 1);
    ASSERT_EQ(s.nfeat, 6);
    buf_reset(&d);
    model_feature_name(&s, 4, &d);
    ASSERT_STREQ(d.data, "Contract=Two year");

    size_t idx[4];
    ASSERT_EQ(model_schema_bind(&s, &c, idx, "t.csv", &d), 0);
    float x[5 * 6];
    model_encode(&s, &c, idx, x);
    ASSERT(x[0] == 1 && x[1] == 1 && x[2] == 1 && x[3] == 0 && x[4] == 0 && x[5] == 29.85f);
    ASSERT(x[2 * 6 + 1] == 0 && x[2 * 6 + 4] == 1 && isnan(x[2 * 6 + 5])); /* " " is missing */
    ASSERT(x[3 * 6 + 1] == 1);                                             /* TRUE */
    ASSERT(x[4 * 6 + 2] == 0 && x[4 * 6 + 3] == 0 && x[4 * 6 + 4] == 0);   /* empty category */

    /* Scoring a table: columns in another order, an unseen category, a word in a number. */
    struct csv c2;
    ASSERT_EQ(parse(&c2, "Total,Contract,Partner,tenure\nabc,Three year,maybe,7\n", &msg), 0);
    free(msg);
    ASSERT_EQ(model_schema_bind(&s, &c2, idx, "s.csv", &d), 0);
    model_encode(&s, &c2, idx, x);
    ASSERT(x[0] == 7 && isnan(x[1]) && x[2] == 0 && x[3] == 0 && x[4] == 0 && isnan(x[5]));
    csv_cleanup(&c2);

    /* A scoring table without a feature column is refused by name. */
    ASSERT_EQ(parse(&c2, "tenure,Partner,Total\n1,yes,2\n", &msg), 0);
    free(msg);
    buf_reset(&d);
    ASSERT_EQ(model_schema_bind(&s, &c2, idx, "s.csv", &d), FW_ENOTFOUND);
    ASSERT_CONTAINS(d.data, "s.csv: no column 'Contract'");
    csv_cleanup(&c2);
    model_schema_cleanup(&s);

    /* A label or id that is not a column. */
    buf_reset(&d);
    ASSERT_EQ(model_schema_learn(&s, &c, "churned", "Yes", NULL, &d), FW_EINVAL);
    ASSERT_CONTAINS(d.data, "no column 'churned' (the --label column)");
    buf_reset(&d);
    ASSERT_EQ(model_schema_learn(&s, &c, "Churn", "Yes", "cust", &d), FW_EINVAL);
    ASSERT_CONTAINS(d.data, "no column 'cust' (the --id column)");
    buf_cleanup(&d);
    csv_cleanup(&c);
}

static void identifier_columns_are_left_out(void)
{
    struct buf t, d;
    buf_init(&t, 0);
    buf_init(&d, 0);
    buf_puts(&t, "key,x,y\n");
    for (int i = 0; i < 300; i++)
        buf_printf(&t, "k%03d,%d,%s\n", i, i % 7, i % 3 ? "no" : "yes");
    struct csv c;
    ASSERT_EQ(csv_parse(&c, "t.csv", t.data, t.len, &d), 0);
    struct model_schema s;
    ASSERT_EQ(model_schema_learn(&s, &c, "y", "yes", NULL, &d), 0);
    ASSERT_EQ(s.ncols, 1);
    ASSERT_EQ(s.ndropped, 1);
    ASSERT_STREQ(s.dropped[0], "key");
    model_schema_cleanup(&s);
    csv_cleanup(&c);
    buf_cleanup(&t);
    buf_cleanup(&d);
}

static void auc_by_hand(void)
{
    /* Positives 0.9, 0.4; negatives 0.8, 0.3, 0.1: pairs won 3 + 2 of 6. */
    double s[] = {0.9, 0.8, 0.4, 0.3, 0.1};
    float y[] = {1, 0, 1, 0, 0};
    ASSERT(fabs(model_roc_auc(s, y, 5) - 5.0 / 6) < 1e-12);
    /* Average precision: at 0.9 precision 1/1, at 0.4 precision 2/3: (1 + 2/3) / 2. */
    ASSERT(fabs(model_pr_auc(s, y, 5) - (1 + 2.0 / 3) / 2) < 1e-12);
    /* A tie between a positive and a negative counts half, in any order. */
    double t[] = {0.5, 0.5, 0.1};
    float ty[] = {1, 0, 0}, ty2[] = {0, 1, 0};
    ASSERT(fabs(model_roc_auc(t, ty, 3) - 0.75) < 1e-12);
    ASSERT(fabs(model_roc_auc(t, ty2, 3) - 0.75) < 1e-12);
    ASSERT(fabs(model_pr_auc(t, ty, 3) - 0.5) < 1e-12); /* one step: 1 of 2 above the line */
    /* One class only: undefined. */
    float all[] = {1, 1, 1};
    ASSERT(isnan(model_roc_auc(t, all, 3)));
    struct model_confusion c;
    model_confusion_at(s, y, 5, 0.4, &c);
    ASSERT(c.tp == 2 && c.fp == 1 && c.tn == 2 && c.fn == 0);
}

static void folds_are_stratified_and_fixed(void)
{
    size_t n = 103;
    float *y = xmalloc(n * sizeof *y);
    unsigned *f = xmalloc(n * sizeof *f), *g = xmalloc(n * sizeof *g);
    for (size_t i = 0; i < n; i++)
        y[i] = i % 5 == 0; /* 21 positives */
    model_folds(y, n, 5, 1, f);
    model_folds(y, n, 5, 1, g);
    ASSERT(!memcmp(f, g, n * sizeof *f));
    for (unsigned k = 0; k < 5; k++) {
        size_t rows = 0, pos = 0;
        for (size_t i = 0; i < n; i++)
            if (f[i] == k)
                rows++, pos += y[i] > 0.5;
        ASSERT(rows == 20 || rows == 21);
        ASSERT(pos == 4 || pos == 5);
    }
    free(y);
    free(f);
    free(g);
}

static void baseline_learns_a_separable_rule(void)
{
    /* y = 1 when x0 > 5; x1 is noise, x2 constant, some x0 missing. */
    size_t n = 200, d = 3;
    float *x = xmalloc(n * d * sizeof *x), *y = xmalloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) {
        x[i * d] = i % 17 == 0 ? NAN : (float)(i % 11);
        x[i * d + 1] = (float)((i * 7919) % 13);
        x[i * d + 2] = 3;
        y[i] = x[i * d] > 5 || (isnan(x[i * d]) && i % 2);
    }
    struct logreg m;
    logreg_fit(&m, x, y, n, d, NULL, LOGREG_LAMBDA);
    ASSERT(m.w[0] > 1);
    ASSERT(fabs(m.w[2]) < 1e-9); /* a constant feature carries nothing */
    float lo[] = {1, 5, 3}, hi[] = {9, 5, 3};
    ASSERT(logreg_predict(&m, lo) < 0.1);
    ASSERT(logreg_predict(&m, hi) > 0.9);
    logreg_cleanup(&m);
    free(x);
    free(y);
}

static void model_file_refusals(void)
{
    char path[] = "/tmp/fw-model-unit-XXXXXX";
    int fd = mkstemp(path);
    ASSERT(fd >= 0);
    close(fd);
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"hello\n", "not a forewarn model file"},
        {"forewarn-model 1\nschema 2\n{}\n", "format version 1; this forewarn reads version 2"},
        {"forewarn-model 3\nschema 2\n{}\n", "format version 3; this forewarn reads version 2"},
        {"forewarn-model 2\nschema 2\n{}\n", "no checksum at the end"},
        {"forewarn-model 2\nschema 2\n{}\nfnv1a64 0000000000000000\n", "checksum mismatch"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        FILE *f = fopen(path, "wb");
        fputs(cases[i].text, f);
        fclose(f);
        struct model m;
        struct buf d;
        buf_init(&d, 0);
        ASSERT(model_load(&m, path, &d) != 0);
        ASSERT_CONTAINS(d.data, cases[i].msg);
        model_cleanup(&m);
        buf_cleanup(&d);
    }
    unlink(path);
}

/* A model saved and loaded back: the same schema, baseline and booster, scoring the same. */
static void model_file_round_trip(void)
{
    struct csv c;
    struct buf d;
    buf_init(&d, 0);
    struct buf t;
    buf_init(&t, 0);
    buf_puts(&t, "tenure,Partner,Contract,Total,Churn\n");
    const char *contracts[] = {"Month-to-month", "One year", "Two year"};
    for (int i = 0; i < 60; i++)
        buf_printf(&t, "%d,%s,%s,%s,%s\n", i % 40, i % 3 ? "Yes" : "No", contracts[i % 3],
                   i % 11 ? "12.5" : " ", (i % 40 < 12 && i % 3 == 0) || i % 7 == 0 ? "Yes" : "No");
    ASSERT_EQ(csv_parse(&c, "t.csv", t.data, t.len, &d), 0);
    struct model m, back;
    model_init(&m);
    ASSERT_EQ(model_schema_learn(&m.schema, &c, "Churn", "Yes", NULL, &d), 0);
    size_t n = c.nrows, nf = m.schema.nfeat, idx[4];
    ASSERT_EQ(model_schema_bind(&m.schema, &c, idx, "t.csv", &d), 0);
    float *x = xmalloc(n * nf * sizeof *x), *y = xmalloc(n * sizeof *y);
    model_encode(&m.schema, &c, idx, x);
    for (size_t r = 1; r <= n; r++)
        y[r - 1] = !strcmp(csv_cell(&c, r, 4), "Yes");
    m.params = model__grid[0];
    m.params.rounds = 5;
    m.threshold = 0.5;
    m.tree_weight = 0.3;
    ASSERT_EQ(gbt_train(x, y, n, nf, &m.params, &m.booster, &d), 0);
    logreg_fit(&m.base, x, y, n, nf, NULL, LOGREG_LAMBDA);
    char path[] = "/tmp/fw-model-rt-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    ASSERT_EQ(model_save(&m, path, &d), 0);
    ASSERT_EQ(model_load(&back, path, &d), 0);
    unlink(path);
    ASSERT_EQ(back.schema.nfeat, nf);
    ASSERT_EQ(back.schema.ncols, 4);
    ASSERT_STREQ(back.schema.cols[2].cats[1], "One year");
    ASSERT_EQ(back.schema.cols[1].kind, MODEL_BOOLEAN);
    ASSERT(back.tree_weight == 0.3);
    ASSERT_EQ(m.base.nlog, 1); /* tenure: non-negative, many values; Total has one value */
    ASSERT_EQ(back.base.nlog, 1);
    ASSERT_EQ(back.base.logsrc[0], 0);
    ASSERT_EQ(back.params.rounds, 5);
    ASSERT_EQ(back.booster.len, m.booster.len);
    ASSERT(!memcmp(back.booster.data, m.booster.data, m.booster.len));
    for (size_t r = 0; r < n; r++)
        ASSERT(logreg_predict(&back.base, x + r * nf) == logreg_predict(&m.base, x + r * nf));
    struct gbt *g = NULL;
    double *s = xmalloc(n * sizeof *s);
    ASSERT_EQ(gbt_load(&g, back.booster.data, back.booster.len, nf, &d), 0);
    ASSERT_EQ(gbt_predict(g, x, n, nf, s, &d), 0);
    ASSERT(model_roc_auc(s, y, n) > 0.7);
    gbt_free(g);
    /* A booster of another width is refused. */
    ASSERT(gbt_load(&g, back.booster.data, back.booster.len, nf + 1, &d) != 0);
    ASSERT_CONTAINS(d.data, "features, the schema has");
    free(s);
    free(x);
    free(y);
    model_cleanup(&back);
    model_cleanup(&m);
    csv_cleanup(&c);
    buf_cleanup(&t);
    buf_cleanup(&d);
}

const struct test model_tests[] = {
    {"csv_quotes_and_line_ends", csv_quotes_and_line_ends},
    {"csv_refusals_name_the_place", csv_refusals_name_the_place},
    {"numbers", numbers},
    {"schema_kinds_and_encoding", schema_kinds_and_encoding},
    {"identifier_columns_are_left_out", identifier_columns_are_left_out},
    {"auc_by_hand", auc_by_hand},
    {"folds_are_stratified_and_fixed", folds_are_stratified_and_fixed},
    {"baseline_learns_a_separable_rule", baseline_learns_a_separable_rule},
    {"model_file_refusals", model_file_refusals},
    {"model_file_round_trip", model_file_round_trip},
    {NULL, NULL},
};
