/* Unit tests of batch input handling: the CSV dialect (prov_csv), line
 * validation, duplicates and labels (prov_batch), the verdict against what
 * the database holds (prov_batch_existing), and the JSON/CSV output lines
 * (prov_out_format). No database is needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "prov_batch.h"
#include "prov_cred.h"
#include "prov_csv.h"
#include "prov_out.h"

#define ZONE "ddns.example.test"

/* ---- CSV dialect ------------------------------------------------------- */

static size_t split(const char *line, char **f, char *scratch, size_t cap, const char **why)
{
    size_t n = 0;
    *why = NULL;
    if (prov_csv_split(line, strlen(line), scratch, cap, f, PROV_CSV_MAX_FIELDS, &n, why) != 0)
        return (size_t)-1;
    return n;
}

static void test_csv_split_fields(void **state)
{
    (void)state;
    char scratch[256], *f[PROV_CSV_MAX_FIELDS];
    const char *why;

    assert_int_equal(split("a,b,c", f, scratch, sizeof scratch, &why), 3);
    assert_string_equal(f[0], "a");
    assert_string_equal(f[2], "c");
    /* blanks around unquoted fields are not part of them */
    assert_int_equal(split("  a b ,\tc\t, ", f, scratch, sizeof scratch, &why), 3);
    assert_string_equal(f[0], "a b");
    assert_string_equal(f[1], "c");
    assert_string_equal(f[2], "");
    /* empty fields, a trailing comma is one more empty field */
    assert_int_equal(split("a,,b,", f, scratch, sizeof scratch, &why), 4);
    assert_string_equal(f[1], "");
    assert_string_equal(f[3], "");
    assert_int_equal(split("", f, scratch, sizeof scratch, &why), 1);
    assert_string_equal(f[0], "");
    /* quoted: commas, doubled quotes, blanks inside kept, around ignored */
    assert_int_equal(split("\"IPC G5, Pro\", \"say \"\"hi\"\"\" ,\" x \"", f, scratch,
                           sizeof scratch, &why), 3);
    assert_string_equal(f[0], "IPC G5, Pro");
    assert_string_equal(f[1], "say \"hi\"");
    assert_string_equal(f[2], " x ");
    assert_int_equal(split("\"\",b", f, scratch, sizeof scratch, &why), 2);
    assert_string_equal(f[0], "");
}

static void test_csv_split_errors(void **state)
{
    (void)state;
    char scratch[256], *f[PROV_CSV_MAX_FIELDS];
    const char *why;

    assert_int_equal(split("a,\"bc", f, scratch, sizeof scratch, &why), (size_t)-1);
    assert_non_null(strstr(why, "not closed"));
    assert_int_equal(split("a,\"b\"c", f, scratch, sizeof scratch, &why), (size_t)-1);
    assert_non_null(strstr(why, "after the closing"));
    assert_int_equal(split("a,b\"c", f, scratch, sizeof scratch, &why), (size_t)-1);
    assert_non_null(strstr(why, "inside an unquoted field"));
    char many[64] = "";
    for (int i = 0; i < PROV_CSV_MAX_FIELDS; i++)
        strcat(many, "x,");
    assert_int_equal(split(many, f, scratch, sizeof scratch, &why), (size_t)-1);
    assert_non_null(strstr(why, "too many fields"));
    /* a scratch buffer that is too small is refused, not overrun */
    assert_int_equal(split("abcdef", f, scratch, 4, &why), (size_t)-1);
}

static int header(const char *line, prov_csv_header_t *h, char *err, size_t errlen)
{
    char scratch[256], *f[PROV_CSV_MAX_FIELDS];
    const char *why;
    size_t n = split(line, f, scratch, sizeof scratch, &why);
    assert_int_not_equal(n, (size_t)-1);
    return prov_csv_header(f, n, PROV_CSV_INPUT, h, err, errlen);
}

