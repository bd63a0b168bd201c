/* ddns_response: the gateway's answer (PROTOCOL.md section 6) and the
 * HTTP/1.1 framing around it.
 *
 * Both parsers only read inside the given span and check every index
 * against its length before use. */
#include "ddns_internal.h"

#include <string.h>

/* ---- Answer body ---------------------------------------------------------- */

enum data_kind {
    DATA_NONE,   /* no data words */
    DATA_ADDR,   /* one or two addresses, IPv4 first */
    DATA_WORD,   /* one word (badrequest detail) */
    DATA_TIME,   /* one decimal uint64 (badtime) */
    DATA_SECS    /* one decimal uint32 (ratelimit) */
};

struct answer {
    char token[12];
    uint16_t status;
    uint8_t kind;
};

/* Indexed by ddns_result_t. */
static const struct answer answers[] = {
    { "", 0, DATA_NONE },
    { "good", 200, DATA_ADDR },
    { "nochg", 200, DATA_ADDR },
    { "badrequest", 400, DATA_WORD },
    { "badauth", 401, DATA_NONE },
    { "badtime", 401, DATA_TIME },
    { "disabled", 403, DATA_NONE },
    { "notfound", 404, DATA_NONE },
    { "replay", 409, DATA_NONE },
    { "ratelimit", 429, DATA_SECS },
    { "911", 503, DATA_NONE },
};

#define NANSWERS (sizeof answers / sizeof answers[0])

const char *ddns_result_token(ddns_result_t r)
{
    if ((size_t)r >= NANSWERS)
        return "";
    return answers[r].token;
}

static bool span_eq(ddns_span_t s, const char *text)
{
    size_t n = strlen(text);
    return s.len == n && memcmp(s.ptr, text, n) == 0;
}

/* Decimal digits only, value at most max. */
static bool parse_uint(ddns_span_t s, uint64_t max, uint64_t *value)
{
    uint64_t v = 0;
    size_t i;

    if (s.len == 0)
        return false;
    for (i = 0; i < s.len; i++) {
        unsigned d;
        if (!ddns__is_digit(s.ptr[i]))
            return false;
        d = (unsigned)(s.ptr[i] - '0');
        if (v > (max - d) / 10u)
            return false;
        v = v * 10u + d;
    }
    *value = v;
    return true;
}

static void copy_text(char *dst, ddns_span_t s)
{
    memcpy(dst, s.ptr, s.len);
    dst[s.len] = '\0';
}

/* Data words of an answer of the given kind. */
static ddns_err_t parse_data(uint8_t kind, const ddns_span_t *words, size_t ndata,
                             ddns_response_t *out)
{
    uint64_t v;

    switch (kind) {
    case DATA_NONE:
        return ndata == 0 ? DDNS_OK : DDNS_E_RESP_DATA;
    case DATA_ADDR:
        if (ndata == 1) {
            if (ddns_ipv4_check(words[0]) != DDNS_OK && ddns_ipv6_check(words[0]) != DDNS_OK)
                return DDNS_E_RESP_DATA;
        } else if (ndata == 2) {
            if (ddns_ipv4_check(words[0]) != DDNS_OK || ddns_ipv6_check(words[1]) != DDNS_OK)
                return DDNS_E_RESP_DATA;
            copy_text(out->addr[1], words[1]);
        } else {
            return DDNS_E_RESP_DATA;
        }
        copy_text(out->addr[0], words[0]);
        out->naddrs = (unsigned)ndata;
        return DDNS_OK;
    case DATA_WORD:
        if (ndata != 1 || words[0].len >= DDNS_DETAIL_MAX)
            return DDNS_E_RESP_DATA;
        copy_text(out->detail, words[0]);
        return DDNS_OK;
    case DATA_TIME:
        if (ndata != 1 || !parse_uint(words[0], UINT64_MAX, &v))
            return DDNS_E_RESP_DATA;
        out->server_time = v;
        return DDNS_OK;
    case DATA_SECS:
        if (ndata != 1 || !parse_uint(words[0], UINT32_MAX, &v))
            return DDNS_E_RESP_DATA;
        out->retry_after = (uint32_t)v;
        return DDNS_OK;
    default:
        return DDNS_E_RESP_DATA;
    }
}

ddns_err_t ddns_response_parse(unsigned status, ddns_span_t body, ddns_response_t *out)
{
    ddns_span_t words[3];   /* token and at most two data words */
    size_t nwords = 0, i, start, line_len;
    bool extra = false;
    size_t r;
    ddns_err_t err;

    if (out == NULL)
        return DDNS_E_NULL;
    memset(out, 0, sizeof *out);
    if (body.ptr == NULL && body.len > 0)
        return DDNS_E_NULL;

    if (body.len == 0 || body.len > DDNS_RESPONSE_BODY_MAX || body.ptr[body.len - 1] != '\n')
        return DDNS_E_RESP_FORMAT;
    line_len = body.len - 1;
    for (i = 0; i < line_len; i++)
        if (body.ptr[i] < 0x20 || body.ptr[i] > 0x7e)
            return DDNS_E_RESP_FORMAT;

    /* Words separated by single spaces; an empty word is a format error. */
    start = 0;
    for (i = 0; i <= line_len; i++) {
        if (i < line_len && body.ptr[i] != ' ')
            continue;
        if (i == start)
            return DDNS_E_RESP_FORMAT;
        if (nwords < 3)
            words[nwords++] = ddns_span(body.ptr + start, i - start);
        else
            extra = true;
        start = i + 1;
    }

    for (r = 1; r < NANSWERS; r++)
        if (span_eq(words[0], answers[r].token))
            break;
    if (r == NANSWERS)
        return DDNS_E_RESP_TOKEN;
    if (answers[r].status != status)
        return DDNS_E_RESP_STATUS;
    if (extra)
        return DDNS_E_RESP_DATA;
    err = parse_data(answers[r].kind, words + 1, nwords - 1, out);
    if (err != DDNS_OK) {
        memset(out, 0, sizeof *out);
        return err;
    }
    out->result = (ddns_result_t)r;
    return DDNS_OK;
}

