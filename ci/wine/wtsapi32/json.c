/*
 * The stand-in's JSON reader: recursive descent over RFC 8259, depth-limited, strict UTF-8
 * input. See json.h for what it returns.
 */
#include "json.h"

#define JSON_MAX_DEPTH 64

typedef struct {
    HANDLE heap;
    const unsigned char *p;
    const unsigned char *end;
    const unsigned char *start;
    char *error;
    size_t error_size;
    BOOL failed;
} parser;

static void copy_ascii(char *dst, size_t size, const char *src)
{
    size_t i = 0;
    if (size == 0) {
        return;
    }
    for (; src[i] && i + 1 < size; i++) {
        dst[i] = src[i];
    }
    dst[i] = 0;
}

static void fail(parser *ps, const char *what)
{
    char msg[160];
    size_t n = 0, offset;
    char digits[24];
    int d = 0;
    if (ps->failed) {
        return;
    }
    ps->failed = TRUE;
    for (const char *s = what; *s && n + 1 < sizeof msg; s++) {
        msg[n++] = *s;
    }
    for (const char *s = " at byte "; *s && n + 1 < sizeof msg; s++) {
        msg[n++] = *s;
    }
    offset = (size_t)(ps->p - ps->start);
    do {
        digits[d++] = (char)('0' + offset % 10);
        offset /= 10;
    } while (offset && d < (int)sizeof digits);
    while (d > 0 && n + 1 < sizeof msg) {
        msg[n++] = digits[--d];
    }
    msg[n] = 0;
    copy_ascii(ps->error, ps->error_size, msg);
}

static void *alloc(parser *ps, size_t size)
{
    void *p = HeapAlloc(ps->heap, HEAP_ZERO_MEMORY, size ? size : 1);
    if (!p) {
        fail(ps, "out of memory");
    }
    return p;
}

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end &&
           (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) {
        ps->p++;
    }
}

/* A growable UTF-16 buffer for one string. */
typedef struct {
    WCHAR *data;
    size_t length;
    size_t capacity;
} wide_buf;

