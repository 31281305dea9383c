/*
 * A stand-in for Windows' wtsapi32.dll, loaded by Wine instead of its own (mostly stubbed)
 * one, for end-to-end tests of logoff-users.exe. It simulates a machine and named remote
 * RD Session Hosts from a JSON state file (env WTS_STANDIN_STATE) and appends one JSON line
 * per call to a record log (env WTS_STANDIN_LOG). README.md beside this file documents the
 * state and record formats, what is modelled and the Microsoft documentation behind each
 * choice.
 *
 * Written from the documented contracts only (mingw-w64's headers and Microsoft Learn): no
 * code from Wine, ReactOS or the project's own Rust backend.
 *
 * Layout of this file: output buffers and JSON escaping; the record log; the state (types,
 * loading, time); server handles; returned blocks and their ownership checks; the
 * simulation (advance, visibility); then the exported functions.
 */
#include "wts_ex.h"

#include <sddl.h>

#include "json.h"

#define STANDIN_ERR_SESSION_NOT_FOUND 7022 /* ERROR_CTX_WINSTATION_NOT_FOUND */
#define STANDIN_DEFAULT_BWAIT_HANG_MS 2000
#define STANDIN_MAX_TEXT 8192 /* WCHARs of a message text copied into the record */
#define UNIX_EPOCH_AS_FILETIME 116444736000000000LL
#ifndef AF_INET6
#define AF_INET6 23 /* ws2def.h; windows.h brings only winsock.h's families */
#endif