/* ---- HTTP/1.1 framing ----------------------------------------------------- */

static bool is_tchar(uint8_t c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || ddns__is_digit(c))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Case-insensitive comparison of a header name with a lowercase name. */
static bool name_is(const uint8_t *p, size_t n, const char *lower)
{
    size_t i;

    if (n != strlen(lower))
        return false;
    for (i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c >= 'A' && c <= 'Z')
            c = (uint8_t)(c + ('a' - 'A'));
        if (c != (uint8_t)lower[i])
            return false;
    }
    return true;
}

/* "HTTP/1." DIGIT SP 3DIGIT [SP reason-phrase] */
static ddns_err_t parse_status_line(const uint8_t *p, size_t n, unsigned *status)
{
    static const char prefix[] = "HTTP/1.";
    unsigned v;

    if (n < 12 || memcmp(p, prefix, 7) != 0 || !ddns__is_digit(p[7]) || p[8] != ' ' ||
        !ddns__is_digit(p[9]) || !ddns__is_digit(p[10]) || !ddns__is_digit(p[11]) ||
        (n > 12 && p[12] != ' '))
        return DDNS_E_HTTP_SYNTAX;
    v = (unsigned)(p[9] - '0') * 100u + (unsigned)(p[10] - '0') * 10u + (unsigned)(p[11] - '0');
    if (v < 200 || v > 599)
        return DDNS_E_HTTP_SYNTAX;
    *status = v;
    return DDNS_OK;
}

/* One header field line (without its line end). */
static ddns_err_t parse_header(const uint8_t *p, size_t n, bool *have_length, size_t *length)
{
    size_t colon, vs, ve, i;
    uint64_t v;

    for (colon = 0; colon < n && is_tchar(p[colon]); colon++)
        ;
    if (colon == 0 || colon == n || p[colon] != ':')
        return DDNS_E_HTTP_SYNTAX;
    vs = colon + 1;
    ve = n;
    while (vs < ve && (p[vs] == ' ' || p[vs] == '\t'))
        vs++;
    while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t'))
        ve--;

    if (name_is(p, colon, "transfer-encoding"))
        return DDNS_E_HTTP_LENGTH;
    if (!name_is(p, colon, "content-length"))
        return DDNS_OK;
    if (ve - vs > 18)
        return DDNS_E_HTTP_LENGTH;
    for (i = vs; i < ve; i++)
        if (!ddns__is_digit(p[i]))
            return DDNS_E_HTTP_LENGTH;
    if (!parse_uint(ddns_span(p + vs, ve - vs), SIZE_MAX, &v))
        return DDNS_E_HTTP_LENGTH;
    if (*have_length && *length != (size_t)v)
        return DDNS_E_HTTP_LENGTH;
    *have_length = true;
    *length = (size_t)v;
    return DDNS_OK;
}

ddns_err_t ddns_http_response_parse(ddns_span_t raw, ddns_http_response_t *out)
{
    static const char prefix[] = "HTTP/1.";
    size_t pos = 0, length = 0, check;
    unsigned status = 0;
    bool have_length = false, first = true;
    ddns_err_t err = DDNS_OK;

    if (out == NULL)
        return DDNS_E_NULL;
    memset(out, 0, sizeof *out);
    if (raw.ptr == NULL && raw.len > 0)
        return DDNS_E_NULL;

    /* Refuse garbage before a whole line has arrived. */
    check = raw.len < 7 ? raw.len : 7;
    if (check > 0 && memcmp(raw.ptr, prefix, check) != 0)
        return DDNS_E_HTTP_SYNTAX;

    for (;;) {
        size_t eol = pos, end, i;
        while (eol < raw.len && raw.ptr[eol] != '\n')
            eol++;
        if (eol == raw.len)
            return DDNS_E_HTTP_INCOMPLETE;
        end = eol;
        if (end > pos && raw.ptr[end - 1] == '\r')
            end--;
        for (i = pos; i < end; i++) {
            uint8_t c = raw.ptr[i];
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return DDNS_E_HTTP_SYNTAX;
        }
        if (first) {
            err = parse_status_line(raw.ptr + pos, end - pos, &status);
            first = false;
        } else if (end == pos) {
            pos = eol + 1;
            break;  /* blank line: end of the header section */
        } else {
            err = parse_header(raw.ptr + pos, end - pos, &have_length, &length);
        }
        if (err != DDNS_OK)
            return err;
        pos = eol + 1;
    }

    if (!have_length || length > SIZE_MAX - pos)
        return DDNS_E_HTTP_LENGTH;
    out->status = status;
    out->header_len = pos;
    out->content_length = length;
    out->total_len = pos + length;
    if (raw.len < out->total_len)
        return DDNS_E_HTTP_INCOMPLETE;
    out->body = ddns_span(raw.ptr + pos, length);
    return DDNS_OK;
}