static BOOL wide_push(parser *ps, wide_buf *b, WCHAR c)
{
    if (b->length + 1 >= b->capacity) {
        size_t cap = b->capacity ? b->capacity * 2 : 32;
        WCHAR *n = alloc(ps, cap * sizeof(WCHAR));
        if (!n) {
            return FALSE;
        }
        if (b->data) {
            CopyMemory(n, b->data, b->length * sizeof(WCHAR));
            HeapFree(ps->heap, 0, b->data);
        }
        b->data = n;
        b->capacity = cap;
    }
    b->data[b->length++] = c;
    b->data[b->length] = 0;
    return TRUE;
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Decodes one UTF-8 sequence (strict: no overlongs, no surrogates, max U+10FFFF). */
static BOOL utf8_next(parser *ps, unsigned long *cp)
{
    unsigned char c = *ps->p;
    int extra;
    unsigned long v, min;
    if (c < 0x80) {
        *cp = c;
        ps->p++;
        return TRUE;
    }
    if ((c & 0xE0) == 0xC0) {
        extra = 1;
        v = c & 0x1F;
        min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        extra = 2;
        v = c & 0x0F;
        min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        extra = 3;
        v = c & 0x07;
        min = 0x10000;
    } else {
        fail(ps, "invalid UTF-8");
        return FALSE;
    }
    if (ps->end - ps->p <= extra) {
        fail(ps, "truncated UTF-8");
        return FALSE;
    }
    for (int i = 1; i <= extra; i++) {
        unsigned char k = ps->p[i];
        if ((k & 0xC0) != 0x80) {
            fail(ps, "invalid UTF-8");
            return FALSE;
        }
        v = (v << 6) | (k & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        fail(ps, "invalid UTF-8");
        return FALSE;
    }
    ps->p += extra + 1;
    *cp = v;
    return TRUE;
}

static BOOL parse_string(parser *ps, WCHAR **out, size_t *out_len)
{
    wide_buf b = {0};
    if (ps->p >= ps->end || *ps->p != '"') {
        fail(ps, "expected a string");
        return FALSE;
    }
    ps->p++;
    if (!wide_push(ps, &b, 0)) {
        return FALSE;
    }
    b.length = 0;
    for (;;) {
        unsigned char c;
        if (ps->p >= ps->end) {
            fail(ps, "unterminated string");
            return FALSE;
        }
        c = *ps->p;
        if (c == '"') {
            ps->p++;
            break;
        }
        if (c < 0x20) {
            fail(ps, "control character in string");
            return FALSE;
        }
        if (c == '\\') {
            WCHAR w;
            ps->p++;
            if (ps->p >= ps->end) {
                fail(ps, "unterminated escape");
                return FALSE;
            }
            switch (*ps->p) {
            case '"': w = '"'; break;
            case '\\': w = '\\'; break;
            case '/': w = '/'; break;
            case 'b': w = 8; break;
            case 'f': w = 12; break;
            case 'n': w = 10; break;
            case 'r': w = 13; break;
            case 't': w = 9; break;
            case 'u': {
                int v = 0;
                if (ps->end - ps->p < 5) {
                    fail(ps, "truncated \\u escape");
                    return FALSE;
                }
                for (int i = 1; i <= 4; i++) {
                    int h = hex_value(ps->p[i]);
                    if (h < 0) {
                        fail(ps, "bad \\u escape");
                        return FALSE;
                    }
                    v = v * 16 + h;
                }
                ps->p += 4;
                w = (WCHAR)v;
                break;
            }
            default:
                fail(ps, "unknown escape");
                return FALSE;
            }
            ps->p++;
            if (!wide_push(ps, &b, w)) {
                return FALSE;
            }
            continue;
        }
        {
            unsigned long cp;
            if (!utf8_next(ps, &cp)) {
                return FALSE;
            }
            if (cp >= 0x10000) {
                cp -= 0x10000;
                if (!wide_push(ps, &b, (WCHAR)(0xD800 + (cp >> 10))) ||
                    !wide_push(ps, &b, (WCHAR)(0xDC00 + (cp & 0x3FF)))) {
                    return FALSE;
                }
            } else if (!wide_push(ps, &b, (WCHAR)cp)) {
                return FALSE;
            }
        }
    }
    *out = b.data;
    *out_len = b.length;
    return TRUE;
}

static BOOL parse_number(parser *ps, json_value *v)
{
    const unsigned char *s = ps->p;
    BOOL negative = FALSE, integral = TRUE, overflow = FALSE;
    unsigned long long mantissa = 0;
    double value = 0.0, scale = 1.0;
    int exponent = 0;
    if (ps->p < ps->end && *ps->p == '-') {
        negative = TRUE;
        ps->p++;
    }
    if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') {
        fail(ps, "bad number");
        return FALSE;
    }
    if (*ps->p == '0') {
        ps->p++;
    } else {
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
            unsigned d = *ps->p - '0';
            if (mantissa > (0x7FFFFFFFFFFFFFFFULL - d) / 10) {
                overflow = TRUE;
            } else {
                mantissa = mantissa * 10 + d;
            }
            value = value * 10.0 + d;
            ps->p++;
        }
    }
    if (ps->p < ps->end && *ps->p == '.') {
        integral = FALSE;
        ps->p++;
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') {
            fail(ps, "bad number");
            return FALSE;
        }
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
            scale /= 10.0;
            value += (*ps->p - '0') * scale;
            ps->p++;
        }
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        BOOL eneg = FALSE;
        integral = FALSE;
        ps->p++;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) {
            eneg = *ps->p == '-';
            ps->p++;
        }
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') {
            fail(ps, "bad number");
            return FALSE;
        }
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
            if (exponent < 400) {
                exponent = exponent * 10 + (*ps->p - '0');
            }
            ps->p++;
        }
        while (exponent-- > 0) {
            value = eneg ? value / 10.0 : value * 10.0;
        }
    }
    (void)s;
    v->type = JSON_NUMBER;
    v->number = negative ? -value : value;
    v->is_integer = integral && !overflow;
    v->integer = negative ? -(LONGLONG)mantissa : (LONGLONG)mantissa;
    return TRUE;
}

static BOOL literal(parser *ps, const char *word)
{
    for (const char *w = word; *w; w++) {
        if (ps->p >= ps->end || *ps->p != (unsigned char)*w) {
            fail(ps, "unexpected token");
            return FALSE;
        }
        ps->p++;
    }
    return TRUE;
}

static json_value *parse_value(parser *ps, int depth);

static BOOL push_item(parser *ps, json_value *container, json_value *item, WCHAR *key,
                      size_t *capacity)
{
    if (container->count == *capacity) {
        size_t cap = *capacity ? *capacity * 2 : 8;
        json_value **items = alloc(ps, cap * sizeof *items);
        WCHAR **keys = alloc(ps, cap * sizeof *keys);
        if (!items || !keys) {
            return FALSE;
        }
        if (container->count) {
            CopyMemory(items, container->items, container->count * sizeof *items);
            CopyMemory(keys, container->keys, container->count * sizeof *keys);
        }
        container->items = items;
        container->keys = keys;
        *capacity = cap;
    }
    container->items[container->count] = item;
    container->keys[container->count] = key;
    container->count++;
    return TRUE;
}