/* ---------------------------------------------------------------------------------------
 * Output buffers and JSON escaping
 * ------------------------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len;
    size_t cap;
} sbuf;

static void sb_reserve(sbuf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    char *n;
    if (need <= b->cap) {
        return;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        cap *= 2;
    }
    n = b->p ? HeapReAlloc(GetProcessHeap(), 0, b->p, cap) : HeapAlloc(GetProcessHeap(), 0, cap);
    if (!n) {
        return;
    }
    b->p = n;
    b->cap = cap;
}

static void sb_raw(sbuf *b, const char *s, size_t n)
{
    sb_reserve(b, n);
    if (b->len + n + 1 > b->cap) {
        return; /* out of memory: the line loses this piece */
    }
    CopyMemory(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_str(sbuf *b, const char *s)
{
    sb_raw(b, s, lstrlenA(s));
}

static void sb_u64(sbuf *b, ULONGLONG v)
{
    char digits[24];
    int n = 0;
    do {
        digits[sizeof digits - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    sb_raw(b, digits + sizeof digits - n, n);
}

static void sb_i64(sbuf *b, LONGLONG v)
{
    if (v < 0) {
        sb_raw(b, "-", 1);
        sb_u64(b, (ULONGLONG)0 - (ULONGLONG)v);
    } else {
        sb_u64(b, (ULONGLONG)v);
    }
}

static void sb_hex_string(sbuf *b, ULONG_PTR v)
{
    char digits[2 + 2 * sizeof(ULONG_PTR) + 2];
    int n = 0;
    digits[n++] = '"';
    digits[n++] = '0';
    digits[n++] = 'x';
    for (int shift = (int)(8 * sizeof(ULONG_PTR)) - 4; shift >= 0; shift -= 4) {
        digits[n++] = "0123456789abcdef"[(v >> shift) & 15];
    }
    digits[n++] = '"';
    sb_raw(b, digits, n);
}

static void sb_escape_unit(sbuf *b, unsigned v)
{
    char e[6] = {'\\', 'u', 0, 0, 0, 0};
    for (int i = 0; i < 4; i++) {
        e[2 + i] = "0123456789abcdef"[(v >> (12 - 4 * i)) & 15];
    }
    sb_raw(b, e, 6);
}

/* Characters that must not reach a terminal or a log raw, beyond JSON's own rules: C0, DEL,
 * C1, the line/paragraph separators, bidi controls and the BOM. */
static BOOL needs_escape(unsigned c)
{
    return c < 0x20 || (c >= 0x7F && c <= 0x9F) || c == 0x2028 || c == 0x2029 ||
           (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069) || c == 0x200E ||
           c == 0x200F || c == 0xFEFF;
}

/* A JSON string from UTF-16 text: proper pairs become UTF-8, lone surrogates and
 * non-printable characters become \u escapes, so the line stays valid JSON and printable. */
static void sb_json_wide(sbuf *b, const WCHAR *s, size_t n)
{
    sb_raw(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned c = s[i];
        char u[4];
        if (c == '"') {
            sb_raw(b, "\\\"", 2);
        } else if (c == '\\') {
            sb_raw(b, "\\\\", 2);
        } else if (c == '\n') {
            sb_raw(b, "\\n", 2);
        } else if (c == '\r') {
            sb_raw(b, "\\r", 2);
        } else if (c == '\t') {
            sb_raw(b, "\\t", 2);
        } else if (needs_escape(c)) {
            sb_escape_unit(b, c);
        } else if (c < 0x80) {
            u[0] = (char)c;
            sb_raw(b, u, 1);
        } else if (c < 0x800) {
            u[0] = (char)(0xC0 | (c >> 6));
            u[1] = (char)(0x80 | (c & 0x3F));
            sb_raw(b, u, 2);
        } else if (c >= 0xD800 && c <= 0xDBFF && i + 1 < n && s[i + 1] >= 0xDC00 &&
                   s[i + 1] <= 0xDFFF) {
            unsigned cp = 0x10000 + ((c - 0xD800) << 10) + (s[i + 1] - 0xDC00);
            u[0] = (char)(0xF0 | (cp >> 18));
            u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
            u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
            u[3] = (char)(0x80 | (cp & 0x3F));
            sb_raw(b, u, 4);
            i++;
        } else if (c >= 0xD800 && c <= 0xDFFF) {
            sb_escape_unit(b, c);
        } else {
            u[0] = (char)(0xE0 | (c >> 12));
            u[1] = (char)(0x80 | ((c >> 6) & 0x3F));
            u[2] = (char)(0x80 | (c & 0x3F));
            sb_raw(b, u, 3);
        }
    }
    sb_raw(b, "\"", 1);
}

static size_t wide_len(const WCHAR *s)
{
    size_t n = 0;
    if (s) {
        while (s[n]) {
            n++;
        }
    }
    return n;
}

/* Field helpers: each writes ,"key":value. Keys are ASCII literals from this file. */
static void f_key(sbuf *b, const char *key)
{
    sb_raw(b, ",\"", 2);
    sb_str(b, key);
    sb_raw(b, "\":", 2);
}
static void f_u(sbuf *b, const char *key, ULONGLONG v)
{
    f_key(b, key);
    sb_u64(b, v);
}
static void f_i(sbuf *b, const char *key, LONGLONG v)
{
    f_key(b, key);
    sb_i64(b, v);
}
static void f_b(sbuf *b, const char *key, BOOL v)
{
    f_key(b, key);
    sb_str(b, v ? "true" : "false");
}
static void f_null(sbuf *b, const char *key)
{
    f_key(b, key);
    sb_str(b, "null");
}
static void f_ascii(sbuf *b, const char *key, const char *v)
{
    f_key(b, key);
    sb_raw(b, "\"", 1);
    sb_str(b, v); /* only literals from this file, which need no escaping */
    sb_raw(b, "\"", 1);
}
static void f_wide(sbuf *b, const char *key, const WCHAR *v, size_t n)
{
    f_key(b, key);
    if (v) {
        sb_json_wide(b, v, n);
    } else {
        sb_str(b, "null");
    }
}
static void f_wstr(sbuf *b, const char *key, const WCHAR *v)
{
    f_wide(b, key, v, wide_len(v));
}
static void f_ptr(sbuf *b, const char *key, const void *p)
{
    f_key(b, key);
    sb_hex_string(b, (ULONG_PTR)p);
}

/* ---------------------------------------------------------------------------------------
 * Globals and the record log
 * ------------------------------------------------------------------------------------- */

static CRITICAL_SECTION g_lock;
static HANDLE g_heap;          /* the state and every block handed to the caller */
static ULONGLONG g_start_tick; /* GetTickCount64 at DLL_PROCESS_ATTACH */
static ULONGLONG g_seq;
static HANDLE g_log = INVALID_HANDLE_VALUE;
static BOOL g_log_tried;
static ULONGLONG g_violations;

static ULONGLONG now_ms(void)
{
    return GetTickCount64() - g_start_tick;
}

static LONGLONG now_filetime(void)
{
    FILETIME ft;
    GetSystemTimeAsFileTime(&ft);
    return ((LONGLONG)ft.dwHighDateTime << 32) | ft.dwLowDateTime;
}

/* A path from the environment or the state as a Windows path: a Unix absolute path
 * ("/tmp/x") is taken as the same path on drive Z:, which a fresh WINEPREFIX maps to "/". */
static WCHAR *windows_path(const WCHAR *p)
{
    size_t n = wide_len(p);
    WCHAR *out;
    if (!p) {
        return NULL;
    }
    out = HeapAlloc(g_heap, 0, (n + 3) * sizeof(WCHAR));
    if (!out) {
        return NULL;
    }
    if (p[0] != '/') {
        lstrcpyW(out, p);
        return out;
    }
    out[0] = 'Z';
    out[1] = ':';
    for (size_t i = 0; i <= n; i++) {
        out[2 + i] = p[i] == '/' ? '\\' : p[i];
    }
    return out;
}

static WCHAR *env_path(const WCHAR *name)
{
    DWORD n = GetEnvironmentVariableW(name, NULL, 0);
    WCHAR *raw;
    if (n == 0) {
        return NULL;
    }
    raw = HeapAlloc(g_heap, 0, (n + 1) * sizeof(WCHAR));
    if (!raw || GetEnvironmentVariableW(name, raw, n) == 0) {
        return NULL;
    }
    return windows_path(raw);
}

static void log_write(sbuf *b)
{
    DWORD written;
    if (!g_log_tried) {
        WCHAR *path;
        g_log_tried = TRUE;
        path = env_path(L"WTS_STANDIN_LOG");
        if (path) {
            g_log = CreateFileW(path, FILE_APPEND_DATA, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                                OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
        }
    }
    if (g_log != INVALID_HANDLE_VALUE && b->p) {
        /* One WriteFile per line: a line survives the process being killed right after. */
        WriteFile(g_log, b->p, (DWORD)b->len, &written, NULL);
    }
}

/* A record line is built as its fields, then numbered and timed when written, so the log's
 * lines are in seq order even when a call waits and other lines are written meanwhile. */
static void rec_start(sbuf *b, const char *fn)
{
    b->p = NULL;
    b->len = b->cap = 0;
    f_ascii(b, "fn", fn);
}

static void rec_end(sbuf *b)
{
    sbuf line = {NULL, 0, 0};
    sb_str(&line, "{\"seq\":");
    sb_u64(&line, ++g_seq);
    f_u(&line, "caller_pid", GetCurrentProcessId()); /* "pid" is a call argument */
    f_u(&line, "t_ms", now_ms());
    if (b->p) {
        sb_raw(&line, b->p, b->len);
        HeapFree(GetProcessHeap(), 0, b->p);
        b->p = NULL;
    }
    sb_raw(&line, "}\n", 2);
    log_write(&line);
    if (line.p) {
        HeapFree(GetProcessHeap(), 0, line.p);
    }
}

static void rec_result(sbuf *b, BOOL result, DWORD error)
{
    f_b(b, "result", result);
    f_u(b, "error", result ? 0 : error);
    rec_end(b);
}

/* A separate "violation" line: the caller broke a documented rule (memory ownership, handle
 * use). Scenarios assert there are none. */
static void rec_violation(const char *caller_fn, const char *kind, const void *pointer,
                          const char *detail_key, ULONGLONG detail)
{
    sbuf b;
    g_violations++;
    rec_start(&b, "violation");
    f_ascii(&b, "by", caller_fn);
    f_ascii(&b, "kind", kind);
    if (pointer) {
        f_ptr(&b, "pointer", pointer);
    }
    if (detail_key) {
        f_u(&b, detail_key, detail);
    }
    rec_end(&b);
}

/* ---------------------------------------------------------------------------------------
 * The state
 * ------------------------------------------------------------------------------------- */

typedef struct {
    DWORD id;
    WCHAR *station, *user, *domain, *client_name, *client_address_text;
    DWORD address_family;
    BYTE address[20];
    USHORT protocol;
    ULONG client_build;
    int state;
    LONG flags;
    LONGLONG logon, connect, disconnect, last_input; /* FILETIME units; 0 = unknown */
    DWORD logoff_delay_ms, disconnect_delay_ms, bwait_hang_ms;
    BOOL refuse_logoff, refuse_disconnect;
    DWORD logoff_error, disconnect_error;
    DWORD message_response, message_delay_ms, message_error;
    /* dynamic */
    BOOL gone, logoff_pending, disconnect_pending;
    ULONGLONG logoff_due, disconnect_due;
} session;

typedef struct {
    DWORD pid;
    DWORD session;
    BYTE *sid;
    WCHAR *sid_text;
    WCHAR *name;
    BOOL real, self, survives_logoff;
    HANDLE handle; /* real processes: opened once at load, so a reused pid is never hit */
    DWORD terminate_error;
    DWORD reuse_from_enum;
    ULONGLONG reuse_from_ms;
    BOOL has_reuse;
    DWORD reuse_session;
    BYTE *reuse_sid;
    WCHAR *reuse_sid_text;
    WCHAR *reuse_name;
    BOOL gone;
} proc;

typedef struct server {
    WCHAR *name;
    BOOL is_local;
    struct server *alias_of;
    BOOL unreachable, open_returns_null;
    DWORD unreachable_error, not_found_error;
    BOOL admin, query_own_only, processes_deny;
    WCHAR *caller_user, *caller_domain;
    BYTE *caller_sid;
    session *sessions;
    size_t session_count;
    proc *procs;
    size_t proc_count;
    DWORD enum_count; /* process enumerations so far (for "reuse") */
} server;

static server *g_servers;
static size_t g_server_count;
static server *g_local;
static DWORD g_current_session;
static BOOL g_state_tried, g_state_ok;
static char g_state_error[256];

typedef struct {
    const json_value *obj;
    const char *where;
    BOOL ok;
} reader;

static void state_fail(reader *r, const char *what, const char *key)
{
    size_t n = 0;
    const char *parts[] = {r->where, ": ", what, key ? " " : "", key ? key : ""};
    if (!r->ok) {
        return;
    }
    r->ok = FALSE;
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        for (const char *s = parts[i]; *s && n + 1 < sizeof g_state_error; s++) {
            g_state_error[n++] = *s;
        }
    }
    g_state_error[n] = 0;
}

/* Unknown keys are errors, so a typo in a scenario's state does not silently do nothing. */
static void check_keys(reader *r, const char *const *allowed)
{
    if (!r->obj || r->obj->type != JSON_OBJECT) {
        state_fail(r, "expected an object", NULL);
        return;
    }
    for (size_t i = 0; i < r->obj->count; i++) {
        const WCHAR *k = r->obj->keys[i];
        BOOL known = FALSE;
        for (const char *const *a = allowed; *a; a++) {
            if (json_wide_equals_ascii(k, wide_len(k), *a, FALSE)) {
                known = TRUE;
            }
        }
        if (!known) {
            state_fail(r, "unknown key (see README.md)", NULL);
        }
    }
}

static LONGLONG get_int(reader *r, const char *key, LONGLONG fallback)
{
    const json_value *v = json_member(r->obj, key);
    if (!v || v->type == JSON_NULL) {
        return fallback;
    }
    if (v->type == JSON_BOOL) {
        return v->boolean;
    }
    if (v->type != JSON_NUMBER || !v->is_integer) {
        state_fail(r, "expected an integer:", key);
        return fallback;
    }
    return v->integer;
}

static BOOL has(reader *r, const char *key)
{
    const json_value *v = json_member(r->obj, key);
    return v && v->type != JSON_NULL;
}

static BOOL get_bool(reader *r, const char *key, BOOL fallback)
{
    const json_value *v = json_member(r->obj, key);
    if (!v || v->type == JSON_NULL) {
        return fallback;
    }
    if (v->type != JSON_BOOL) {
        state_fail(r, "expected true or false:", key);
        return fallback;
    }
    return v->boolean;
}

static WCHAR *empty_string(void)
{
    return HeapAlloc(g_heap, HEAP_ZERO_MEMORY, sizeof(WCHAR));
}

/* A string member; fallback NULL means "absent stays NULL". */
static WCHAR *get_string(reader *r, const char *key, BOOL empty_if_absent)
{
    const json_value *v = json_member(r->obj, key);
    if (!v || v->type == JSON_NULL) {
        return empty_if_absent ? empty_string() : NULL;
    }
    if (v->type != JSON_STRING) {
        state_fail(r, "expected a string:", key);
        return empty_if_absent ? empty_string() : NULL;
    }
    return v->string;
}

/* A SID string converted to a SID copied into the private heap. */
static BYTE *parse_sid(reader *r, const WCHAR *text, const char *key)
{
    PSID tmp = NULL;
    BYTE *sid;
    DWORD n;
    if (!text) {
        return NULL;
    }
    if (!ConvertStringSidToSidW(text, &tmp)) {
        state_fail(r, "not a SID string:", key);
        return NULL;
    }
    n = GetLengthSid(tmp);
    sid = HeapAlloc(g_heap, 0, n);
    if (sid) {
        CopySid(n, sid, tmp);
    }
    LocalFree(tmp);
    return sid;
}

static const char *const k_state_names[] = {"WTSActive", "WTSConnected", "WTSConnectQuery",
                                            "WTSShadow", "WTSDisconnected", "WTSIdle",
                                            "WTSListen", "WTSReset", "WTSDown", "WTSInit"};

static int get_state(reader *r, const char *key, int fallback)
{
    const json_value *v = json_member(r->obj, key);
    if (!v || v->type == JSON_NULL) {
        return fallback;
    }
    if (v->type == JSON_NUMBER && v->is_integer && v->integer >= 0 && v->integer <= 9) {
        return (int)v->integer;
    }
    if (v->type == JSON_STRING) {
        for (int i = 0; i < 10; i++) {
            if (json_wide_equals_ascii(v->string, v->length, k_state_names[i], FALSE)) {
                return i;
            }
        }
    }
    state_fail(r, "expected a WTS_CONNECTSTATE_CLASS name or 0..9:", key);
    return fallback;
}

/* A time: "<name>_time" in Unix seconds (0 = unknown) or "<name>_ago" in seconds before the
 * state was loaded. Returns FILETIME units (100 ns since 1601), 0 when unknown. */
static LONGLONG get_time(reader *r, const char *time_key, const char *ago_key, LONGLONG load_ft)
{
    if (has(r, time_key)) {
        LONGLONG s = get_int(r, time_key, 0);
        return s > 0 ? s * 10000000LL + UNIX_EPOCH_AS_FILETIME : 0;
    }
    if (ago_key && has(r, ago_key)) {
        LONGLONG s = get_int(r, ago_key, 0);
        return load_ft - s * 10000000LL;
    }
    return 0;
}

static BOOL parse_ipv4(const WCHAR *s, BYTE out[4])
{
    for (int part = 0; part < 4; part++) {
        unsigned v = 0;
        int digits = 0;
        while (*s >= '0' && *s <= '9' && digits < 3) {
            v = v * 10 + (*s++ - '0');
            digits++;
        }
        if (digits == 0 || v > 255) {
            return FALSE;
        }
        out[part] = (BYTE)v;
        if (part < 3 && *s++ != '.') {
            return FALSE;
        }
    }
    return *s == 0;
}

static BOOL parse_ipv6(const WCHAR *s, BYTE out[16])
{
    USHORT head[8], tail[8];
    int nh = 0, nt = 0;
    BOOL gap = FALSE;
    if (s[0] == ':' && s[1] == ':') {
        gap = TRUE;
        s += 2;
    }
    while (*s) {
        unsigned v = 0;
        int digits = 0;
        while (digits < 4) {
            int h = (*s >= '0' && *s <= '9')   ? *s - '0'
                    : (*s >= 'a' && *s <= 'f') ? *s - 'a' + 10
                    : (*s >= 'A' && *s <= 'F') ? *s - 'A' + 10
                                               : -1;
            if (h < 0) {
                break;
            }
            v = v * 16 + h;
            s++;
            digits++;
        }
        if (digits == 0 || nh + nt >= 8) {
            return FALSE;
        }
        if (gap) {
            tail[nt++] = (USHORT)v;
        } else {
            head[nh++] = (USHORT)v;
        }
        if (*s == ':') {
            s++;
            if (*s == ':') {
                if (gap) {
                    return FALSE;
                }
                gap = TRUE;
                s++;
            } else if (*s == 0) {
                return FALSE;
            }
        } else if (*s) {
            return FALSE;
        }
    }
    if (!gap && nh != 8) {
        return FALSE;
    }
    ZeroMemory(out, 16);
    for (int i = 0; i < nh; i++) {
        out[2 * i] = (BYTE)(head[i] >> 8);
        out[2 * i + 1] = (BYTE)head[i];
    }
    for (int i = 0; i < nt; i++) {
        int at = 8 - nt + i;
        out[2 * at] = (BYTE)(tail[i] >> 8);
        out[2 * at + 1] = (BYTE)tail[i];
    }
    return TRUE;
}

static const char *const k_session_keys[] = {
    "id", "station", "user", "domain", "state", "protocol", "client_name", "client_address",
    "client_build", "locked", "logon_time", "logon_ago", "connect_time", "connect_ago",
    "disconnect_time", "disconnect_ago", "last_input_time", "last_input_ago", "idle",
    "logoff_delay_ms", "refuse_logoff", "logoff_error", "disconnect_delay_ms",
    "refuse_disconnect", "disconnect_error", "bwait_hang_ms", "message_response",
    "message_delay_ms", "message_error", NULL};

static void load_session(reader *r, session *s, LONGLONG load_ft)
{
    const json_value *locked;
    check_keys(r, k_session_keys);
    if (!has(r, "id")) {
        state_fail(r, "missing", "id");
    }
    s->id = (DWORD)get_int(r, "id", 0);
    s->station = get_string(r, "station", TRUE);
    s->user = get_string(r, "user", TRUE);
    s->domain = get_string(r, "domain", TRUE);
    s->state = get_state(r, "state", WTSActive);
    s->protocol = (USHORT)get_int(r, "protocol", 0);
    s->client_name = get_string(r, "client_name", TRUE);
    s->client_address_text = get_string(r, "client_address", TRUE);
    s->client_build = (ULONG)get_int(r, "client_build", 0);
    if (s->client_address_text[0] == 0) {
        s->address_family = AF_UNSPEC;
    } else if (parse_ipv4(s->client_address_text, s->address + 2)) {
        /* WTS_INFO_CLASS: "The IP address is offset by two bytes from the start of the
         * Address member of the WTS_CLIENT_ADDRESS structure." */
        s->address_family = AF_INET;
    } else if (parse_ipv6(s->client_address_text, s->address)) {
        /* WTS_CLIENT_ADDRESS: for AF_INET6, Address holds the raw 16 bytes. */
        s->address_family = AF_INET6;
    } else {
        state_fail(r, "client_address is neither IPv4 nor IPv6 text", NULL);
    }
    locked = json_member(r->obj, "locked");
    s->flags = (LONG)WTS_SESSIONSTATE_UNKNOWN;
    if (locked && locked->type == JSON_BOOL) {
        s->flags = locked->boolean ? WTS_SESSIONSTATE_LOCK : WTS_SESSIONSTATE_UNLOCK;
    } else if (locked && locked->type != JSON_NULL) {
        state_fail(r, "expected true, false or null:", "locked");
    }
    s->logon = get_time(r, "logon_time", "logon_ago", load_ft);
    s->connect = get_time(r, "connect_time", "connect_ago", load_ft);
    s->disconnect = get_time(r, "disconnect_time", "disconnect_ago", load_ft);
    s->last_input = get_time(r, "last_input_time", "last_input_ago", load_ft);
    if (!s->last_input && has(r, "idle")) {
        s->last_input = load_ft - get_int(r, "idle", 0) * 10000000LL;
    }
    s->logoff_delay_ms = (DWORD)get_int(r, "logoff_delay_ms", 0);
    s->refuse_logoff = get_bool(r, "refuse_logoff", FALSE);
    s->logoff_error = (DWORD)get_int(r, "logoff_error", 0);
    s->disconnect_delay_ms = (DWORD)get_int(r, "disconnect_delay_ms", 0);
    s->refuse_disconnect = get_bool(r, "refuse_disconnect", FALSE);
    s->disconnect_error = (DWORD)get_int(r, "disconnect_error", 0);
    s->bwait_hang_ms = (DWORD)get_int(r, "bwait_hang_ms", STANDIN_DEFAULT_BWAIT_HANG_MS);
    s->message_response = (DWORD)get_int(r, "message_response", IDOK);
    s->message_delay_ms = (DWORD)get_int(r, "message_delay_ms", 0);
    s->message_error = (DWORD)get_int(r, "message_error", 0);
}

static DWORD read_pid_file(reader *r, WCHAR *path)
{
    HANDLE f = CreateFileW(windows_path(path), GENERIC_READ,
                           FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                           OPEN_EXISTING, 0, NULL);
    char text[32];
    DWORD got = 0, pid = 0;
    if (f == INVALID_HANDLE_VALUE) {
        state_fail(r, "cannot open", "pid_file");
        return 0;
    }
    ReadFile(f, text, sizeof text - 1, &got, NULL);
    CloseHandle(f);
    for (DWORD i = 0; i < got && text[i] >= '0' && text[i] <= '9'; i++) {
        pid = pid * 10 + (DWORD)(text[i] - '0');
    }
    if (pid == 0) {
        state_fail(r, "no pid in", "pid_file");
    }
    return pid;
}

static WCHAR *base_name_copy(const WCHAR *path)
{
    const WCHAR *base = path;
    WCHAR *out;
    for (const WCHAR *c = path; *c; c++) {
        if (*c == '\\' || *c == '/') {
            base = c + 1;
        }
    }
    out = HeapAlloc(g_heap, 0, (wide_len(base) + 1) * sizeof(WCHAR));
    if (out) {
        lstrcpyW(out, base);
    }
    return out;
}

static const char *const k_process_keys[] = {"pid", "pid_file", "real", "session", "sid", "name",
                                             "survives_logoff", "terminate_error", "reuse", NULL};
static const char *const k_reuse_keys[] = {"from_enum", "from_ms", "session", "sid", "name", NULL};

static void load_process(reader *r, proc *p, BOOL local)
{
    const json_value *reuse;
    check_keys(r, k_process_keys);
    if (!has(r, "session")) {
        state_fail(r, "missing", "session");
    }
    p->session = (DWORD)get_int(r, "session", 0);
    p->sid_text = get_string(r, "sid", FALSE);
    p->sid = parse_sid(r, p->sid_text, "sid");
    p->name = get_string(r, "name", FALSE);
    p->survives_logoff = get_bool(r, "survives_logoff", FALSE);
    p->terminate_error = (DWORD)get_int(r, "terminate_error", 0);
    if (has(r, "pid_file")) {
        p->pid = read_pid_file(r, get_string(r, "pid_file", FALSE));
        p->real = TRUE;
    } else {
        if (!has(r, "pid")) {
            state_fail(r, "missing", "pid");
        }
        p->pid = (DWORD)get_int(r, "pid", 0);
        p->real = get_bool(r, "real", FALSE);
    }
    if (p->real && !local) {
        state_fail(r, "real processes exist only on the local server", NULL);
    }
    if (p->real && r->ok) {
        /* Opened once, now: later checks and WTSTerminateProcess use this handle, never the
         * pid, so the stand-in can never hit another process that reuses the pid. */
        p->handle = OpenProcess(PROCESS_TERMINATE | PROCESS_QUERY_LIMITED_INFORMATION |
                                    SYNCHRONIZE,
                                FALSE, p->pid);
        if (!p->handle) {
            p->gone = TRUE;
        } else if (!p->name) {
            WCHAR path[MAX_PATH];
            DWORD n = MAX_PATH;
            if (QueryFullProcessImageNameW(p->handle, 0, path, &n)) {
                p->name = base_name_copy(path);
            }
        }
    }
    if (!p->name) {
        p->name = empty_string();
    }
    reuse = json_member(r->obj, "reuse");
    if (reuse && reuse->type != JSON_NULL) {
        reader rr = {reuse, "reuse", TRUE};
        check_keys(&rr, k_reuse_keys);
        p->has_reuse = TRUE;
        p->reuse_from_enum = (DWORD)get_int(&rr, "from_enum", 0);
        p->reuse_from_ms = (ULONGLONG)get_int(&rr, "from_ms", 0);
        p->reuse_session = (DWORD)get_int(&rr, "session", p->session);
        p->reuse_sid_text = get_string(&rr, "sid", FALSE);
        p->reuse_sid = parse_sid(&rr, p->reuse_sid_text, "reuse.sid");
        p->reuse_name = get_string(&rr, "name", FALSE);
        if (!p->reuse_name) {
            p->reuse_name = p->name;
        }
        if (!p->reuse_from_enum && !p->reuse_from_ms) {
            state_fail(&rr, "needs from_enum or from_ms", NULL);
        }
        if (!rr.ok) {
            r->ok = FALSE; /* rr already wrote the message */
        }
    }
}

/* The calling process itself, as Windows lists it: real pid, image name, token user. */
static void load_self(proc *p)
{
    WCHAR path[MAX_PATH];
    HANDLE token;
    p->pid = GetCurrentProcessId();
    p->session = g_current_session;
    p->real = TRUE;
    p->self = TRUE;
    p->handle = GetCurrentProcess();
    GetModuleFileNameW(NULL, path, MAX_PATH);
    path[MAX_PATH - 1] = 0;
    p->name = base_name_copy(path);
    if (OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) {
        BYTE buf[256];
        DWORD n = 0;
        if (GetTokenInformation(token, TokenUser, buf, sizeof buf, &n)) {
            PSID sid = ((TOKEN_USER *)buf)->User.Sid;
            DWORD len = GetLengthSid(sid);
            LPWSTR text = NULL;
            p->sid = HeapAlloc(g_heap, 0, len);
            if (p->sid) {
                CopySid(len, p->sid, sid);
            }
            if (ConvertSidToStringSidW(sid, &text)) {
                p->sid_text = HeapAlloc(g_heap, 0, (wide_len(text) + 1) * sizeof(WCHAR));
                if (p->sid_text) {
                    lstrcpyW(p->sid_text, text);
                }
                LocalFree(text);
            }
        }
        CloseHandle(token);
    }
}

static const char *const k_server_keys[] = {
    "sessions", "processes", "unreachable", "unreachable_error", "open_returns_null",
    "caller_is_admin", "caller", "caller_query", "non_admin_processes",
    "session_not_found_error", "alias_of", "list_self", NULL};
static const char *const k_caller_keys[] = {"user", "domain", "sid", NULL};

static void load_server(reader *r, server *s, LONGLONG load_ft)
{
    const json_value *sessions, *processes, *caller, *query, *procs_mode;
    BOOL self = FALSE;
    check_keys(r, k_server_keys);
    s->unreachable = get_bool(r, "unreachable", FALSE);
    s->unreachable_error = (DWORD)get_int(r, "unreachable_error", RPC_S_SERVER_UNAVAILABLE);
    s->open_returns_null = get_bool(r, "open_returns_null", FALSE);
    s->not_found_error =
        (DWORD)get_int(r, "session_not_found_error", STANDIN_ERR_SESSION_NOT_FOUND);
    s->admin = get_bool(r, "caller_is_admin", TRUE);
    caller = json_member(r->obj, "caller");
    if (caller && caller->type != JSON_NULL) {
        reader cr = {caller, "caller", TRUE};
        check_keys(&cr, k_caller_keys);
        s->caller_user = get_string(&cr, "user", FALSE);
        s->caller_domain = get_string(&cr, "domain", FALSE);
        s->caller_sid = parse_sid(&cr, get_string(&cr, "sid", FALSE), "caller.sid");
        if (!cr.ok) {
            r->ok = FALSE; /* cr already wrote the message */
        }
    }
    query = json_member(r->obj, "caller_query");
    if (query && query->type == JSON_STRING &&
        json_wide_equals_ascii(query->string, query->length, "own", FALSE)) {
        s->query_own_only = TRUE;
    } else if (query && !(query->type == JSON_STRING &&
                          json_wide_equals_ascii(query->string, query->length, "all", FALSE))) {
        state_fail(r, "caller_query must be \"all\" or \"own\"", NULL);
    }
    procs_mode = json_member(r->obj, "non_admin_processes");
    if (procs_mode && procs_mode->type == JSON_STRING &&
        json_wide_equals_ascii(procs_mode->string, procs_mode->length, "deny", FALSE)) {
        s->processes_deny = TRUE;
    } else if (procs_mode &&
               !(procs_mode->type == JSON_STRING &&
                 json_wide_equals_ascii(procs_mode->string, procs_mode->length, "own", FALSE))) {
        state_fail(r, "non_admin_processes must be \"own\" or \"deny\"", NULL);
    }
    if (s->is_local) {
        self = get_bool(r, "list_self", TRUE);
    } else if (has(r, "list_self")) {
        state_fail(r, "list_self is for the local server only", NULL);
    }
    sessions = json_member(r->obj, "sessions");
    processes = json_member(r->obj, "processes");
    if (sessions && sessions->type == JSON_ARRAY) {
        s->sessions = HeapAlloc(g_heap, HEAP_ZERO_MEMORY, (sessions->count + 1) * sizeof(session));
        for (size_t i = 0; i < sessions->count && r->ok; i++) {
            reader sr = {sessions->items[i], "session", TRUE};
            load_session(&sr, &s->sessions[s->session_count++], load_ft);
            if (!sr.ok) {
                r->ok = FALSE;
            }
        }
    } else if (sessions) {
        state_fail(r, "sessions must be an array", NULL);
    }
    {
        size_t n = (processes && processes->type == JSON_ARRAY) ? processes->count : 0;
        s->procs = HeapAlloc(g_heap, HEAP_ZERO_MEMORY, (n + 2) * sizeof(proc));
        if (self) {
            load_self(&s->procs[s->proc_count++]);
        }
        for (size_t i = 0; i < n && r->ok; i++) {
            reader pr = {processes->items[i], "process", TRUE};
            load_process(&pr, &s->procs[s->proc_count++], s->is_local);
            if (!pr.ok) {
                r->ok = FALSE;
            }
        }
        if (processes && processes->type != JSON_ARRAY) {
            state_fail(r, "processes must be an array", NULL);
        }
    }
}

static const char *const k_top_keys[] = {"version", "current_session", "servers", NULL};

/* Loads the state once, at the first call (not in DllMain: the test starts its real
 * processes and writes their pid files before its first WTS call). */
static BOOL ensure_state(void)
{
    WCHAR *path;
    HANDLE f;
    LARGE_INTEGER size;
    char *text;
    DWORD got = 0;
    json_value *root;
    const json_value *servers;
    reader r = {NULL, "state", TRUE};
    LONGLONG load_ft = now_filetime();
    if (g_state_tried) {
        return g_state_ok;
    }
    g_state_tried = TRUE;
    path = env_path(L"WTS_STANDIN_STATE");
    if (!path) {
        state_fail(&r, "WTS_STANDIN_STATE is not set", NULL);
        return FALSE;
    }
    f = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING, 0,
                    NULL);
    if (f == INVALID_HANDLE_VALUE) {
        state_fail(&r, "cannot open the file named by WTS_STANDIN_STATE", NULL);
        return FALSE;
    }
    if (!GetFileSizeEx(f, &size) || size.QuadPart > 16 * 1024 * 1024 ||
        !(text = HeapAlloc(g_heap, 0, (SIZE_T)size.QuadPart + 1)) ||
        !ReadFile(f, text, (DWORD)size.QuadPart, &got, NULL)) {
        CloseHandle(f);
        state_fail(&r, "cannot read the state file", NULL);
        return FALSE;
    }
    CloseHandle(f);
    root = json_parse(g_heap, text, got, g_state_error, sizeof g_state_error);
    if (!root) {
        return FALSE;
    }
    r.obj = root;
    check_keys(&r, k_top_keys);
    if (get_int(&r, "version", 1) != 1) {
        state_fail(&r, "unsupported", "version");
    }
    g_current_session = (DWORD)get_int(&r, "current_session", 0);
    servers = json_member(root, "servers");
    if (!servers || servers->type != JSON_OBJECT) {
        state_fail(&r, "missing", "servers");
        return FALSE;
    }
    g_servers = HeapAlloc(g_heap, HEAP_ZERO_MEMORY, (servers->count + 1) * sizeof(server));
    for (size_t i = 0; i < servers->count && r.ok; i++) {
        server *s = &g_servers[g_server_count++];
        reader sr = {servers->items[i], "server", TRUE};
        s->name = servers->keys[i];
        s->is_local = json_wide_equals_ascii(s->name, wide_len(s->name), "local", FALSE);
        if (s->is_local) {
            g_local = s;
        }
        load_server(&sr, s, load_ft);
        if (!sr.ok) {
            r.ok = FALSE;
        }
    }
    /* "alias_of": another name for a server in the state (e.g. the machine's own name). */
    for (size_t i = 0; i < servers->count && r.ok; i++) {
        reader sr = {servers->items[i], "server", TRUE};
        WCHAR *alias = get_string(&sr, "alias_of", FALSE);
        if (!alias) {
            continue;
        }
        for (size_t j = 0; j < g_server_count; j++) {
            if (j != i && lstrcmpW(g_servers[j].name, alias) == 0) {
                g_servers[i].alias_of = &g_servers[j];
            }
        }
        if (!g_servers[i].alias_of) {
            state_fail(&r, "alias_of names no other server", NULL);
        }
    }
    if (r.ok && !g_local) {
        state_fail(&r, "servers has no \"local\"", NULL);
    }
    g_state_ok = r.ok;
    return g_state_ok;
}

/* An ASCII message of ours that may hold quotes: escaped like any other text. */
static void f_text(sbuf *b, const char *key, const char *v)
{
    WCHAR w[300];
    size_t n = 0;
    for (; v[n] && n < 299; n++) {
        w[n] = (unsigned char)v[n];
    }
    f_wide(b, key, w, n);
}

/* ---------------------------------------------------------------------------------------
 * Server handles
 * ------------------------------------------------------------------------------------- */

typedef struct {
    server *srv; /* the state's entry for the name; NULL when the name is not in the state */
    WCHAR *name; /* as the caller passed it */
    BOOL closed;
} server_handle;

static server_handle **g_handles;
static size_t g_handle_count, g_handle_cap;

typedef struct {
    server *srv;        /* the server acted on (after alias_of) */
    const WCHAR *name;  /* for the record; NULL for a handle we never returned */
    BOOL remote;        /* reached through WTSOpenServer*, not WTS_CURRENT_SERVER_HANDLE */
    DWORD error;        /* non-zero: the call fails with this before doing anything */
    const char *violation;
} target;

static server_handle *find_handle(HANDLE h)
{
    for (size_t i = 0; i < g_handle_count; i++) {
        if ((HANDLE)g_handles[i] == h) {
            return g_handles[i];
        }
    }
    return NULL;
}

static void resolve(const char *fn, HANDLE h, target *t)
{
    server_handle *he;
    ZeroMemory(t, sizeof *t);
    t->name = L"local";
    if (!ensure_state()) {
        t->error = ERROR_INVALID_DATA;
        return;
    }
    if (!h) {
        t->srv = g_local;
        return;
    }
    he = find_handle(h);
    if (!he) {
        t->name = NULL;
        t->error = ERROR_INVALID_HANDLE;
        t->violation = "unknown_server_handle";
        rec_violation(fn, t->violation, h, NULL, 0);
        return;
    }
    t->name = he->name;
    t->remote = TRUE;
    if (he->closed) {
        t->error = ERROR_INVALID_HANDLE;
        t->violation = "server_handle_used_after_close";
        rec_violation(fn, t->violation, h, NULL, 0);
        return;
    }
    if (!he->srv) {
        /* A name the state does not know behaves as an unreachable host. */
        t->error = RPC_S_SERVER_UNAVAILABLE;
        return;
    }
    if (he->srv->unreachable) {
        t->error = he->srv->unreachable_error;
        return;
    }
    t->srv = he->srv;
    while (t->srv->alias_of) {
        t->srv = t->srv->alias_of;
    }
}

static void rec_target(sbuf *b, const target *t)
{
    f_wstr(b, "server", t->name);
    if (t->violation) {
        f_ascii(b, "violation", t->violation);
    }
    if (g_state_tried && !g_state_ok) {
        f_text(b, "state_error", g_state_error);
    }
}

/* ---------------------------------------------------------------------------------------
 * Blocks handed to the caller, and the ownership checks on freeing them
 * ------------------------------------------------------------------------------------- */

typedef struct {
    void *p;
    BOOL ex;        /* documented to need WTSFreeMemoryExW */
    int type_class; /* ex blocks: the WTS_TYPE_CLASS it holds */
    DWORD count;    /* ex blocks: the number of entries */
    const char *fn;
    ULONGLONG seq;
    BOOL freed;
} block;

static block *g_blocks;
static size_t g_block_count, g_block_cap;

/* Tracks a block; seq is filled in by the caller once its record line has a number. */
static block *track(void *p, BOOL ex, int type_class, DWORD count, const char *fn)
{
    if (g_block_count == g_block_cap) {
        size_t cap = g_block_cap ? g_block_cap * 2 : 64;
        block *n = HeapAlloc(g_heap, HEAP_ZERO_MEMORY, cap * sizeof *n);
        if (!n) {
            return NULL;
        }
        if (g_blocks) {
            CopyMemory(n, g_blocks, g_block_count * sizeof *n);
            HeapFree(g_heap, 0, g_blocks);
        }
        g_blocks = n;
        g_block_cap = cap;
    }
    block *b = &g_blocks[g_block_count++];
    b->p = p;
    b->ex = ex;
    b->type_class = type_class;
    b->count = count;
    b->fn = fn;
    return b;
}

/* The live block at p, else (through *was_freed) whether p was handed out and freed. */
static block *find_block(const void *p, BOOL *was_freed)
{
    *was_freed = FALSE;
    for (size_t i = g_block_count; i-- > 0;) {
        if (g_blocks[i].p == p) {
            if (!g_blocks[i].freed) {
                return &g_blocks[i];
            }
            *was_freed = TRUE;
        }
    }
    return NULL;
}

/* Packs strings and SIDs after an array in one allocation. With base NULL it only measures,
 * so the same filling code runs twice: once to size, once to write. */
typedef struct {
    BYTE *base;
    size_t used;
} packer;

static void *pack_bytes(packer *pk, const void *data, size_t size, size_t align)
{
    void *at;
    pk->used = (pk->used + align - 1) & ~(align - 1);
    at = pk->base ? pk->base + pk->used : NULL;
    if (at) {
        CopyMemory(at, data, size);
    }
    pk->used += size;
    return at;
}

static WCHAR *pack_wide(packer *pk, const WCHAR *s)
{
    return s ? pack_bytes(pk, s, (wide_len(s) + 1) * sizeof(WCHAR), sizeof(WCHAR)) : NULL;
}

static PSID pack_sid(packer *pk, const BYTE *sid)
{
    return sid ? pack_bytes(pk, sid, GetLengthSid((PSID)sid), sizeof(DWORD)) : NULL;
}

static void *block_alloc(size_t size)
{
    return HeapAlloc(g_heap, HEAP_ZERO_MEMORY, size ? size : 1);
}

/* ---------------------------------------------------------------------------------------
 * The simulation
 * ------------------------------------------------------------------------------------- */

typedef struct {
    DWORD session;
    const BYTE *sid;
    const WCHAR *sid_text;
    const WCHAR *name;
    BOOL reused;
} pview;

/* What the process with this pid looks like now: after "reuse" triggers, another owner. */
static void view_of(const server *s, const proc *p, pview *v)
{
    BOOL reused = p->has_reuse && ((p->reuse_from_enum && s->enum_count >= p->reuse_from_enum) ||
                                   (p->reuse_from_ms && now_ms() >= p->reuse_from_ms));
    v->reused = reused;
    v->session = reused ? p->reuse_session : p->session;
    v->sid = reused ? p->reuse_sid : p->sid;
    v->sid_text = reused ? p->reuse_sid_text : p->sid_text;
    v->name = reused ? p->reuse_name : p->name;
}

static BOOL same_text(const WCHAR *a, const WCHAR *b)
{
    return a && b && CompareStringOrdinal(a, -1, b, -1, TRUE) == CSTR_EQUAL;
}

/* The caller's own sessions, on a server where it is not an administrator. */
static BOOL callers_session(const server *s, const session *se)
{
    return s->caller_user && same_text(se->user, s->caller_user) &&
           (!s->caller_domain || same_text(se->domain, s->caller_domain));
}

static BOOL session_visible(const server *s, const session *se)
{
    return s->admin || !s->query_own_only || callers_session(s, se);
}

static BOOL process_visible(const server *s, const pview *v)
{
    return s->admin || (s->caller_sid && v->sid && EqualSid((PSID)v->sid, (PSID)s->caller_sid));
}

static BOOL may_act_on_session(const server *s, const session *se)
{
    return s->admin || callers_session(s, se);
}

static session *find_session(server *s, DWORD id)
{
    for (size_t i = 0; i < s->session_count; i++) {
        if (!s->sessions[i].gone && s->sessions[i].id == id) {
            return &s->sessions[i];
        }
    }
    return NULL;
}

/* Ends a logged-off session's processes: real ones are terminated (the test created them),
 * simulated ones leave the listing; "survives_logoff" keeps a process listed. */
static void end_session_processes(server *s, const session *se, sbuf *event)
{
    BOOL first = TRUE;
    f_key(event, "ended_pids");
    sb_raw(event, "[", 1);
    for (size_t i = 0; i < s->proc_count; i++) {
        proc *p = &s->procs[i];
        pview v;
        if (p->gone) {
            continue;
        }
        view_of(s, p, &v);
        if (v.session != se->id || p->survives_logoff) {
            continue;
        }
        if (p->self) {
            continue; /* the caller itself is never ended here; noted below */
        }
        if (p->real) {
            TerminateProcess(p->handle, 1);
            WaitForSingleObject(p->handle, 2000);
        }
        p->gone = TRUE;
        if (!first) {
            sb_raw(event, ",", 1);
        }
        first = FALSE;
        sb_u64(event, p->pid);
    }
    sb_raw(event, "]", 1);
    if (se->id == g_current_session && s->is_local) {
        f_b(event, "caller_session_ended", TRUE);
    }
}

/* Applies what became due: delayed logoffs and disconnects, real processes that exited. */
static void advance(server *s)
{
    ULONGLONG now = now_ms();
    if (!s) {
        return;
    }
    for (size_t i = 0; i < s->session_count; i++) {
        session *se = &s->sessions[i];
        if (se->gone) {
            continue;
        }
        if (se->logoff_pending && now >= se->logoff_due) {
            sbuf b;
            se->gone = TRUE;
            rec_start(&b, "event");
            f_ascii(&b, "event", "session_logged_off");
            f_wstr(&b, "server", s->name);
            f_u(&b, "session", se->id);
            end_session_processes(s, se, &b);
            rec_end(&b);
            continue;
        }
        if (se->disconnect_pending && now >= se->disconnect_due) {
            sbuf b;
            se->disconnect_pending = FALSE;
            se->state = WTSDisconnected;
            se->disconnect = now_filetime();
            rec_start(&b, "event");
            f_ascii(&b, "event", "session_disconnected");
            f_wstr(&b, "server", s->name);
            f_u(&b, "session", se->id);
            rec_end(&b);
        }
    }
    for (size_t i = 0; i < s->proc_count; i++) {
        proc *p = &s->procs[i];
        if (p->real && !p->self && !p->gone && WaitForSingleObject(p->handle, 0) == WAIT_OBJECT_0) {
            DWORD code = 0;
            sbuf b;
            GetExitCodeProcess(p->handle, &code);
            p->gone = TRUE;
            rec_start(&b, "event");
            f_ascii(&b, "event", "process_exited");
            f_wstr(&b, "server", s->name);
            f_u(&b, "pid", p->pid);
            f_u(&b, "exit_code", code);
            rec_end(&b);
        }
    }
}

/* Sleeps without holding the lock, so other threads' calls go on meanwhile. */
static void sleep_unlocked(DWORD ms)
{
    LeaveCriticalSection(&g_lock);
    Sleep(ms);
    EnterCriticalSection(&g_lock);
}

/* WTS_CURRENT_SESSION names the caller's own session. On a remote server the documentation
 * says the answer is inconsistent ("Do not use the returned data"): the stand-in answers
 * with the local current_session's id on that server and flags the call. */
static DWORD effective_session(DWORD id, const target *t, sbuf *b)
{
    f_u(b, "session", id);
    if (id != WTS_CURRENT_SESSION) {
        return id;
    }
    f_b(b, "current_session", TRUE);
    if (t->remote) {
        f_b(b, "misuse_current_session_on_remote", TRUE);
    }
    f_u(b, "effective_session", g_current_session);
    return g_current_session;
}

/* Writes the call's line, stamps the block it returned (if any) with the line's seq, unlocks
 * and sets the last error for a failure (after the log's WriteFile, which may change it). */
static void finish(sbuf *b, block *returned, BOOL result, DWORD error)
{
    rec_result(b, result, error);
    if (returned) {
        returned->seq = g_seq;
    }
    LeaveCriticalSection(&g_lock);
    if (!result) {
        SetLastError(error);
    }
}

/* ---------------------------------------------------------------------------------------
 * Servers
 * ------------------------------------------------------------------------------------- */

static HANDLE open_server(const char *fn, const WCHAR *name)
{
    sbuf b;
    server *srv = NULL;
    server_handle *he;
    EnterCriticalSection(&g_lock);
    ensure_state();
    rec_start(&b, fn);
    f_wstr(&b, "name", name);
    if (g_state_ok && name && name[0]) {
        /* "local" is reserved for WTS_CURRENT_SERVER_HANDLE; another name for the machine
         * itself is a server entry with "alias_of": "local". Names are compared without
         * regard to ASCII case, like NetBIOS names; "\\\\host" matches nothing. */
        for (size_t i = 0; i < g_server_count; i++) {
            if (!g_servers[i].is_local && same_text(g_servers[i].name, name)) {
                srv = &g_servers[i];
            }
        }
    } else if (g_state_ok) {
        srv = g_local; /* WTS_CURRENT_SERVER_NAME (NULL) */
        f_b(&b, "current_server_name", TRUE);
    }
    if (srv && srv->open_returns_null) {
        /* Windows Server 2003, Windows XP and 2000 returned NULL on failure, and NULL is
         * WTS_CURRENT_SERVER_HANDLE: a caller that does not check acts on its own machine. */
        f_b(&b, "known", TRUE);
        f_null(&b, "handle");
        finish(&b, NULL, FALSE, srv->unreachable_error);
        return NULL;
    }
    /* Not from g_heap: a handle must never share an address with a freed block. */
    he = HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, sizeof *he);
    if (he && g_handle_count == g_handle_cap) {
        size_t cap = g_handle_cap ? g_handle_cap * 2 : 16;
        server_handle **n = HeapAlloc(g_heap, 0, cap * sizeof *n);
        if (n && g_handles) {
            CopyMemory(n, g_handles, g_handle_count * sizeof *n);
        }
        g_handles = n;
        g_handle_cap = n ? cap : 0;
    }
    if (!he || !g_handles) {
        finish(&b, NULL, FALSE, ERROR_NOT_ENOUGH_MEMORY);
        return NULL;
    }
    he->srv = srv;
    if (name) {
        he->name = HeapAlloc(g_heap, 0, (wide_len(name) + 1) * sizeof(WCHAR));
        if (he->name) {
            lstrcpyW(he->name, name);
        }
    }
    g_handles[g_handle_count++] = he;
    /* Since Windows Vista the handle is returned even when the server cannot be reached;
     * the first call that uses it fails (documented: "You can test the validity of the
     * handle by using it in another function call"). */
    f_b(&b, "known", srv != NULL);
    f_b(&b, "unreachable", !srv || srv->unreachable);
    f_ptr(&b, "handle", he);
    finish(&b, NULL, TRUE, 0);
    return (HANDLE)he;
}

HANDLE WINAPI WTSOpenServerW(LPWSTR pServerName)
{
    return open_server("WTSOpenServerW", pServerName);
}

HANDLE WINAPI WTSOpenServerExW(LPWSTR pServerName)
{
    return open_server("WTSOpenServerExW", pServerName);
}

static HANDLE open_server_ansi(const char *fn, LPSTR name)
{
    WCHAR *wide = NULL;
    HANDLE h;
    if (name) {
        int n = MultiByteToWideChar(CP_ACP, 0, name, -1, NULL, 0);
        wide = HeapAlloc(GetProcessHeap(), 0, (n > 0 ? n : 1) * sizeof(WCHAR));
        if (wide) {
            wide[0] = 0;
            MultiByteToWideChar(CP_ACP, 0, name, -1, wide, n);
        }
    }
    h = open_server(fn, wide);
    if (wide) {
        HeapFree(GetProcessHeap(), 0, wide);
    }
    return h;
}

HANDLE WINAPI WTSOpenServerA(LPSTR pServerName)
{
    return open_server_ansi("WTSOpenServerA", pServerName);
}

HANDLE WINAPI WTSOpenServerExA(LPSTR pServerName)
{
    return open_server_ansi("WTSOpenServerExA", pServerName);
}

VOID WINAPI WTSCloseServer(HANDLE hServer)
{
    sbuf b;
    server_handle *he;
    EnterCriticalSection(&g_lock);
    rec_start(&b, "WTSCloseServer");
    f_ptr(&b, "handle", hServer);
    if (!hServer) {
        f_ascii(&b, "note", "WTS_CURRENT_SERVER_HANDLE needs no closing");
    } else if (!(he = find_handle(hServer))) {
        rec_violation("WTSCloseServer", "unknown_server_handle", hServer, NULL, 0);
        f_ascii(&b, "violation", "unknown_server_handle");
    } else if (he->closed) {
        rec_violation("WTSCloseServer", "server_handle_closed_twice", hServer, NULL, 0);
        f_ascii(&b, "violation", "server_handle_closed_twice");
    } else {
        he->closed = TRUE;
        f_wstr(&b, "server", he->name);
    }
    f_null(&b, "result");
    rec_end(&b);
    LeaveCriticalSection(&g_lock);
}

/* ---------------------------------------------------------------------------------------
 * Sessions
 * ------------------------------------------------------------------------------------- */

/* Opens a call on a server: lock, resolve, bring the simulation up to date, start the line. */
static void begin(const char *fn, HANDLE h, target *t, sbuf *b)
{
    EnterCriticalSection(&g_lock);
    resolve(fn, h, t);
    advance(t->srv);
    rec_start(b, fn);
    rec_target(b, t);
}

static void rec_ids_open(sbuf *b, const char *key)
{
    f_key(b, key);
    sb_raw(b, "[", 1);
}

static void rec_id(sbuf *b, BOOL *first, ULONGLONG id)
{
    if (!*first) {
        sb_raw(b, ",", 1);
    }
    *first = FALSE;
    sb_u64(b, id);
}

static size_t visible_sessions(server *s, session **out)
{
    size_t n = 0;
    for (size_t i = 0; i < s->session_count; i++) {
        if (!s->sessions[i].gone && session_visible(s, &s->sessions[i])) {
            if (out) {
                out[n] = &s->sessions[i];
            }
            n++;
        }
    }
    return n;
}

WINBOOL WINAPI WTSEnumerateSessionsW(HANDLE hServer, DWORD Reserved, DWORD Version,
                                     PWTS_SESSION_INFOW *ppSessionInfo, DWORD *pCount)
{
    target t;
    sbuf b;
    session **list;
    size_t n;
    packer pk = {NULL, 0};
    WTS_SESSION_INFOW *out;
    block *bk;
    BOOL first = TRUE;
    begin("WTSEnumerateSessionsW", hServer, &t, &b);
    f_u(&b, "reserved", Reserved);
    f_u(&b, "version", Version);
    if (t.error) {
        finish(&b, NULL, FALSE, t.error);
        return FALSE;
    }
    if (Reserved != 0 || Version != 1 || !ppSessionInfo || !pCount) {
        finish(&b, NULL, FALSE, ERROR_INVALID_PARAMETER);
        return FALSE;
    }
    n = visible_sessions(t.srv, NULL);
    list = HeapAlloc(g_heap, 0, (n + 1) * sizeof *list);
    visible_sessions(t.srv, list);
    pk.used = n * sizeof(WTS_SESSION_INFOW);
    for (size_t i = 0; i < n; i++) {
        pack_wide(&pk, list[i]->station);
    }
    out = block_alloc(pk.used);
    pk.base = (BYTE *)out;
    pk.used = n * sizeof(WTS_SESSION_INFOW);
    rec_ids_open(&b, "sessions");
    for (size_t i = 0; i < n; i++) {
        out[i].SessionId = list[i]->id;
        out[i].pWinStationName = pack_wide(&pk, list[i]->station);
        out[i].State = (WTS_CONNECTSTATE_CLASS)list[i]->state;
        rec_id(&b, &first, list[i]->id);
    }
    sb_raw(&b, "]", 1);
    HeapFree(g_heap, 0, list);
    bk = track(out, FALSE, 0, (DWORD)n, "WTSEnumerateSessionsW");
    *ppSessionInfo = out;
    *pCount = (DWORD)n;
    f_u(&b, "count", n);
    f_ptr(&b, "block", out);
    finish(&b, bk, TRUE, 0);
    return TRUE;
}

WINBOOL WINAPI WTSEnumerateSessionsExW(HANDLE hServer, DWORD *pLevel, DWORD Filter,
                                       PWTS_SESSION_INFO_1W *ppSessionInfo, DWORD *pCount)
{
    target t;
    sbuf b;
    session **list;
    size_t n;
    packer pk = {NULL, 0};
    WTS_SESSION_INFO_1W *out = NULL;
    block *bk;
    BOOL first = TRUE;
    begin("WTSEnumerateSessionsExW", hServer, &t, &b);
    if (pLevel) {
        f_u(&b, "level", *pLevel);
    } else {
        f_null(&b, "level");
    }
    f_u(&b, "filter", Filter);
    if (t.error) {
        finish(&b, NULL, FALSE, t.error);
        return FALSE;
    }
    /* pLevel and Filter are documented as reserved: "Always set this parameter to one" and
     * "Always set this parameter to zero". */
    if (!pLevel || *pLevel != 1 || Filter != 0 || !ppSessionInfo || !pCount) {
        finish(&b, NULL, FALSE, ERROR_INVALID_PARAMETER);
        return FALSE;
    }
    n = visible_sessions(t.srv, NULL);
    list = HeapAlloc(g_heap, 0, (n + 1) * sizeof *list);
    visible_sessions(t.srv, list);
    for (int pass = 0; pass < 2; pass++) {
        pk.used = n * sizeof(WTS_SESSION_INFO_1W);
        for (size_t i = 0; i < n; i++) {
            session *se = list[i];
            BOOL user = se->user[0] != 0;
            WCHAR *station = pack_wide(&pk, se->station);
            /* "If no user is logged on to the session, the string contains NULL." */
            WCHAR *uname = user ? pack_wide(&pk, se->user) : NULL;
            WCHAR *dname = user ? pack_wide(&pk, se->domain) : NULL;
            if (pass == 1) {
                out[i].ExecEnvId = se->id;
                out[i].State = (WTS_CONNECTSTATE_CLASS)se->state;
                out[i].SessionId = se->id;
                out[i].pSessionName = station;
                out[i].pHostName = NULL; /* the session runs on the server itself */
                out[i].pUserName = uname;
                out[i].pDomainName = dname;
                out[i].pFarmName = NULL;
            }
        }
        if (pass == 0) {
            out = block_alloc(pk.used);
            pk.base = (BYTE *)out;
        }
    }
    rec_ids_open(&b, "sessions");
    for (size_t i = 0; i < n; i++) {
        rec_id(&b, &first, list[i]->id);
    }
    sb_raw(&b, "]", 1);
    HeapFree(g_heap, 0, list);
    bk = track(out, TRUE, WTSTypeSessionInfoLevel1, (DWORD)n, "WTSEnumerateSessionsExW");
    *ppSessionInfo = out;
    *pCount = (DWORD)n;
    f_u(&b, "count", n);
    f_ptr(&b, "block", out);
    finish(&b, bk, TRUE, 0);
    return TRUE;
}

static void copy_fixed(WCHAR *dst, size_t cap, const WCHAR *src, BOOL *truncated)
{
    size_t n = wide_len(src);
    if (n > cap - 1) {
        n = cap - 1;
        *truncated = TRUE;
    }
    CopyMemory(dst, src, n * sizeof(WCHAR));
    dst[n] = 0;
}

static void *query_string(const WCHAR *s, DWORD *bytes)
{
    size_t n = (wide_len(s) + 1) * sizeof(WCHAR);
    void *p = block_alloc(n);
    CopyMemory(p, s, n);
    *bytes = (DWORD)n;
    return p;
}

static void *query_value(const void *v, DWORD size, DWORD *bytes)
{
    void *p = block_alloc(size);
    CopyMemory(p, v, size);
    *bytes = size;
    return p;
}

WINBOOL WINAPI WTSQuerySessionInformationW(HANDLE hServer, DWORD SessionId,
                                           WTS_INFO_CLASS WTSInfoClass, LPWSTR *ppBuffer,
                                           DWORD *pBytesReturned)
{
    target t;
    sbuf b;
    session *se;
    DWORD id, bytes = 0, error = 0;
    void *data = NULL;
    BOOL truncated = FALSE;
    block *bk;
    begin("WTSQuerySessionInformationW", hServer, &t, &b);
    f_i(&b, "info_class", (LONG)WTSInfoClass);
    id = effective_session(SessionId, &t, &b);
    if (t.error) {
        finish(&b, NULL, FALSE, t.error);
        return FALSE;
    }
    if (!ppBuffer || !pBytesReturned) {
        finish(&b, NULL, FALSE, ERROR_INVALID_PARAMETER);
        return FALSE;
    }
    se = find_session(t.srv, id);
    if (!se) {
        finish(&b, NULL, FALSE, t.srv->not_found_error);
        return FALSE;
    }
    if (!session_visible(t.srv, se)) {
        /* "To query information for another user's session, you must have Query
         * Information permission." */
        finish(&b, NULL, FALSE, ERROR_ACCESS_DENIED);
        return FALSE;
    }
    switch ((int)WTSInfoClass) {
    case WTSInitialProgram:
    case WTSApplicationName:
    case WTSWorkingDirectory:
    case WTSOEMId:
    case WTSClientDirectory:
        data = query_string(L"", &bytes);
        break;
    case WTSSessionId: {
        ULONG v = se->id;
        data = query_value(&v, sizeof v, &bytes);
        break;
    }
    case WTSUserName:
        data = query_string(se->user, &bytes);
        break;
    case WTSWinStationName:
        data = query_string(se->station, &bytes);
        break;
    case WTSDomainName:
        data = query_string(se->domain, &bytes);
        break;
    case WTSConnectState: {
        WTS_CONNECTSTATE_CLASS v = (WTS_CONNECTSTATE_CLASS)se->state;
        data = query_value(&v, sizeof v, &bytes);
        break;
    }
    case WTSClientBuildNumber: {
        ULONG v = se->client_build;
        data = query_value(&v, sizeof v, &bytes);
        break;
    }
    case WTSClientName:
        data = query_string(se->client_name, &bytes);
        break;
    case WTSClientProductId: {
        USHORT v = 0;
        data = query_value(&v, sizeof v, &bytes);
        break;
    }
    case WTSClientHardwareId: {
        ULONG v = 0; /* "WTSQuerySessionInformation will always return a value of 0." */
        data = query_value(&v, sizeof v, &bytes);
        break;
    }
    case WTSClientAddress: {
        WTS_CLIENT_ADDRESS v;
        ZeroMemory(&v, sizeof v);
        v.AddressFamily = se->address_family;
        CopyMemory(v.Address, se->address, sizeof v.Address);
        data = query_value(&v, sizeof v, &bytes);
        break;
    }
    case WTSClientDisplay: {
        WTS_CLIENT_DISPLAY v;
        ZeroMemory(&v, sizeof v);
        data = query_value(&v, sizeof v, &bytes);
        break;
    }
    case WTSClientProtocolType: {
        USHORT v = se->protocol;
        data = query_value(&v, sizeof v, &bytes);
        break;
    }
    case WTSIdleTime:
    case WTSLogonTime:
    case WTSIncomingBytes:
    case WTSOutgoingBytes:
    case WTSIncomingFrames:
    case WTSOutgoingFrames:
        /* Documented: "This value returns FALSE. ... GetLastError returns
         * ERROR_NOT_SUPPORTED." (Windows 7 / Server 2008 R2 and later) */
        error = ERROR_NOT_SUPPORTED;
        break;
    case WTSClientInfo: {
        WTSCLIENTW v;
        ZeroMemory(&v, sizeof v);
        copy_fixed(v.ClientName, CLIENTNAME_LENGTH + 1, se->client_name, &truncated);
        copy_fixed(v.Domain, DOMAIN_LENGTH + 1, se->domain, &truncated);
        copy_fixed(v.UserName, USERNAME_LENGTH + 1, se->user, &truncated);
        v.ClientAddressFamily = se->address_family;
        v.ClientBuildNumber = se->client_build;
        data = query_value(&v, sizeof v, &bytes);
        break;
    }
    case WTSSessionInfo: {
        WTSINFOW v;
        ZeroMemory(&v, sizeof v);
        v.State = (WTS_CONNECTSTATE_CLASS)se->state;
        v.SessionId = se->id;
        copy_fixed(v.WinStationName, WINSTATIONNAME_LENGTH, se->station, &truncated);
        copy_fixed(v.Domain, DOMAIN_LENGTH, se->domain, &truncated);
        copy_fixed(v.UserName, USERNAME_LENGTH + 1, se->user, &truncated);
        v.ConnectTime.QuadPart = se->connect;
        v.DisconnectTime.QuadPart = se->disconnect;
        v.LastInputTime.QuadPart = se->last_input;
        v.LogonTime.QuadPart = se->logon;
        v.CurrentTime.QuadPart = now_filetime();
        data = query_value(&v, sizeof v, &bytes);
        break;
    }
    case WTSSessionInfoEx: {
        WTSINFOEXW v;
        WTSINFOEX_LEVEL1_W *l = &v.Data.WTSInfoExLevel1;
        ZeroMemory(&v, sizeof v);
        v.Level = 1;
        l->SessionId = se->id;
        l->SessionState = (WTS_CONNECTSTATE_CLASS)se->state;
        l->SessionFlags = se->flags;
        copy_fixed(l->WinStationName, WINSTATIONNAME_LENGTH + 1, se->station, &truncated);
        copy_fixed(l->UserName, USERNAME_LENGTH + 1, se->user, &truncated);
        copy_fixed(l->DomainName, DOMAIN_LENGTH + 1, se->domain, &truncated);
        l->LogonTime.QuadPart = se->logon;
        l->ConnectTime.QuadPart = se->connect;
        l->DisconnectTime.QuadPart = se->disconnect;
        l->LastInputTime.QuadPart = se->last_input;
        l->CurrentTime.QuadPart = now_filetime();
        data = query_value(&v, sizeof v, &bytes);
        break;
    }
    case WTSConfigInfo:
    case WTSValidationInfo:
    case WTSSessionAddressV4:
        /* WTSValidationInfo: "This value is not supported."; WTSSessionAddressV4 without a
         * virtual IP: ERROR_NOT_SUPPORTED. WTSConfigInfo is not modelled. */
        error = ERROR_NOT_SUPPORTED;
        break;
    case WTSIsRemoteSession:
        /* "This value can only be used for the local machine". One BOOLEAN byte. */
        if (t.remote) {
            error = ERROR_INVALID_PARAMETER;
        } else {
            BOOLEAN v = se->protocol != WTS_PROTOCOL_TYPE_CONSOLE;
            data = query_value(&v, sizeof v, &bytes);
        }
        break;
    default:
        error = ERROR_INVALID_PARAMETER;
        break;
    }
    if (!data) {
        finish(&b, NULL, FALSE, error ? error : ERROR_NOT_ENOUGH_MEMORY);
        return FALSE;
    }
    if (truncated) {
        f_b(&b, "names_truncated", TRUE);
    }
    bk = track(data, FALSE, 0, 0, "WTSQuerySessionInformationW");
    *ppBuffer = data;
    *pBytesReturned = bytes;
    f_u(&b, "bytes", bytes);
    f_ptr(&b, "block", data);
    finish(&b, bk, TRUE, 0);
    return TRUE;
}

/* Shared by WTSLogoffSession and WTSDisconnectSession. */
static WINBOOL end_or_disconnect(const char *fn, HANDLE hServer, DWORD SessionId, WINBOOL bWait,
                                 BOOL logoff)
{
    target t;
    sbuf b;
    session *se;
    DWORD id, error, delay;
    BOOL refuse;
    ULONGLONG started = now_ms();
    begin(fn, hServer, &t, &b);
    id = effective_session(SessionId, &t, &b);
    f_b(&b, "wait", bWait != FALSE);
    if (t.error) {
        finish(&b, NULL, FALSE, t.error);
        return FALSE;
    }
    se = find_session(t.srv, id);
    if (!se) {
        finish(&b, NULL, FALSE, t.srv->not_found_error);
        return FALSE;
    }
    if (!may_act_on_session(t.srv, se)) {
        /* Logging off another user's session needs the Reset permission, disconnecting it
         * the Disconnect permission; by default only administrators have either. */
        finish(&b, NULL, FALSE, ERROR_ACCESS_DENIED);
        return FALSE;
    }
    error = logoff ? se->logoff_error : se->disconnect_error;
    if (error) {
        finish(&b, NULL, FALSE, error);
        return FALSE;
    }
    refuse = logoff ? se->refuse_logoff : se->refuse_disconnect;
    delay = logoff ? se->logoff_delay_ms : se->disconnect_delay_ms;
    if (refuse) {
        /* Accepted, and never happens. bWait TRUE would not return on Windows; the stand-in
         * returns TRUE after bwait_hang_ms, a success the caller must not believe. */
        f_b(&b, "refused", TRUE);
        if (bWait) {
            sleep_unlocked(se->bwait_hang_ms);
        }
    } else if (logoff) {
        if (!se->logoff_pending) {
            se->logoff_pending = TRUE;
            se->logoff_due = now_ms() + delay;
        }
        f_u(&b, "delay_ms", delay);
        if (bWait) {
            /* "If bWait is TRUE, the function returns when the session is logged off." */
            /* Sleep can end a tick early by GetTickCount64's clock: loop until due. */
            for (ULONGLONG now = now_ms(); now < se->logoff_due; now = now_ms()) {
                sleep_unlocked((DWORD)(se->logoff_due - now));
            }
            advance(t.srv);
        }
    } else if (se->state != WTSDisconnected) {
        if (!se->disconnect_pending) {
            se->disconnect_pending = TRUE;
            se->disconnect_due = now_ms() + delay;
        }
        f_u(&b, "delay_ms", delay);
        if (bWait) {
            for (ULONGLONG now = now_ms(); now < se->disconnect_due; now = now_ms()) {
                sleep_unlocked((DWORD)(se->disconnect_due - now));
            }
            advance(t.srv);
        }
    } else {
        f_ascii(&b, "note", "already disconnected");
    }
    f_u(&b, "waited_ms", now_ms() - started);
    finish(&b, NULL, TRUE, 0);
    return TRUE;
}

WINBOOL WINAPI WTSLogoffSession(HANDLE hServer, DWORD SessionId, WINBOOL bWait)
{
    return end_or_disconnect("WTSLogoffSession", hServer, SessionId, bWait, TRUE);
}

WINBOOL WINAPI WTSDisconnectSession(HANDLE hServer, DWORD SessionId, WINBOOL bWait)
{
    return end_or_disconnect("WTSDisconnectSession", hServer, SessionId, bWait, FALSE);
}

static void rec_message_text(sbuf *b, const char *text_key, const char *passed_key,
                             const char *actual_key, const WCHAR *s, DWORD passed)
{
    size_t n = wide_len(s);
    f_u(b, passed_key, passed);
    if (!s) {
        f_null(b, actual_key);
        f_null(b, text_key);
        return;
    }
    f_u(b, actual_key, n * sizeof(WCHAR));
    f_wide(b, text_key, s, n > STANDIN_MAX_TEXT ? STANDIN_MAX_TEXT : n);
    if (n > STANDIN_MAX_TEXT) {
        f_b(b, "text_cut_in_record", TRUE);
    }
}

WINBOOL WINAPI WTSSendMessageW(HANDLE hServer, DWORD SessionId, LPWSTR pTitle, DWORD TitleLength,
                               LPWSTR pMessage, DWORD MessageLength, DWORD Style, DWORD Timeout,
                               DWORD *pResponse, WINBOOL bWait)
{
    target t;
    sbuf b;
    session *se;
    DWORD id, response;
    ULONGLONG started = now_ms();
    begin("WTSSendMessageW", hServer, &t, &b);
    id = effective_session(SessionId, &t, &b);
    /* Byte lengths as passed and as the NUL-terminated strings really are (without the
     * NUL): "TitleLength: The length, in bytes, of the title bar string." */
    rec_message_text(&b, "title", "title_len_passed", "title_len_actual", pTitle, TitleLength);
    rec_message_text(&b, "message", "message_len_passed", "message_len_actual", pMessage,
                     MessageLength);
    f_u(&b, "style", Style);
    f_u(&b, "timeout_s", Timeout);
    f_b(&b, "wait", bWait != FALSE);
    if (TitleLength > 1024 || MessageLength > 1024) {
        /* [MS-TSTS] RpcWinStationSendMessage: TitleLength and MessageLength are
         * [range(0, 1024)]. Recorded, not enforced. */
        f_b(&b, "exceeds_rpc_range", TRUE);
    }
    if (t.error) {
        finish(&b, NULL, FALSE, t.error);
        return FALSE;
    }
    if (!pResponse || !pTitle || !pMessage) {
        finish(&b, NULL, FALSE, ERROR_INVALID_PARAMETER);
        return FALSE;
    }
    se = find_session(t.srv, id);
    if (!se) {
        finish(&b, NULL, FALSE, t.srv->not_found_error);
        return FALSE;
    }
    if (!may_act_on_session(t.srv, se)) {
        /* "To send a message to another user's session, you need to have the Message
         * permission." */
        finish(&b, NULL, FALSE, ERROR_ACCESS_DENIED);
        return FALSE;
    }
    if (se->message_error) {
        finish(&b, NULL, FALSE, se->message_error);
        return FALSE;
    }
    if (!bWait) {
        response = IDASYNC;
    } else if (Timeout && se->message_delay_ms > Timeout * 1000ULL) {
        sleep_unlocked(Timeout * 1000);
        response = IDTIMEOUT;
    } else {
        sleep_unlocked(se->message_delay_ms);
        response = se->message_response;
    }
    *pResponse = response;
    f_u(&b, "response", response);
    f_u(&b, "waited_ms", now_ms() - started);
    finish(&b, NULL, TRUE, 0);
    return TRUE;
}

/* ---------------------------------------------------------------------------------------
 * Processes
 * ------------------------------------------------------------------------------------- */

/* The processes a listing shows, in state order. filter: a session id or WTS_ANY_SESSION. */
static size_t visible_processes(server *s, DWORD filter, proc **out, pview *views)
{
    size_t n = 0;
    for (size_t i = 0; i < s->proc_count; i++) {
        proc *p = &s->procs[i];
        pview v;
        if (p->gone) {
            continue;
        }
        view_of(s, p, &v);
        if (filter != WTS_ANY_SESSION && v.session != filter) {
            continue;
        }
        if (!process_visible(s, &v)) {
            continue; /* "The caller must be a member of the Administrators group to enumerate
                       * processes that are running under another user session." */
        }
        if (out) {
            out[n] = p;
            views[n] = v;
        }
        n++;
    }
    return n;
}

static void rec_processes(sbuf *b, size_t n, proc **list, pview *views)
{
    BOOL first = TRUE, any_reused = FALSE;
    rec_ids_open(b, "pids");
    for (size_t i = 0; i < n; i++) {
        rec_id(b, &first, list[i]->pid);
        any_reused |= views[i].reused;
    }
    sb_raw(b, "]", 1);
    if (any_reused) {
        first = TRUE;
        rec_ids_open(b, "reused_pids");
        for (size_t i = 0; i < n; i++) {
            if (views[i].reused) {
                rec_id(b, &first, list[i]->pid);
            }
        }
        sb_raw(b, "]", 1);
    }
}

/* level -1: WTS_PROCESS_INFOW for WTSEnumerateProcessesW; 0 and 1: the Ex levels. */
static void *build_processes(size_t n, proc **list, pview *views, int level)
{
    size_t item = level == 1 ? sizeof(WTS_PROCESS_INFO_EXW) : sizeof(WTS_PROCESS_INFOW);
    packer pk = {NULL, 0};
    BYTE *out = NULL;
    for (int pass = 0; pass < 2; pass++) {
        pk.used = n * item;
        for (size_t i = 0; i < n; i++) {
            WCHAR *name = pack_wide(&pk, views[i].name);
            PSID sid = pack_sid(&pk, views[i].sid);
            if (pass == 0) {
                continue;
            }
            if (level == 1) {
                WTS_PROCESS_INFO_EXW *e = (WTS_PROCESS_INFO_EXW *)out + i;
                e->SessionId = views[i].session;
                e->ProcessId = list[i]->pid;
                e->pProcessName = name;
                e->pUserSid = sid;
                e->NumberOfThreads = 1;
            } else {
                WTS_PROCESS_INFOW *e = (WTS_PROCESS_INFOW *)out + i;
                e->SessionId = views[i].session;
                e->ProcessId = list[i]->pid;
                e->pProcessName = name;
                e->pUserSid = sid;
            }
        }
        if (pass == 0) {
            out = block_alloc(pk.used);
            pk.base = out;
        }
    }
    return out;
}

/* Lists processes for both enumerators; on success *out holds the block. */
static size_t list_processes(target *t, sbuf *b, DWORD filter, int level, void **out)
{
    size_t n;
    proc **list;
    pview *views;
    t->srv->enum_count++;
    f_u(b, "enumeration", t->srv->enum_count);
    n = visible_processes(t->srv, filter, NULL, NULL);
    list = HeapAlloc(g_heap, 0, (n + 1) * sizeof *list);
    views = HeapAlloc(g_heap, 0, (n + 1) * sizeof *views);
    visible_processes(t->srv, filter, list, views);
    *out = build_processes(n, list, views, level);
    rec_processes(b, n, list, views);
    HeapFree(g_heap, 0, list);
    HeapFree(g_heap, 0, views);
    return n;
}

WINBOOL WINAPI WTSEnumerateProcessesW(HANDLE hServer, DWORD Reserved, DWORD Version,
                                      PWTS_PROCESS_INFOW *ppProcessInfo, DWORD *pCount)
{
    target t;
    sbuf b;
    void *out;
    size_t n;
    block *bk;
    begin("WTSEnumerateProcessesW", hServer, &t, &b);
    f_u(&b, "reserved", Reserved);
    f_u(&b, "version", Version);
    if (t.error) {
        finish(&b, NULL, FALSE, t.error);
        return FALSE;
    }
    if (Reserved != 0 || Version != 1 || !ppProcessInfo || !pCount) {
        finish(&b, NULL, FALSE, ERROR_INVALID_PARAMETER);
        return FALSE;
    }
    if (!t.srv->admin && t.srv->processes_deny) {
        finish(&b, NULL, FALSE, ERROR_ACCESS_DENIED);
        return FALSE;
    }
    n = list_processes(&t, &b, WTS_ANY_SESSION, -1, &out);
    bk = track(out, FALSE, 0, (DWORD)n, "WTSEnumerateProcessesW");
    *ppProcessInfo = out;
    *pCount = (DWORD)n;
    f_u(&b, "count", n);
    f_ptr(&b, "block", out);
    finish(&b, bk, TRUE, 0);
    return TRUE;
}

WINBOOL WINAPI WTSEnumerateProcessesExW(HANDLE hServer, DWORD *pLevel, DWORD SessionId,
                                        LPWSTR *ppProcessInfo, DWORD *pCount)
{
    target t;
    sbuf b;
    void *out;
    size_t n;
    DWORD level, filter = SessionId;
    block *bk;
    begin("WTSEnumerateProcessesExW", hServer, &t, &b);
    if (pLevel) {
        f_u(&b, "level", *pLevel);
    } else {
        f_null(&b, "level");
    }
    f_u(&b, "session_filter", SessionId);
    f_b(&b, "any_session", SessionId == WTS_ANY_SESSION);
    if (t.error) {
        finish(&b, NULL, FALSE, t.error);
        return FALSE;
    }
    if (!pLevel || !ppProcessInfo || !pCount) {
        finish(&b, NULL, FALSE, ERROR_INVALID_PARAMETER);
        return FALSE;
    }
    level = *pLevel;
    if (level > 1) {
        /* "If you do not specify a valid value for this parameter, on output,
         * WTSEnumerateProcessesEx sets this parameter to one and returns an error." */
        *pLevel = 1;
        finish(&b, NULL, FALSE, ERROR_INVALID_PARAMETER);
        return FALSE;
    }
    if (!t.srv->admin && t.srv->processes_deny) {
        finish(&b, NULL, FALSE, ERROR_ACCESS_DENIED);
        return FALSE;
    }
    if (SessionId == WTS_CURRENT_SESSION) {
        filter = g_current_session;
        f_u(&b, "effective_session_filter", filter);
    }
    n = list_processes(&t, &b, filter, (int)level, &out);
    bk = track(out, TRUE, level == 0 ? WTSTypeProcessInfoLevel0 : WTSTypeProcessInfoLevel1,
               (DWORD)n, "WTSEnumerateProcessesExW");
    *ppProcessInfo = out;
    *pCount = (DWORD)n;
    f_u(&b, "count", n);
    f_ptr(&b, "block", out);
    finish(&b, bk, TRUE, 0);
    return TRUE;
}

WINBOOL WINAPI WTSTerminateProcess(HANDLE hServer, DWORD ProcessId, DWORD ExitCode)
{
    target t;
    sbuf b;
    proc *p = NULL;
    pview v;
    begin("WTSTerminateProcess", hServer, &t, &b);
    f_u(&b, "pid", ProcessId);
    f_u(&b, "exit_code", ExitCode);
    if (t.error) {
        finish(&b, NULL, FALSE, t.error);
        return FALSE;
    }
    for (size_t i = 0; i < t.srv->proc_count; i++) {
        if (!t.srv->procs[i].gone && t.srv->procs[i].pid == ProcessId) {
            p = &t.srv->procs[i];
        }
    }
    if (!p) {
        /* No such process (as OpenProcess says for a pid that does not exist). The
         * stand-in never touches a process that is not in its state. */
        finish(&b, NULL, FALSE, ERROR_INVALID_PARAMETER);
        return FALSE;
    }
    view_of(t.srv, p, &v);
    f_u(&b, "target_session", v.session);
    f_wstr(&b, "target_sid", v.sid_text);
    f_wstr(&b, "target_name", v.name);
    f_b(&b, "reused", v.reused);
    f_b(&b, "real", p->real);
    if (!process_visible(t.srv, &v)) {
        finish(&b, NULL, FALSE, ERROR_ACCESS_DENIED);
        return FALSE;
    }
    if (p->terminate_error) {
        finish(&b, NULL, FALSE, p->terminate_error);
        return FALSE;
    }
    if (p->self) {
        /* As on Windows: the caller ends itself. The line is written first. */
        f_b(&b, "self", TRUE);
        finish(&b, NULL, TRUE, 0);
        TerminateProcess(GetCurrentProcess(), ExitCode);
        return TRUE;
    }
    if (p->real) {
        if (!TerminateProcess(p->handle, ExitCode)) {
            DWORD error = GetLastError();
            finish(&b, NULL, FALSE, error);
            return FALSE;
        }
        /* TerminateProcess is asynchronous; wait briefly so the listing agrees. */
        WaitForSingleObject(p->handle, 2000);
    }
    p->gone = TRUE;
    finish(&b, NULL, TRUE, 0);
    return TRUE;
}

/* ---------------------------------------------------------------------------------------
 * Freeing
 * ------------------------------------------------------------------------------------- */

VOID WINAPI WTSFreeMemory(PVOID pMemory)
{
    sbuf b;
    block *bk;
    BOOL was_freed;
    EnterCriticalSection(&g_lock);
    rec_start(&b, "WTSFreeMemory");
    f_ptr(&b, "pointer", pMemory);
    if (!pMemory) {
        f_ascii(&b, "note", "NULL");
    } else if ((bk = find_block(pMemory, &was_freed))) {
        f_ascii(&b, "block_fn", bk->fn);
        f_u(&b, "block_seq", bk->seq);
        if (bk->ex) {
            /* "To free buffers that contain WTS_PROCESS_INFO_EX or WTS_SESSION_INFO_1
             * structures, you must call the WTSFreeMemoryEx function." */
            rec_violation("WTSFreeMemory", "ex_block_freed_with_WTSFreeMemory", pMemory,
                          "block_seq", bk->seq);
            f_ascii(&b, "violation", "ex_block_freed_with_WTSFreeMemory");
        }
        bk->freed = TRUE;
        HeapFree(g_heap, 0, pMemory);
    } else {
        const char *kind = was_freed ? "double_free" : "unknown_pointer";
        rec_violation("WTSFreeMemory", kind, pMemory, NULL, 0);
        f_ascii(&b, "violation", kind);
    }
    f_null(&b, "result");
    rec_end(&b);
    LeaveCriticalSection(&g_lock);
}

WINBOOL WINAPI WTSFreeMemoryExW(WTS_TYPE_CLASS WTSTypeClass, PVOID pMemory, ULONG NumberOfEntries)
{
    sbuf b;
    block *bk;
    BOOL was_freed;
    EnterCriticalSection(&g_lock);
    rec_start(&b, "WTSFreeMemoryExW");
    f_i(&b, "type_class", (LONG)WTSTypeClass);
    f_ptr(&b, "pointer", pMemory);
    f_u(&b, "entries", NumberOfEntries);
    if (!pMemory) {
        f_ascii(&b, "note", "NULL");
        finish(&b, NULL, TRUE, 0);
        return TRUE;
    }
    bk = find_block(pMemory, &was_freed);
    if (!bk) {
        const char *kind = was_freed ? "double_free" : "unknown_pointer";
        rec_violation("WTSFreeMemoryExW", kind, pMemory, NULL, 0);
        f_ascii(&b, "violation", kind);
        finish(&b, NULL, FALSE, ERROR_INVALID_PARAMETER);
        return FALSE;
    }
    f_ascii(&b, "block_fn", bk->fn);
    f_u(&b, "block_seq", bk->seq);
    bk->freed = TRUE;
    HeapFree(g_heap, 0, pMemory);
    if (!bk->ex) {
        /* "To free other buffers, you can call either the WTSFreeMemory function or the
         * WTSFreeMemoryEx function." */
        f_ascii(&b, "note", "plain block freed with WTSFreeMemoryExW (documented as allowed)");
        finish(&b, NULL, TRUE, 0);
        return TRUE;
    }
    if ((int)WTSTypeClass != bk->type_class) {
        rec_violation("WTSFreeMemoryExW", "wrong_type_class", pMemory, "expected",
                      (ULONGLONG)bk->type_class);
        f_ascii(&b, "violation", "wrong_type_class");
        f_u(&b, "expected_type_class", bk->type_class);
        finish(&b, NULL, FALSE, ERROR_INVALID_PARAMETER);
        return FALSE;
    }
    if (NumberOfEntries != bk->count) {
        rec_violation("WTSFreeMemoryExW", "wrong_entry_count", pMemory, "expected", bk->count);
        f_ascii(&b, "violation", "wrong_entry_count");
        f_u(&b, "expected_entries", bk->count);
        finish(&b, NULL, FALSE, ERROR_INVALID_PARAMETER);
        return FALSE;
    }
    finish(&b, NULL, TRUE, 0);
    return TRUE;
}

/* ---------------------------------------------------------------------------------------
 * Everything else the header declares: recorded, FALSE (or NULL), ERROR_CALL_NOT_IMPLEMENTED
 * ------------------------------------------------------------------------------------- */

static void not_implemented(const char *fn)
{
    sbuf b;
    EnterCriticalSection(&g_lock);
    rec_start(&b, fn);
    f_b(&b, "not_implemented", TRUE);
    finish(&b, NULL, FALSE, ERROR_CALL_NOT_IMPLEMENTED);
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#define NOT_IMPLEMENTED(fn, fail_value)                                                        \
    {                                                                                          \
        not_implemented(#fn);                                                                  \
        return fail_value;                                                                     \
    }

WINBOOL WINAPI WTSEnumerateServersW(LPWSTR pDomainName, DWORD Reserved, DWORD Version,
                                    PWTS_SERVER_INFOW *ppServerInfo, DWORD *pCount)
    NOT_IMPLEMENTED(WTSEnumerateServersW, FALSE)
WINBOOL WINAPI WTSEnumerateServersA(LPSTR pDomainName, DWORD Reserved, DWORD Version,
                                    PWTS_SERVER_INFOA *ppServerInfo, DWORD *pCount)
    NOT_IMPLEMENTED(WTSEnumerateServersA, FALSE)
WINBOOL WINAPI WTSEnumerateSessionsA(HANDLE hServer, DWORD Reserved, DWORD Version,
                                     PWTS_SESSION_INFOA *ppSessionInfo, DWORD *pCount)
    NOT_IMPLEMENTED(WTSEnumerateSessionsA, FALSE)
WINBOOL WINAPI WTSEnumerateSessionsExA(HANDLE hServer, DWORD *pLevel, DWORD Filter,
                                       PVOID *ppSessionInfo, DWORD *pCount)
    NOT_IMPLEMENTED(WTSEnumerateSessionsExA, FALSE)
WINBOOL WINAPI WTSEnumerateProcessesA(HANDLE hServer, DWORD Reserved, DWORD Version,
                                      PWTS_PROCESS_INFOA *ppProcessInfo, DWORD *pCount)
    NOT_IMPLEMENTED(WTSEnumerateProcessesA, FALSE)
WINBOOL WINAPI WTSEnumerateProcessesExA(HANDLE hServer, DWORD *pLevel, DWORD SessionId,
                                        LPSTR *ppProcessInfo, DWORD *pCount)
    NOT_IMPLEMENTED(WTSEnumerateProcessesExA, FALSE)
WINBOOL WINAPI WTSFreeMemoryExA(WTS_TYPE_CLASS WTSTypeClass, PVOID pMemory, ULONG NumberOfEntries)
    NOT_IMPLEMENTED(WTSFreeMemoryExA, FALSE)
WINBOOL WINAPI WTSQuerySessionInformationA(HANDLE hServer, DWORD SessionId,
                                           WTS_INFO_CLASS WTSInfoClass, LPSTR *ppBuffer,
                                           DWORD *pBytesReturned)
    NOT_IMPLEMENTED(WTSQuerySessionInformationA, FALSE)
WINBOOL WINAPI WTSQueryUserConfigW(LPWSTR pServerName, LPWSTR pUserName,
                                   WTS_CONFIG_CLASS WTSConfigClass, LPWSTR *ppBuffer,
                                   DWORD *pBytesReturned)
    NOT_IMPLEMENTED(WTSQueryUserConfigW, FALSE)
WINBOOL WINAPI WTSQueryUserConfigA(LPSTR pServerName, LPSTR pUserName,
                                   WTS_CONFIG_CLASS WTSConfigClass, LPSTR *ppBuffer,
                                   DWORD *pBytesReturned)
    NOT_IMPLEMENTED(WTSQueryUserConfigA, FALSE)
WINBOOL WINAPI WTSSetUserConfigW(LPWSTR pServerName, LPWSTR pUserName,
                                 WTS_CONFIG_CLASS WTSConfigClass, LPWSTR pBuffer, DWORD DataLength)
    NOT_IMPLEMENTED(WTSSetUserConfigW, FALSE)
WINBOOL WINAPI WTSSetUserConfigA(LPSTR pServerName, LPSTR pUserName,
                                 WTS_CONFIG_CLASS WTSConfigClass, LPSTR pBuffer, DWORD DataLength)
    NOT_IMPLEMENTED(WTSSetUserConfigA, FALSE)
WINBOOL WINAPI WTSSendMessageA(HANDLE hServer, DWORD SessionId, LPSTR pTitle, DWORD TitleLength,
                               LPSTR pMessage, DWORD MessageLength, DWORD Style, DWORD Timeout,
                               DWORD *pResponse, WINBOOL bWait)
    NOT_IMPLEMENTED(WTSSendMessageA, FALSE)
WINBOOL WINAPI WTSShutdownSystem(HANDLE hServer, DWORD ShutdownFlag)
    NOT_IMPLEMENTED(WTSShutdownSystem, FALSE)
WINBOOL WINAPI WTSWaitSystemEvent(HANDLE hServer, DWORD EventMask, DWORD *pEventFlags)
    NOT_IMPLEMENTED(WTSWaitSystemEvent, FALSE)
HANDLE WINAPI WTSVirtualChannelOpen(HANDLE hServer, DWORD SessionId, LPSTR pVirtualName)
    NOT_IMPLEMENTED(WTSVirtualChannelOpen, NULL)
HANDLE WINAPI WTSVirtualChannelOpenEx(DWORD SessionId, LPSTR pVirtualName, DWORD flags)
    NOT_IMPLEMENTED(WTSVirtualChannelOpenEx, NULL)
WINBOOL WINAPI WTSVirtualChannelClose(HANDLE hChannelHandle)
    NOT_IMPLEMENTED(WTSVirtualChannelClose, FALSE)
WINBOOL WINAPI WTSVirtualChannelRead(HANDLE hChannelHandle, ULONG TimeOut, PCHAR Buffer,
                                     ULONG BufferSize, PULONG pBytesRead)
    NOT_IMPLEMENTED(WTSVirtualChannelRead, FALSE)
WINBOOL WINAPI WTSVirtualChannelWrite(HANDLE hChannelHandle, PCHAR Buffer, ULONG Length,
                                      PULONG pBytesWritten)
    NOT_IMPLEMENTED(WTSVirtualChannelWrite, FALSE)
WINBOOL WINAPI WTSVirtualChannelPurgeInput(HANDLE hChannelHandle)
    NOT_IMPLEMENTED(WTSVirtualChannelPurgeInput, FALSE)
WINBOOL WINAPI WTSVirtualChannelPurgeOutput(HANDLE hChannelHandle)
    NOT_IMPLEMENTED(WTSVirtualChannelPurgeOutput, FALSE)
WINBOOL WINAPI WTSVirtualChannelQuery(HANDLE hChannelHandle, WTS_VIRTUAL_CLASS cls,
                                      PVOID *ppBuffer, DWORD *pBytesReturned)
    NOT_IMPLEMENTED(WTSVirtualChannelQuery, FALSE)
WINBOOL WINAPI WTSRegisterSessionNotification(HWND hWnd, DWORD dwFlags)
    NOT_IMPLEMENTED(WTSRegisterSessionNotification, FALSE)
WINBOOL WINAPI WTSUnRegisterSessionNotification(HWND hWnd)
    NOT_IMPLEMENTED(WTSUnRegisterSessionNotification, FALSE)
WINBOOL WTSRegisterSessionNotificationEx(HANDLE hServer, HWND hWnd, DWORD dwFlags)
    NOT_IMPLEMENTED(WTSRegisterSessionNotificationEx, FALSE)
WINBOOL WINAPI WTSUnRegisterSessionNotificationEx(HANDLE hServer, HWND hWnd)
    NOT_IMPLEMENTED(WTSUnRegisterSessionNotificationEx, FALSE)
WINBOOL WINAPI WTSQueryUserToken(ULONG SessionId, PHANDLE phToken)
    NOT_IMPLEMENTED(WTSQueryUserToken, FALSE)
WINBOOL WINAPI WTSConnectSessionA(ULONG LogonId, ULONG TargetLogonId, PSTR pPassword, WINBOOL bWait)
    NOT_IMPLEMENTED(WTSConnectSessionA, FALSE)
WINBOOL WINAPI WTSConnectSessionW(ULONG LogonId, ULONG TargetLogonId, PWSTR pPassword,
                                  WINBOOL bWait) NOT_IMPLEMENTED(WTSConnectSessionW, FALSE)
WINBOOL WINAPI WTSStartRemoteControlSessionA(LPSTR pTargetServerName, ULONG TargetLogonId,
                                             BYTE HotkeyVk, USHORT HotkeyModifiers)
    NOT_IMPLEMENTED(WTSStartRemoteControlSessionA, FALSE)
WINBOOL WINAPI WTSStartRemoteControlSessionW(LPWSTR pTargetServerName, ULONG TargetLogonId,
                                             BYTE HotkeyVk, USHORT HotkeyModifiers)
    NOT_IMPLEMENTED(WTSStartRemoteControlSessionW, FALSE)
WINBOOL WINAPI WTSStopRemoteControlSession(ULONG LogonId)
    NOT_IMPLEMENTED(WTSStopRemoteControlSession, FALSE)
WINBOOL WINAPI WTSEnableChildSessions(WINBOOL bEnable) NOT_IMPLEMENTED(WTSEnableChildSessions, FALSE)
WINBOOL WINAPI WTSIsChildSessionsEnabled(PBOOL pbEnabled)
    NOT_IMPLEMENTED(WTSIsChildSessionsEnabled, FALSE)
WINBOOL WINAPI WTSGetChildSessionId(PULONG pSessionId) NOT_IMPLEMENTED(WTSGetChildSessionId, FALSE)
/* Exported by Windows without a documented prototype; kept so that nothing that imports
 * them fails to load. */
WINBOOL WINAPI WTSSetSessionInformationW(void) NOT_IMPLEMENTED(WTSSetSessionInformationW, FALSE)
WINBOOL WINAPI WTSSetSessionInformationA(void) NOT_IMPLEMENTED(WTSSetSessionInformationA, FALSE)
#pragma GCC diagnostic pop

/* ---------------------------------------------------------------------------------------
 * Loading and unloading
 * ------------------------------------------------------------------------------------- */

/* The last line: blocks never freed and handles never closed. */
static void write_summary(BOOL process_exit)
{
    sbuf b;
    ULONGLONG freed = 0, open = 0;
    BOOL first = TRUE;
    rec_start(&b, "summary");
    f_b(&b, "process_exit", process_exit);
    f_b(&b, "state_loaded", g_state_ok);
    if (g_state_tried && !g_state_ok) {
        f_text(&b, "state_error", g_state_error);
    }
    for (size_t i = 0; i < g_block_count; i++) {
        freed += g_blocks[i].freed;
    }
    f_u(&b, "blocks_returned", g_block_count);
    f_u(&b, "blocks_freed", freed);
    f_u(&b, "blocks_never_freed", g_block_count - freed);
    f_key(&b, "never_freed");
    sb_raw(&b, "[", 1);
    for (size_t i = 0; i < g_block_count; i++) {
        if (g_blocks[i].freed) {
            continue;
        }
        sb_str(&b, first ? "{" : ",{");
        first = FALSE;
        sb_str(&b, "\"fn\":\"");
        sb_str(&b, g_blocks[i].fn);
        sb_str(&b, "\",\"seq\":");
        sb_u64(&b, g_blocks[i].seq);
        sb_str(&b, ",\"pointer\":");
        sb_hex_string(&b, (ULONG_PTR)g_blocks[i].p);
        sb_str(&b, "}");
    }
    sb_raw(&b, "]", 1);
    for (size_t i = 0; i < g_handle_count; i++) {
        open += !g_handles[i]->closed;
    }
    f_u(&b, "handles_opened", g_handle_count);
    f_u(&b, "handles_never_closed", open);
    f_u(&b, "violations", g_violations);
    rec_end(&b);
}

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID reserved)
{
    if (reason == DLL_PROCESS_ATTACH) {
        DisableThreadLibraryCalls(instance);
        InitializeCriticalSection(&g_lock);
        g_heap = HeapCreate(0, 0, 0);
        g_start_tick = GetTickCount64();
        return g_heap != NULL;
    }
    if (reason == DLL_PROCESS_DETACH) {
        /* At process exit other threads are gone, possibly holding the lock: try it, and
         * write the summary either way (this is the only thread left). */
        BOOL locked = TRUE;
        if (reserved) {
            locked = TryEnterCriticalSection(&g_lock);
        } else {
            EnterCriticalSection(&g_lock);
        }
        write_summary(reserved != NULL);
        if (g_log != INVALID_HANDLE_VALUE) {
            CloseHandle(g_log);
            g_log = INVALID_HANDLE_VALUE;
        }
        if (locked) {
            LeaveCriticalSection(&g_lock);
        }
    }
    return TRUE;
}