static void test_csv_header(void **state)
{
    (void)state;
    prov_csv_header_t h;
    char err[256];

    assert_int_equal(header("mac,serial,model,name", &h, err, sizeof err), 0);
    assert_int_equal(h.col[PROV_COL_MAC], 0);
    assert_int_equal(h.col[PROV_COL_NAME], 3);
    assert_int_equal(h.nfields, 4);
    /* any order, any case, name optional */
    assert_int_equal(header(" Model , MAC,Serial", &h, err, sizeof err), 0);
    assert_int_equal(h.col[PROV_COL_MODEL], 0);
    assert_int_equal(h.col[PROV_COL_MAC], 1);
    assert_int_equal(h.col[PROV_COL_SERIAL], 2);
    assert_int_equal(h.col[PROV_COL_NAME], -1);

    assert_int_equal(header("mac,serial", &h, err, sizeof err), -1);
    assert_non_null(strstr(err, "'model' is missing"));
    assert_int_equal(header("mac,serial,model,nmae", &h, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown column 'nmae'"));
    assert_int_equal(header("mac,serial,model,mac", &h, err, sizeof err), -1);
    assert_non_null(strstr(err, "'mac' appears twice (columns 1 and 4)"));
    assert_int_equal(header("mac,,serial,model", &h, err, sizeof err), -1);
    assert_non_null(strstr(err, "column 2 has no name"));
}

static void test_csv_field_quoting(void **state)
{
    (void)state;
    char out[64];
    size_t n = 0;
    assert_int_equal(prov_csv_field("plain", out, sizeof out, &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(out, "plain", 5);
    assert_int_equal(prov_csv_field("a,b", out, sizeof out, &n), 0);
    assert_memory_equal(out, "\"a,b\"", n);
    assert_int_equal(prov_csv_field("say \"hi\"", out, sizeof out, &n), 0);
    assert_memory_equal(out, "\"say \"\"hi\"\"\"", n);
    assert_int_equal(prov_csv_field(" x", out, sizeof out, &n), 0);
    assert_memory_equal(out, "\" x\"", n);
    assert_int_equal(prov_csv_field("", out, sizeof out, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(prov_csv_field("a,b", out, 4, &n), -1);
}

/* ---- batch parsing and validation ------------------------------------- */

static prov_batch_t *parse(const char *csv, int *rc, char *err, size_t errlen)
{
    prov_batch_t *b = prov_batch_new(ZONE);
    assert_non_null(b);
    char *text = strdup(csv);
    assert_non_null(text);
    assert_int_equal(prov_batch_set_text(b, text, strlen(csv), err, errlen), 0);
    *rc = prov_batch_parse(b, err, errlen);
    if (*rc == 0)
        prov_batch_sort_errors(b);
    return b;
}

/* The reasons recorded for input line `line`, joined by " | ". */
static const char *reasons(const prov_batch_t *b, unsigned line)
{
    static char buf[2048];
    buf[0] = '\0';
    for (size_t k = 0; k < prov_batch_nerrors(b); k++) {
        if (prov_batch_row_c(b, prov_batch_error_row(b, k))->line != line)
            continue;
        if (buf[0] != '\0')
            strcat(buf, " | ");
        strncat(buf, prov_batch_error_text(b, k), sizeof buf - strlen(buf) - 4);
    }
    return buf;
}

static const prov_row_t *row_at_line(const prov_batch_t *b, unsigned line)
{
    for (size_t i = 0; i < prov_batch_count(b); i++)
        if (prov_batch_row_c(b, i)->line == line)
            return prov_batch_row_c(b, i);
    fail_msg("no row at line %u", line);
    return NULL;
}

static void test_batch_mac_forms_and_classes(void **state)
{
    (void)state;
    int rc;
    char err[512], id[13];
    prov_batch_t *b = parse("mac,serial,model\n"
                            "3C:5A:B4:F0:9A:21,S1,M\n"
                            "3c-5a-b4-f0-9a-22,S2,M\n"
                            "3c5a.b4f0.9a23,S3,M\n"
                            " 3C5AB4F09A24 ,S4,M\n"
                            "06:00:00:00:00:01,S5,M\n"      /* locally administered: fine */
                            "00:00:00:00:00:00,S6,M\n"
                            "ff:ff:ff:ff:ff:ff,S7,M\n"
                            "01:00:5e:00:00:01,S8,M\n"
                            "33:33:00:00:00:01,S9,M\n"
                            "3c:5a-b4:f0:9a:25,S10,M\n"     /* mixed separators */
                            "3c:5a:b4:f0:9a,S11,M\n"        /* five octets */
                            "3c:5a:b4:f0:9a:2g,S12,M\n"
                            ",S13,M\n",
                            &rc, err, sizeof err);
    assert_int_equal(rc, 0);
    assert_int_equal(prov_batch_count(b), 13);
    const char *want[] = {"3c5ab4f09a21", "3c5ab4f09a22", "3c5ab4f09a23", "3c5ab4f09a24",
                          "060000000001"};
    for (unsigned i = 0; i < 5; i++) {
        const prov_row_t *r = row_at_line(b, i + 2);
        assert_int_equal(r->state, PROV_ROW_NEW);
        assert_true(r->flags & PROV_ROW_F_VALID);
        prov_row_device_id(r, id);
        assert_string_equal(id, want[i]);
        assert_string_equal(reasons(b, i + 2), "");
    }
    assert_non_null(strstr(reasons(b, 7), "mac '00:00:00:00:00:00': the all-zero"));
    assert_non_null(strstr(reasons(b, 8), "broadcast"));
    assert_non_null(strstr(reasons(b, 9), "mac '01:00:5e:00:00:01': a multicast"));
    assert_non_null(strstr(reasons(b, 10), "multicast"));
    assert_non_null(strstr(reasons(b, 11), "not a MAC address"));
    assert_non_null(strstr(reasons(b, 12), "not a MAC address"));
    assert_non_null(strstr(reasons(b, 13), "not a MAC address"));
    assert_string_equal(reasons(b, 14), "mac: empty");
    for (unsigned line = 7; line <= 14; line++) {
        assert_int_equal(row_at_line(b, line)->state, PROV_ROW_BAD);
        assert_false(row_at_line(b, line)->flags & PROV_ROW_F_VALID);
    }
    assert_int_equal(prov_batch_count_state(b, PROV_ROW_BAD), 8);
    prov_batch_free(b);
}

static void test_batch_field_rules(void **state)
{
    (void)state;
    int rc;
    char err[512], csv[4096];
    char s65[66], m65[66], l64[65], l63[64];
    memset(s65, 'S', 65);
    s65[65] = '\0';
    memset(m65, 'M', 65);
    m65[65] = '\0';
    memset(l64, 'a', 64);
    l64[64] = '\0';
    memset(l63, 'b', 63);
    l63[63] = '\0';
    snprintf(csv, sizeof csv,
             "mac,serial,model,name\n"
             "02:00:00:00:00:01,SN 1,M,\n"          /* 2: blank in serial */
             "02:00:00:00:00:02,-SN2,M,\n"          /* 3: serial starts with '-' */
             "02:00:00:00:00:03,%s,M,\n"            /* 4: serial too long */
             "02:00:00:00:00:04,,M,\n"              /* 5: no serial */
             "02:00:00:00:00:05,SN5,,\n"            /* 6: no model */
             "02:00:00:00:00:06,SN6,\"a\"\"b\",\n"  /* 7: quote in model */
             "02:00:00:00:00:07,SN7,%s,\n"          /* 8: model too long */
             "02:00:00:00:00:08,SN8,M,bad_name\n"   /* 9 */
             "02:00:00:00:00:09,SN9,M,-x\n"         /* 10 */
             "02:00:00:00:00:0a,SN10,M,%s\n"        /* 11: label too long */
             "02:00:00:00:00:0b,SN/11:a+b#c_d.e-f,DVR 16ch (rev. B),Front-Door\n" /* 12: good */
             "02:00:00:00:00:0c,SN12,M,%s\n"        /* 13: good, 63 */
             "02:00:00:00:00:0d,SN13,M\n"           /* 14: 3 fields */
             "02:00:00:00:00:0e,SN14,M,x,y\n"       /* 15: 5 fields */
             "02:00:00:00:00:0f,\"SN15,M,x\n"       /* 16: open quote */
             "02:00:00:00:00:10,SN\x01" "16,M,\n",  /* 17: control byte */
             s65, m65, l64, l63);
    prov_batch_t *b = parse(csv, &rc, err, sizeof err);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(reasons(b, 2), "serial 'SN 1': character 3 is a blank"));
    assert_non_null(strstr(reasons(b, 3), "must start with a letter or digit"));
    assert_non_null(strstr(reasons(b, 4), "must be 1 to 64 characters"));
    assert_string_equal(reasons(b, 5), "serial: empty");
    assert_string_equal(reasons(b, 6), "model: empty");
    assert_non_null(strstr(reasons(b, 7), "model 'a\"b': character 2 is not allowed"));
    assert_non_null(strstr(reasons(b, 8), "model '"));
    assert_non_null(strstr(reasons(b, 9), "name: hostname label 'bad_name'"));
    assert_non_null(strstr(reasons(b, 10), "starts or ends with '-'"));
    assert_non_null(strstr(reasons(b, 11), "longer than 63"));
    assert_string_equal(reasons(b, 12), "");
    assert_string_equal(reasons(b, 13), "");
    assert_string_equal(reasons(b, 14), "line: 3 fields, but the header names 4 columns");
    assert_string_equal(reasons(b, 15), "line: 5 fields, but the header names 4 columns");
    assert_non_null(strstr(reasons(b, 16), "not closed"));
    assert_non_null(strstr(reasons(b, 17), "character 3 is not printable ASCII"));

    const prov_row_t *r = row_at_line(b, 12);
    assert_int_equal(r->state, PROV_ROW_NEW);
    assert_true(r->label_explicit);
    assert_string_equal(prov_batch_str(b, r->label), "front-door"); /* lowercased */
    assert_string_equal(prov_batch_str(b, r->serial), "SN/11:a+b#c_d.e-f");
    assert_string_equal(prov_batch_str(b, r->model), "DVR 16ch (rev. B)");
    assert_int_equal(prov_batch_count_state(b, PROV_ROW_NEW), 2);
    /* the raw text of a line is kept for the reject file */
    size_t len;
    const char *raw = prov_batch_raw(b, 15 - 2, &len);
    assert_int_equal(row_at_line(b, 15)->raw_len, len);
    assert_memory_equal(raw, "02:00:00:00:00:0e,SN14,M,x,y", len);
    prov_batch_free(b);
}

static void test_batch_fqdn_length(void **state)
{
    (void)state;
    int rc;
    char err[512], zone[300], label[64], csv[1024];
    /* a zone of 189 characters leaves 63 for the label: 63 + 1 + 189 = 253 */
    memset(zone, 'z', 189);
    zone[189] = '\0';
    for (int i = 60; i < 189; i += 61)
        zone[i] = '.';
    memset(label, 'a', 63);
    label[63] = '\0';
    prov_batch_t *b = prov_batch_new(zone);
    snprintf(csv, sizeof csv, "mac,serial,model,name\n02:00:00:00:00:01,S1,M,%s\n"
             "02:00:00:00:00:02,S2,M,%sx\n", label, "b");
    char *text = strdup(csv);
    assert_int_equal(prov_batch_set_text(b, text, strlen(csv), err, sizeof err), 0);
    assert_int_equal(prov_batch_parse(b, err, sizeof err), 0);
    assert_int_equal(prov_batch_count_state(b, PROV_ROW_BAD), 0);
    prov_batch_free(b);

    zone[189] = 'z';
    zone[190] = '\0'; /* 254 with the 63-character label */
    b = prov_batch_new(zone);
    text = strdup(csv);
    assert_int_equal(prov_batch_set_text(b, text, strlen(csv), err, sizeof err), 0);
    assert_int_equal(prov_batch_parse(b, err, sizeof err), 0);
    assert_int_equal(prov_batch_count_state(b, PROV_ROW_BAD), 1);
    assert_non_null(strstr(reasons(b, 2), "is longer than 253 characters"));
    prov_batch_free(b);
    (void)rc;
}

static void test_batch_duplicates(void **state)
{
    (void)state;
    int rc;
    char err[512];
    prov_batch_t *b = parse("mac,serial,model,name\n"
                            "3C:5A:B4:F0:9A:21,S1,M,cam-a\n"   /* 2 */
                            "02:00:00:00:00:02,S2,M,\n"        /* 3 */
                            "3c5a.b4f0.9a21,S3,M,\n"           /* 4: same MAC as 2 */
                            "02:00:00:00:00:05,S2,M,\n"        /* 5: same serial as 3 */
                            "02:00:00:00:00:06,S6,M,CAM-A\n"   /* 6: same name as 2 */
                            "3c-5a-b4-f0-9a-21,S7,M,\n"        /* 7: MAC of 2 again */
                            "02:00:00:00:00:08,s2,M,\n",       /* 8: serials are case-sensitive */
                            &rc, err, sizeof err);
    assert_int_equal(rc, 0);
    const char *r2 = reasons(b, 2);
    assert_non_null(strstr(r2, "mac 3c5ab4f09a21: the same device is also on line 4"));
    assert_non_null(strstr(r2, "name 'cam-a': also on line 6"));
    assert_string_equal(reasons(b, 4), "mac 3c5ab4f09a21: the same device is also on line 2");
    assert_string_equal(reasons(b, 7), "mac 3c5ab4f09a21: the same device is also on line 2");
    assert_string_equal(reasons(b, 3), "serial 'S2': also on line 5");
    assert_string_equal(reasons(b, 5), "serial 'S2': also on line 3");
    assert_string_equal(reasons(b, 6), "name 'cam-a': also on line 2");
    assert_string_equal(reasons(b, 8), "");
    /* every line involved is rejected, but its fields are valid, so the
     * database checks still look at it */
    for (unsigned line = 2; line <= 7; line++) {
        assert_int_equal(row_at_line(b, line)->state, PROV_ROW_BAD);
        assert_true(row_at_line(b, line)->flags & PROV_ROW_F_VALID);
    }
    assert_int_equal(row_at_line(b, 8)->state, PROV_ROW_NEW);
    prov_batch_free(b);
}

static void test_batch_line_numbers_and_endings(void **state)
{
    (void)state;
    int rc;
    char err[512];
    /* BOM, CRLF, blank lines before the header and between devices */
    prov_batch_t *b = parse("\xef\xbb\xbf\r\n  \r\nmac,serial,model\r\n"
                            "02:00:00:00:00:01,S1,M\r\n\r\n\t\r\n"
                            "01:00:00:00:00:07,S7,M\r\n"
                            "02:00:00:00:00:08,S8,M",  /* no final line end */
                            &rc, err, sizeof err);
    assert_int_equal(rc, 0);
    assert_int_equal(prov_batch_count(b), 3);
    assert_int_equal(prov_batch_row_c(b, 0)->line, 4);
    assert_int_equal(prov_batch_row_c(b, 1)->line, 7);
    assert_int_equal(prov_batch_row_c(b, 2)->line, 8);
    assert_non_null(strstr(reasons(b, 7), "multicast"));
    assert_string_equal(prov_batch_str(b, prov_batch_row_c(b, 0)->model), "M");
    size_t len;
    const char *raw = prov_batch_raw(b, 0, &len);
    assert_int_equal(len, strlen("02:00:00:00:00:01,S1,M")); /* without the CR */
    (void)raw;
    prov_batch_free(b);
}

static void test_batch_whole_input_errors(void **state)
{
    (void)state;
    int rc;
    char err[512];
    prov_batch_t *b = parse("", &rc, err, sizeof err);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "the input is empty"));
    prov_batch_free(b);
    b = parse("\n \n", &rc, err, sizeof err);
    assert_int_equal(rc, -1);
    prov_batch_free(b);
    b = parse("mac,serial,model\n", &rc, err, sizeof err);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "no device lines"));
    prov_batch_free(b);
    b = parse("mac,serial\n02:00:00:00:00:01,S1\n", &rc, err, sizeof err);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "line 1: header: the required column 'model' is missing"));
    prov_batch_free(b);
    b = parse("\nmac,serial,model,label\n02:00:00:00:00:01,S1,M,x\n", &rc, err, sizeof err);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "line 2: header: unknown column 'label'"));
    prov_batch_free(b);

    b = prov_batch_new(ZONE);
    char *text = malloc(20);
    memcpy(text, "mac,serial,model\n\0x", 20);
    assert_int_equal(prov_batch_set_text(b, text, 20, err, sizeof err), 0);
    assert_int_equal(prov_batch_parse(b, err, sizeof err), -1);
    assert_non_null(strstr(err, "NUL byte"));
    prov_batch_free(b);
}