static json_value *parse_value(parser *ps, int depth)
{
    json_value *v;
    if (depth > JSON_MAX_DEPTH) {
        fail(ps, "nesting too deep");
        return NULL;
    }
    skip_ws(ps);
    if (ps->p >= ps->end) {
        fail(ps, "unexpected end of input");
        return NULL;
    }
    v = alloc(ps, sizeof *v);
    if (!v) {
        return NULL;
    }
    switch (*ps->p) {
    case 'n':
        v->type = JSON_NULL;
        return literal(ps, "null") ? v : NULL;
    case 't':
        v->type = JSON_BOOL;
        v->boolean = TRUE;
        return literal(ps, "true") ? v : NULL;
    case 'f':
        v->type = JSON_BOOL;
        return literal(ps, "false") ? v : NULL;
    case '"':
        v->type = JSON_STRING;
        return parse_string(ps, &v->string, &v->length) ? v : NULL;
    case '[': {
        size_t cap = 0;
        v->type = JSON_ARRAY;
        ps->p++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ']') {
            ps->p++;
            return v;
        }
        for (;;) {
            json_value *item = parse_value(ps, depth + 1);
            if (!item || !push_item(ps, v, item, NULL, &cap)) {
                return NULL;
            }
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ',') {
                ps->p++;
                continue;
            }
            if (ps->p < ps->end && *ps->p == ']') {
                ps->p++;
                return v;
            }
            fail(ps, "expected , or ]");
            return NULL;
        }
    }
    case '{': {
        size_t cap = 0;
        v->type = JSON_OBJECT;
        ps->p++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == '}') {
            ps->p++;
            return v;
        }
        for (;;) {
            WCHAR *key;
            size_t key_len;
            json_value *item;
            skip_ws(ps);
            if (!parse_string(ps, &key, &key_len)) {
                return NULL;
            }
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                fail(ps, "expected :");
                return NULL;
            }
            ps->p++;
            item = parse_value(ps, depth + 1);
            if (!item || !push_item(ps, v, item, key, &cap)) {
                return NULL;
            }
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ',') {
                ps->p++;
                continue;
            }
            if (ps->p < ps->end && *ps->p == '}') {
                ps->p++;
                return v;
            }
            fail(ps, "expected , or }");
            return NULL;
        }
    }
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) {
            return parse_number(ps, v) ? v : NULL;
        }
        fail(ps, "unexpected character");
        return NULL;
    }
}

json_value *json_parse(HANDLE heap, const char *text, size_t size, char *error, size_t error_size)
{
    parser ps;
    json_value *v;
    ps.heap = heap;
    ps.start = ps.p = (const unsigned char *)text;
    ps.end = ps.p + size;
    ps.error = error;
    ps.error_size = error_size;
    ps.failed = FALSE;
    copy_ascii(error, error_size, "");
    /* A UTF-8 byte order mark is tolerated. */
    if (size >= 3 && ps.p[0] == 0xEF && ps.p[1] == 0xBB && ps.p[2] == 0xBF) {
        ps.p += 3;
    }
    v = parse_value(&ps, 0);
    if (!v) {
        return NULL;
    }
    skip_ws(&ps);
    if (ps.p != ps.end) {
        fail(&ps, "trailing data");
        return NULL;
    }
    return v;
}

BOOL json_wide_equals_ascii(const WCHAR *wide, size_t length, const char *ascii, BOOL fold)
{
    size_t i = 0;
    for (; i < length && ascii[i]; i++) {
        WCHAR a = wide[i], b = (unsigned char)ascii[i];
        if (fold) {
            if (a >= 'A' && a <= 'Z') {
                a = (WCHAR)(a - 'A' + 'a');
            }
            if (b >= 'A' && b <= 'Z') {
                b = (WCHAR)(b - 'A' + 'a');
            }
        }
        if (a != b) {
            return FALSE;
        }
    }
    return i == length && ascii[i] == 0;
}

const json_value *json_member(const json_value *object, const char *key)
{
    if (!object || object->type != JSON_OBJECT) {
        return NULL;
    }
    for (size_t i = 0; i < object->count; i++) {
        const WCHAR *k = object->keys[i];
        size_t n = 0;
        while (k[n]) {
            n++;
        }
        if (json_wide_equals_ascii(k, n, key, FALSE)) {
            return object->items[i];
        }
    }
    return NULL;
}