static void test_batch_sha256(void **state)
{
    (void)state;
    int rc;
    char err[512];
    prov_batch_t *b = parse("abc", &rc, err, sizeof err);
    /* SHA-256("abc"), FIPS 180-4 */
    assert_string_equal(prov_batch_sha256(b),
                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(prov_batch_input_size(b), 3);
    prov_batch_free(b);
}

static void test_batch_random_labels(void **state)
{
    (void)state;
    int rc;
    char err[512], chk[PROV_LABEL_MAX + 1];
    const char *csv = "mac,serial,model,name\n"
                      "02:00:00:00:00:01,S1,M,\n"
                      "02:00:00:00:00:02,S2,M,given\n"
                      "02:00:00:00:00:03,S3,M,\n"
                      "01:00:00:00:00:04,S4,M,\n";
    prov_batch_t *b = parse(csv, &rc, err, sizeof err);
    prov_batch_t *again = parse(csv, &rc, err, sizeof err);
    assert_int_equal(prov_batch_labels(b, "cam", err, sizeof err), 0);
    assert_int_equal(prov_batch_labels(again, "cam", err, sizeof err), 0);
    const char *l1 = prov_batch_str(b, prov_batch_row_c(b, 0)->label);
    const char *l3 = prov_batch_str(b, prov_batch_row_c(b, 2)->label);
    assert_int_equal(strlen(l1), 3 + 13);
    assert_memory_equal(l1, "cam", 3);
    assert_int_equal(prov_label_check(l1, chk, err, sizeof err), 0);
    assert_string_not_equal(l1, l3);
    assert_string_equal(prov_batch_str(b, prov_batch_row_c(b, 1)->label), "given");
    /* not derived from the MAC: the same line gets another label next time */
    assert_string_not_equal(l1, prov_batch_str(again, prov_batch_row_c(again, 0)->label));
    assert_null(strstr(l1, "000001"));
    /* rejected lines get no label */
    assert_int_equal(prov_batch_row_c(b, 3)->label, 0);
    /* relabelling draws a different label */
    char before[PROV_LABEL_MAX + 1];
    snprintf(before, sizeof before, "%s", l1);
    assert_int_equal(prov_batch_relabel(b, 0, "cam"), 0);
    assert_string_not_equal(before, prov_batch_str(b, prov_batch_row_c(b, 0)->label));
    assert_int_equal(prov_batch_relabel(b, 1, "cam"), -1); /* an explicit name stays */

    assert_int_equal(prov_batch_labels(b, "Bad_", err, sizeof err), -1);
    assert_non_null(strstr(err, "--label-prefix 'Bad_'"));
    prov_batch_free(b);
    prov_batch_free(again);
}

static void test_batch_existing(void **state)
{
    (void)state;
    int rc;
    char err[512];
    prov_batch_t *b = parse("mac,serial,model,name\n"
                            "02:00:00:00:00:01,S1,M,\n"        /* 2: same */
                            "02:00:00:00:00:02,S2,M,cam2\n"    /* 3: same, explicit name */
                            "02:00:00:00:00:03,S3,M,\n"        /* 4: other serial */
                            "02:00:00:00:00:04,S4,M,\n"        /* 5: no serial recorded */
                            "02:00:00:00:00:05,S5,M,\n"        /* 6: other model */
                            "02:00:00:00:00:06,S6,M,\n"        /* 7: other key id */
                            "02:00:00:00:00:07,S7,M,\n"        /* 8: revoked */
                            "02:00:00:00:00:08,S8,M,mine\n"    /* 9: other name */
                            "02:00:00:00:00:09,S9,M,\n",       /* 10: no name in the zone */
                            &rc, err, sizeof err);
    assert_int_equal(prov_batch_labels(b, "d", err, sizeof err), 0);
    prov_existing_t same = {"k1", "1", "active", "S1", "M", "dregistered"};
    prov_batch_existing(b, 0, "k1", &same);
    prov_existing_t same2 = {"k1", "1", "active", "S2", "M", "cam2"};
    prov_batch_existing(b, 1, "k1", &same2);
    prov_existing_t e3 = {"k1", "1", "active", "OTHER", "M", "x"};
    prov_batch_existing(b, 2, "k1", &e3);
    prov_existing_t e4 = {"k1", "1", "active", NULL, "M", "x"};
    prov_batch_existing(b, 3, "k1", &e4);
    prov_existing_t e5 = {"k1", "1", "active", "S5", "M2", "x"};
    prov_batch_existing(b, 4, "k1", &e5);
    prov_existing_t e6 = {"k0", "1", "active", "S6", "M", "x"};
    prov_batch_existing(b, 5, "k1", &e6);
    prov_existing_t e7 = {"k1", "1", "revoked", "S7", "M", "x"};
    prov_batch_existing(b, 6, "k1", &e7);
    prov_existing_t e8 = {"k1", "1", "active", "S8", "M", "theirs"};
    prov_batch_existing(b, 7, "k1", &e8);
    prov_existing_t e9 = {"k1", "1", "active", "S9", "M", NULL};
    prov_batch_existing(b, 8, "k1", &e9);
    prov_batch_sort_errors(b);

    assert_int_equal(prov_batch_row_c(b, 0)->state, PROV_ROW_SAME);
    /* the registered label replaces the random one */
    assert_string_equal(prov_batch_str(b, prov_batch_row_c(b, 0)->label), "dregistered");
    assert_int_equal(prov_batch_row_c(b, 1)->state, PROV_ROW_SAME);
    assert_string_equal(reasons(b, 4),
                        "mac 020000000003: already registered under serial 'OTHER', not 'S3'");
    assert_non_null(strstr(reasons(b, 5), "already registered without a serial"));
    assert_non_null(strstr(reasons(b, 6), "already registered as model 'M2', not 'M'"));
    assert_non_null(strstr(reasons(b, 7), "already registered under key id 'k0', not 'k1'"));
    assert_non_null(strstr(reasons(b, 8), "registered but revoked"));
    assert_non_null(strstr(reasons(b, 9),
                           "name 'mine': the device 020000000008 already has the name "
                           "theirs.ddns.example.test"));
    assert_non_null(strstr(reasons(b, 10), "without a name in zone ddns.example.test"));
    assert_int_equal(prov_batch_count_state(b, PROV_ROW_SAME), 2);
    assert_int_equal(prov_batch_count_state(b, PROV_ROW_BAD), 7);
    prov_batch_free(b);
}

/* A registered device's credentials are of its generation; a public file
 * holds one generation (none: 0), which a registered device must have. */
static void test_batch_generations(void **state)
{
    (void)state;
    int rc;
    char err[512];
    prov_batch_t *b = parse("mac,serial,model\n02:00:00:00:00:01,S1,M\n"
                            "02:00:00:00:00:02,S2,M\n", &rc, err, sizeof err);
    assert_int_equal(rc, 0);
    assert_int_equal(prov_batch_generation(b), PROV_GENERATION_NEW);
    assert_int_equal(prov_batch_labels(b, "d", err, sizeof err), 0);
    prov_existing_t reissued = {"k1", "7", "active", "S1", "M", "dx"};
    prov_batch_existing(b, 0, "k1", &reissued);
    assert_int_equal(prov_batch_row_c(b, 0)->state, PROV_ROW_SAME);
    assert_int_equal(prov_batch_row_c(b, 0)->generation, 7);
    assert_int_equal(prov_batch_row_c(b, 1)->generation, PROV_GENERATION_NEW);
    prov_batch_free(b);

    b = prov_batch_new("");
    prov_batch_set_public(b);
    char *text = strdup("mac,serial,model,name,kid,zone,generation\n"
                        "020000000001,S1,M,a1,k1,ddns.example.test,3\n"
                        "020000000002,S2,M,a2,k1,ddns.example.test,3\n"
                        "020000000003,S3,M,a3,k1,ddns.example.test,4\n"
                        "020000000004,S4,M,a4,k1,ddns.example.test,03\n"
                        "020000000005,S5,M,a5,k1,ddns.example.test,10000000\n");
    assert_int_equal(prov_batch_set_text(b, text, strlen(text), err, sizeof err), 0);
    assert_int_equal(prov_batch_parse(b, err, sizeof err), 0);
    prov_batch_sort_errors(b);
    assert_int_equal(prov_batch_generation(b), 3);
    assert_int_equal(prov_batch_row_c(b, 0)->generation, 3);
    assert_non_null(strstr(reasons(b, 4), "generation 4: line 2 has 3"));
    assert_non_null(strstr(reasons(b, 5), "generation '03'"));
    assert_non_null(strstr(reasons(b, 6), "generation '10000000'"));
    prov_existing_t at3 = {"k1", "3", "active", "S1", "M", "a1"};
    prov_batch_existing(b, 0, "k1", &at3);
    assert_int_equal(prov_batch_row_c(b, 0)->state, PROV_ROW_SAME);
    prov_existing_t at2 = {"k1", "2", "active", "S2", "M", "a2"};
    prov_batch_existing(b, 1, "k1", &at2);
    prov_batch_sort_errors(b);
    assert_non_null(strstr(reasons(b, 3), "already registered at generation 2, not 3"));
    prov_batch_free(b);

    /* a public file of a release before generations: generation 0 */
    b = prov_batch_new("");
    prov_batch_set_public(b);
    text = strdup("mac,serial,model,name,kid,zone\n020000000001,S1,M,a1,k1,ddns.example.test\n");
    assert_int_equal(prov_batch_set_text(b, text, strlen(text), err, sizeof err), 0);
    assert_int_equal(prov_batch_parse(b, err, sizeof err), 0);
    assert_int_equal(prov_batch_generation(b), 0);
    assert_int_equal(prov_batch_row_c(b, 0)->generation, 0);
    assert_int_equal(prov_batch_count_state(b, PROV_ROW_BAD), 0);
    prov_batch_free(b);
}

static void test_batch_existing_keeps_rejections(void **state)
{
    (void)state;
    int rc;
    char err[512];
    /* a duplicate within the file stays rejected even when the database
     * knows the device exactly so */
    prov_batch_t *b = parse("mac,serial,model\n02:00:00:00:00:01,S1,M\n"
                            "02:00:00:00:00:01,S1,M\n", &rc, err, sizeof err);
    prov_existing_t same = {"k1", "1", "active", "S1", "M", "dx"};
    prov_batch_existing(b, 0, "k1", &same);
    assert_int_equal(prov_batch_row_c(b, 0)->state, PROV_ROW_BAD);
    prov_batch_free(b);
}

/* ---- output lines ------------------------------------------------------ */

static void make_cred(prov_cred_t *c)
{
    cmn_master_key_t key = {0};
    char err[256];
    strcpy(key.kid, "k1");
    for (int i = 0; i < CMN_KEY_LEN; i++)
        key.key[i] = (uint8_t)i;
    memset(c, 0, sizeof *c);
    /* generation 0: the legacy password carries the secret */
    assert_int_equal(prov_cred_derive(c, "3c5ab4f09a21", &key, 0, err, sizeof err), 0);
    strcpy(c->label, "front-door");
    strcpy(c->zone, ZONE);
}

static void test_out_jsonl_matches_issue(void **state)
{
    (void)state;
    prov_cred_t c;
    char buf[PROV_OUT_MAX], err[256];
    size_t len = 0;
    make_cred(&c);
    char *json = prov_cred_json(&c, "SN1", "IPC G5, \"Pro\"");
    assert_int_equal(prov_out_format(PROV_FMT_JSONL, &c, "SN1", "IPC G5, \"Pro\"", buf, &len,
                                     err, sizeof err), 0);
    /* byte for byte what 'issue' prints, plus the line end */
    assert_int_equal(len, strlen(json) + 1);
    assert_memory_equal(buf, json, strlen(json));
    assert_int_equal(buf[len - 1], '\n');
    assert_non_null(strstr(buf, "\"secret\":\"Z-UZrYwVk5W6E474Gl59fPUPryfJH8nAM34PVPPb120\""));
    free(json);
    prov_cred_wipe(&c);
}

static void test_out_csv_line(void **state)
{
    (void)state;
    prov_cred_t c;
    char buf[PROV_OUT_MAX], err[256];
    size_t len = 0;
    make_cred(&c);
    assert_int_equal(prov_out_format(PROV_FMT_CSV, &c, "SN1", "IPC G5, Pro", buf, &len, err,
                                     sizeof err), 0);
    const char *want = "3c5ab4f09a21,k1,Z-UZrYwVk5W6E474Gl59fPUPryfJH8nAM34PVPPb120,"
                       "k1.Z-UZrYwVk5W6E474Gl59fPUPryfJH8nAM34PVPPb120,"
                       "front-door.ddns.example.test,SN1,\"IPC G5, Pro\"\n";
    assert_int_equal(len, strlen(want));
    assert_memory_equal(buf, want, len);
    assert_int_equal(prov_fmt_parse("jsonl"), PROV_FMT_JSONL);
    assert_int_equal(prov_fmt_parse("csv"), PROV_FMT_CSV);
    assert_int_equal(prov_fmt_parse("record"), PROV_FMT_RECORD);
    assert_int_equal(prov_fmt_parse("xml"), -1);
    prov_cred_wipe(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_split_fields),
        cmocka_unit_test(test_csv_split_errors),
        cmocka_unit_test(test_csv_header),
        cmocka_unit_test(test_csv_field_quoting),
        cmocka_unit_test(test_batch_mac_forms_and_classes),
        cmocka_unit_test(test_batch_field_rules),
        cmocka_unit_test(test_batch_fqdn_length),
        cmocka_unit_test(test_batch_duplicates),
        cmocka_unit_test(test_batch_line_numbers_and_endings),
        cmocka_unit_test(test_batch_whole_input_errors),
        cmocka_unit_test(test_batch_sha256),
        cmocka_unit_test(test_batch_random_labels),
        cmocka_unit_test(test_batch_existing),
        cmocka_unit_test(test_batch_generations),
        cmocka_unit_test(test_batch_existing_keeps_rejections),
        cmocka_unit_test(test_out_jsonl_matches_issue),
        cmocka_unit_test(test_out_csv_line),
    };
    return cmocka_run_group_tests_name("provisioning batch", tests, NULL, NULL);
}
