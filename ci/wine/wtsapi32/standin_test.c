/*
 * The stand-in's self-test: a plain C program linked against the normal import library
 * (-lwtsapi32), run under Wine with the stand-in beside it. ci/wine/standin-test.sh builds
 * it, writes the state (standin_state.py) and checks the record log afterwards
 * (check_record.py); this program checks what the API hands back.
 *
 * Usage: standin_test.exe            the full run (env STANDIN_WORK: a Windows path for the
 *                                    sleepers' pid files)
 *        standin_test.exe --broken   one call against a state that must be refused
 *
 * Output: one "PASS name" or "FAIL name: why" per check, then "checks: N passed, M failed".
 */
#include "wts_ex.h"

#include <sddl.h>
#include <stdio.h>

static int g_pass, g_fail;

static void check(const char *name, BOOL ok, const char *why, unsigned long long a,
                  unsigned long long b)
{
    if (ok) {
        g_pass++;
        printf("PASS %s\n", name);
    } else {
        g_fail++;
        printf("FAIL %s: %s (%llu, %llu)\n", name, why, a, b);
    }
    fflush(stdout);
}

/* A call's result and last error, taken together right after it. */
typedef struct {
    BOOL ok;
    DWORD error;
} outcome;

static outcome after(BOOL ok)
{
    outcome o = {ok, ok ? 0 : GetLastError()};
    return o;
}

#define EXPECT_FAIL(name, o, code)                                                             \
    check(name, !(o).ok && (o).error == (DWORD)(code), "expected FALSE and error " #code,      \
          (o).ok, (o).error)

static LONGLONG unix_ft(LONGLONG s)
{
    return s * 10000000LL + 116444736000000000LL;
}

static LONGLONG now_ft(void)
{
    FILETIME ft;
    GetSystemTimeAsFileTime(&ft);
    return ((LONGLONG)ft.dwHighDateTime << 32) | ft.dwLowDateTime;
}

static BOOL wide_eq(const WCHAR *a, const WCHAR *b)
{
    return a && b && lstrcmpW(a, b) == 0;
}

/* Exact comparison, code unit by code unit (lstrcmpW is locale-aware). */
static BOOL wide_same(const WCHAR *a, const WCHAR *b)
{
    if (!a || !b) {
        return FALSE;
    }
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

/* --- sleepers ---------------------------------------------------------------------------- */

typedef struct {
    HANDLE process;
    DWORD pid;
} sleeper;

static BOOL start_sleeper(const WCHAR *work, const WCHAR *name, int seconds, sleeper *s)
{
    WCHAR exe[MAX_PATH], cmd[3 * MAX_PATH], pidfile[MAX_PATH];
    STARTUPINFOW si;
    PROCESS_INFORMATION pi;
    WCHAR *slash;
    GetModuleFileNameW(NULL, exe, MAX_PATH);
    slash = exe + lstrlenW(exe);
    while (slash > exe && slash[-1] != '\\') {
        slash--;
    }
    lstrcpyW(slash, L"standin_sleeper.exe");
    wsprintfW(pidfile, L"%s\\%s.pid", work, name);
    DeleteFileW(pidfile);
    wsprintfW(cmd, L"\"%s\" \"%s\" %d", exe, pidfile, seconds);
    ZeroMemory(&si, sizeof si);
    si.cb = sizeof si;
    if (!CreateProcessW(exe, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi)) {
        return FALSE;
    }
    CloseHandle(pi.hThread);
    s->process = pi.hProcess;
    s->pid = pi.dwProcessId;
    /* The stand-in reads the pid file when it loads the state, at the first WTS call. */
    for (int i = 0; i < 300; i++) {
        if (GetFileAttributesW(pidfile) != INVALID_FILE_ATTRIBUTES) {
            return TRUE;
        }
        Sleep(50);
    }
    return FALSE;
}

/* --- helpers over the API ---------------------------------------------------------------- */

static BOOL session_listed(HANDLE h, DWORD id)
{
    PWTS_SESSION_INFOW s;
    DWORD n;
    BOOL found = FALSE;
    if (!WTSEnumerateSessionsW(h, 0, 1, &s, &n)) {
        return FALSE;
    }
    for (DWORD i = 0; i < n; i++) {
        found |= s[i].SessionId == id;
    }
    WTSFreeMemory(s);
    return found;
}

static BOOL process_listed(HANDLE h, DWORD pid)
{
    PWTS_PROCESS_INFOW p;
    DWORD n;
    BOOL found = FALSE;
    if (!WTSEnumerateProcessesW(h, 0, 1, &p, &n)) {
        return FALSE;
    }
    for (DWORD i = 0; i < n; i++) {
        found |= p[i].ProcessId == pid;
    }
    WTSFreeMemory(p);
    return found;
}

static WCHAR g_text[512];

/* A string info class, copied into g_text; FALSE when the call failed. */
static outcome query_text(HANDLE h, DWORD id, WTS_INFO_CLASS cls, DWORD *bytes)
{
    LPWSTR buf = NULL;
    DWORD n = 0;
    outcome o = after(WTSQuerySessionInformationW(h, id, cls, &buf, &n));
    g_text[0] = 0;
    if (o.ok) {
        lstrcpynW(g_text, buf, 512);
        WTSFreeMemory(buf);
    }
    if (bytes) {
        *bytes = n;
    }
    return o;
}

static DWORD query_state(HANDLE h, DWORD id)
{
    LPWSTR buf;
    DWORD n, v = 99;
    if (WTSQuerySessionInformationW(h, id, WTSConnectState, &buf, &n)) {
        v = *(DWORD *)buf;
        WTSFreeMemory(buf);
    }
    return v;
}

static BOOL query_infoex(HANDLE h, DWORD id, WTSINFOEX_LEVEL1_W *out)
{
    LPWSTR buf;
    DWORD n;
    if (!WTSQuerySessionInformationW(h, id, WTSSessionInfoEx, &buf, &n)) {
        return FALSE;
    }
    *out = ((WTSINFOEXW *)buf)->Data.WTSInfoExLevel1;
    WTSFreeMemory(buf);
    return n == sizeof(WTSINFOEXW);
}

/* The probe the README recommends: can this caller see a process that is not its own, such
 * as LocalSystem's (session 0 always has some)? 1 = admin, 0 = not, -1 = could not tell. */
static int probe_admin(HANDLE h)
{
    DWORD level = 0, n;
    LPWSTR raw;
    WTS_PROCESS_INFOW *p;
    int admin = 0;
    if (!WTSEnumerateProcessesExW(h, &level, WTS_ANY_SESSION, &raw, &n)) {
        return GetLastError() == ERROR_ACCESS_DENIED ? 0 : -1;
    }
    p = (WTS_PROCESS_INFOW *)raw;
    for (DWORD i = 0; i < n; i++) {
        if (p[i].pUserSid && IsWellKnownSid(p[i].pUserSid, WinLocalSystemSid)) {
            admin = 1;
        }
    }
    WTSFreeMemoryExW(WTSTypeProcessInfoLevel0, raw, n);
    return admin;
}

static BOOL sid_is(PSID sid, const WCHAR *text)
{
    LPWSTR s = NULL;
    BOOL same;
    if (!sid || !ConvertSidToStringSidW(sid, &s)) {
        return FALSE;
    }
    same = wide_eq(s, text);
    LocalFree(s);
    return same;
}

#define BOB_SID L"S-1-5-21-1000-2000-3000-1002"
#define SYSTEM_SID L"S-1-5-18"

/* The hostile user name of session 7, as standin_state.py writes it. */
static const WCHAR k_hostile[] = {'Z', 'o', 0xEB, ' ', '"', 'q', '"', ' ', '\\', ' ', '\n',
                                  0x07, 0x1B, '[', '3', '1', 'm', ' ', 0xD800, ' ',
                                  0xD83D, 0xDE00, ' ', 'l', 'o', 'n', 'g', 'e', 'r', 0};

/* --- the checks -------------------------------------------------------------------------- */

static void sessions_checks(void)
{
    PWTS_SESSION_INFOW s;
    PWTS_SESSION_INFO_1W s1;
    DWORD n = 0, level = 1;
    outcome o;

    o = after(WTSEnumerateSessionsW(NULL, 0, 1, &s, &n));
    check("enum_sessions_level0", o.ok && n == 9, "9 sessions", o.ok, n);
    if (o.ok) {
        BOOL ids = TRUE;
        for (DWORD i = 0; i < n; i++) {
            ids &= s[i].SessionId == i;
        }
        check("enum_sessions_level0_ids", ids, "ids 0..8 in order", n, 0);
        check("enum_sessions_level0_fields",
              n > 7 && wide_eq(s[2].pWinStationName, L"RDP-Tcp#1") && s[2].State == WTSActive &&
                  s[7].State == WTSDisconnected && wide_eq(s[0].pWinStationName, L"Services"),
              "station names and states", n > 7 ? s[2].State : 0, n > 7 ? s[7].State : 0);
        WTSFreeMemory(s);
    }
    o = after(WTSEnumerateSessionsW(NULL, 0, 2, &s, &n));
    EXPECT_FAIL("enum_sessions_version_must_be_1", o, ERROR_INVALID_PARAMETER);

    o = after(WTSEnumerateSessionsExW(NULL, &level, 0, &s1, &n));
    check("enum_sessions_level1", o.ok && n == 9 && level == 1, "9 sessions, level kept", n, level);
    if (o.ok && n == 9) {
        check("enum_sessions_level1_names",
              s1[0].pUserName == NULL && s1[0].pDomainName == NULL &&
                  wide_eq(s1[2].pUserName, L"bob") && wide_eq(s1[2].pDomainName, L"CORP") &&
                  wide_eq(s1[2].pSessionName, L"RDP-Tcp#1") && s1[2].pHostName == NULL &&
                  s1[2].SessionId == 2 && s1[2].State == WTSActive,
              "NULL user for session 0, bob@CORP for session 2", 0, 0);
        o = after(WTSFreeMemoryExW(WTSTypeSessionInfoLevel1, s1, n));
        check("free_sessions_level1", o.ok, "WTSFreeMemoryExW with the right type and count", o.ok,
              o.error);
    }
    level = 0;
    o = after(WTSEnumerateSessionsExW(NULL, &level, 0, &s1, &n));
    EXPECT_FAIL("enum_sessions_ex_level_must_be_1", o, ERROR_INVALID_PARAMETER);
}

static void query_checks(void)
{
    DWORD bytes;
    outcome o;
    LPWSTR buf;
    WTSINFOEX_LEVEL1_W ex;

    o = query_text(NULL, 2, WTSUserName, &bytes);
    check("query_user", o.ok && wide_eq(g_text, L"bob") && bytes == 8, "bob, 8 bytes with NUL",
          o.ok, bytes);
    o = query_text(NULL, 2, WTSDomainName, NULL);
    check("query_domain", o.ok && wide_eq(g_text, L"CORP"), "CORP", o.ok, o.error);
    o = query_text(NULL, 2, WTSWinStationName, NULL);
    check("query_station", o.ok && wide_eq(g_text, L"RDP-Tcp#1"), "RDP-Tcp#1", o.ok, o.error);
    o = query_text(NULL, 2, WTSClientName, NULL);
    check("query_client_name", o.ok && wide_eq(g_text, L"BOB-LAPTOP"), "BOB-LAPTOP", o.ok, o.error);
    check("query_connect_state", query_state(NULL, 7) == WTSDisconnected, "session 7 disconnected",
          query_state(NULL, 7), 0);

    if (WTSQuerySessionInformationW(NULL, 2, WTSClientAddress, &buf, &bytes)) {
        WTS_CLIENT_ADDRESS *a = (WTS_CLIENT_ADDRESS *)buf;
        check("query_client_address_v4",
              bytes == sizeof *a && a->AddressFamily == AF_INET && a->Address[0] == 0 &&
                  a->Address[1] == 0 && a->Address[2] == 10 && a->Address[3] == 1 &&
                  a->Address[4] == 2 && a->Address[5] == 3,
              "AF_INET, 10.1.2.3 at offset 2", a->AddressFamily, a->Address[2]);
        WTSFreeMemory(buf);
    } else {
        check("query_client_address_v4", FALSE, "call failed", 0, GetLastError());
    }
    if (WTSQuerySessionInformationW(NULL, 7, WTSClientAddress, &buf, &bytes)) {
        WTS_CLIENT_ADDRESS *a = (WTS_CLIENT_ADDRESS *)buf;
        check("query_client_address_v6",
              a->AddressFamily == 23 && a->Address[0] == 0xfe && a->Address[1] == 0x80 &&
                  a->Address[14] == 0 && a->Address[15] == 1,
              "AF_INET6 fe80::1 raw", a->AddressFamily, a->Address[0]);
        WTSFreeMemory(buf);
    } else {
        check("query_client_address_v6", FALSE, "call failed", 0, GetLastError());
    }
    if (WTSQuerySessionInformationW(NULL, 2, WTSClientProtocolType, &buf, &bytes)) {
        check("query_protocol", bytes == 2 && *(USHORT *)buf == WTS_PROTOCOL_TYPE_RDP,
              "USHORT 2 (RDP)", bytes, *(USHORT *)buf);
        WTSFreeMemory(buf);
    }
    if (WTSQuerySessionInformationW(NULL, WTS_CURRENT_SESSION, WTSSessionId, &buf, &bytes)) {
        check("query_current_session_id", bytes == 4 && *(ULONG *)buf == 1,
              "current_session is 1", bytes, *(ULONG *)buf);
        WTSFreeMemory(buf);
    } else {
        check("query_current_session_id", FALSE, "call failed", 0, GetLastError());
    }
    o = query_text(NULL, WTS_CURRENT_SESSION, WTSUserName, NULL);
    check("query_current_session_user", o.ok && wide_eq(g_text, L"admin"), "admin", o.ok, o.error);

    if (WTSQuerySessionInformationW(NULL, 2, WTSSessionInfo, &buf, &bytes)) {
        WTSINFOW *w = (WTSINFOW *)buf;
        LONGLONG skew = now_ft() - w->CurrentTime.QuadPart;
        check("query_wtsinfo",
              bytes == sizeof *w && w->SessionId == 2 && w->State == WTSActive &&
                  wide_eq(w->UserName, L"bob") && wide_eq(w->Domain, L"CORP") &&
                  w->LogonTime.QuadPart == unix_ft(1700000100) &&
                  w->ConnectTime.QuadPart == unix_ft(1700000200) && skew < 600000000LL &&
                  skew > -600000000LL,
              "WTSINFOW fields", w->SessionId, (unsigned long long)w->LogonTime.QuadPart);
        WTSFreeMemory(buf);
    } else {
        check("query_wtsinfo", FALSE, "call failed", 0, GetLastError());
    }
    if (query_infoex(NULL, 2, &ex)) {
        check("query_wtsinfoex",
              ex.SessionId == 2 && ex.SessionState == WTSActive &&
                  ex.SessionFlags == WTS_SESSIONSTATE_LOCK && wide_eq(ex.UserName, L"bob") &&
                  wide_eq(ex.WinStationName, L"RDP-Tcp#1") &&
                  ex.LogonTime.QuadPart == unix_ft(1700000100) &&
                  ex.LastInputTime.QuadPart == unix_ft(1700000300) &&
                  ex.DisconnectTime.QuadPart == 0,
              "WTSINFOEX level 1 fields", ex.SessionFlags,
              (unsigned long long)ex.LastInputTime.QuadPart);
    } else {
        check("query_wtsinfoex", FALSE, "call failed", 0, GetLastError());
    }
    if (query_infoex(NULL, 1, &ex)) {
        LONGLONG idle = now_ft() - ex.LastInputTime.QuadPart;
        check("query_idle_relative",
              ex.SessionFlags == WTS_SESSIONSTATE_UNLOCK && idle > 250000000LL &&
                  idle < 600000000LL,
              "last input about 30 s ago, unlocked", ex.SessionFlags, (unsigned long long)idle);
    } else {
        check("query_idle_relative", FALSE, "call failed", 0, GetLastError());
    }
    if (query_infoex(NULL, 7, &ex)) {
        check("query_hostile_truncated",
              ex.LastInputTime.QuadPart == 0 && lstrlenW(ex.UserName) == USERNAME_LENGTH &&
                  ex.UserName[0] == 'Z' && ex.SessionFlags == (LONG)WTS_SESSIONSTATE_UNKNOWN,
              "unknown last input, name cut to 20, flags unknown", lstrlenW(ex.UserName),
              (unsigned long long)ex.LastInputTime.QuadPart);
    } else {
        check("query_hostile_truncated", FALSE, "call failed", 0, GetLastError());
    }
    o = query_text(NULL, 7, WTSUserName, &bytes);
    check("query_hostile_exact", o.ok && wide_same(g_text, k_hostile) && bytes == sizeof k_hostile,
          "exact UTF-16 incl. lone surrogate and controls", o.ok, bytes);

    o = after(WTSQuerySessionInformationW(NULL, 2, WTSIdleTime, &buf, &bytes));
    EXPECT_FAIL("query_idle_time_not_supported", o, ERROR_NOT_SUPPORTED);
    o = after(WTSQuerySessionInformationW(NULL, 2, (WTS_INFO_CLASS)99, &buf, &bytes));
    EXPECT_FAIL("query_unknown_class", o, ERROR_INVALID_PARAMETER);
    o = after(WTSQuerySessionInformationW(NULL, 77, WTSUserName, &buf, &bytes));
    EXPECT_FAIL("query_unknown_session", o, 7022);
}

static void logoff_checks(sleeper *c)
{
    outcome o;
    DWORD t0, took, code = 0;
    LPWSTR buf;
    DWORD bytes;

    t0 = GetTickCount();
    o = after(WTSLogoffSession(NULL, 3, FALSE));
    took = GetTickCount() - t0;
    check("logoff_delay_returns_at_once", o.ok && took < 400, "TRUE without waiting", o.ok, took);
    check("logoff_delay_still_listed", session_listed(NULL, 3) && process_listed(NULL, 40001),
          "session 3 and its process remain until the delay is over", 0, 0);
    Sleep(1800);
    check("logoff_delay_gone", !session_listed(NULL, 3) && !process_listed(NULL, 40001) &&
                                   !process_listed(NULL, c->pid),
          "session 3 and its processes gone after the delay", 0, 0);
    o = after(WTSQuerySessionInformationW(NULL, 3, WTSUserName, &buf, &bytes));
    EXPECT_FAIL("logoff_delay_query_fails", o, 7022);
    check("logoff_ends_real_process", WaitForSingleObject(c->process, 5000) == WAIT_OBJECT_0 &&
                                          GetExitCodeProcess(c->process, &code) && code == 1,
          "the real sleeper in session 3 was ended", code, 0);

    t0 = GetTickCount();
    o = after(WTSLogoffSession(NULL, 8, TRUE));
    took = GetTickCount() - t0;
    check("logoff_wait_blocks", o.ok && took >= 250, "bWait TRUE returns after the delay", o.ok,
          took);
    o = after(WTSQuerySessionInformationW(NULL, 8, WTSUserName, &buf, &bytes));
    EXPECT_FAIL("logoff_wait_gone_on_return", o, 7022);
    check("survives_logoff_stays_listed", process_listed(NULL, 40003),
          "a survives_logoff process outlives its session", 0, 0);

    o = after(WTSLogoffSession(NULL, 4, FALSE));
    Sleep(100);
    check("refuse_logoff_accepted", o.ok && session_listed(NULL, 4), "TRUE, session stays", o.ok,
          o.error);
    t0 = GetTickCount();
    o = after(WTSLogoffSession(NULL, 4, TRUE));
    took = GetTickCount() - t0;
    check("refuse_logoff_wait", o.ok && took >= 250 && session_listed(NULL, 4),
          "TRUE after bwait_hang_ms, session stays", o.ok, took);

    o = after(WTSLogoffSession(NULL, 5, FALSE));
    EXPECT_FAIL("logoff_error", o, ERROR_ACCESS_DENIED);
    check("logoff_error_session_stays", session_listed(NULL, 5), "session 5 stays", 0, 0);

    o = after(WTSDisconnectSession(NULL, 6, FALSE));
    check("disconnect_delay_pending", o.ok && query_state(NULL, 6) == WTSActive,
          "TRUE, still active before the delay", o.ok, query_state(NULL, 6));
    Sleep(1000);
    {
        WTSINFOEX_LEVEL1_W ex;
        BOOL have = query_infoex(NULL, 6, &ex);
        check("disconnect_delay_done",
              query_state(NULL, 6) == WTSDisconnected && have && ex.DisconnectTime.QuadPart != 0,
              "disconnected, with a disconnect time", query_state(NULL, 6), have);
    }
}

static void remote_checks(void)
{
    HANDLE h;
    PWTS_SESSION_INFOW s;
    DWORD n, bytes;
    LPWSTR buf;
    outcome o;
    const WCHAR *down[] = {L"rdsh-down", L"nosuchhost", L"\\\\rdsh-admin"};

    for (int i = 0; i < 3; i++) {
        h = WTSOpenServerW((LPWSTR)down[i]);
        check("unreachable_open_returns_handle", h != NULL, "a handle, not NULL", i, 0);
        o = after(WTSEnumerateSessionsW(h, 0, 1, &s, &n));
        EXPECT_FAIL("unreachable_enumerate", o, RPC_S_SERVER_UNAVAILABLE);
        o = after(WTSQuerySessionInformationW(h, 1, WTSUserName, &buf, &bytes));
        EXPECT_FAIL("unreachable_query", o, RPC_S_SERVER_UNAVAILABLE);
        WTSCloseServer(h);
    }
    SetLastError(0);
    h = WTSOpenServerW(L"rdsh-old");
    o.error = GetLastError();
    check("open_returns_null", h == NULL && o.error == RPC_S_SERVER_UNAVAILABLE,
          "NULL and 1722 (pre-Vista behaviour)", h != NULL, o.error);

    h = WTSOpenServerW(L"pc1");
    o = after(WTSEnumerateSessionsW(h, 0, 1, &s, &n));
    check("alias_of_local", o.ok && n >= 5 && s[1].SessionId == 1, "the local sessions", o.ok, n);
    if (o.ok) {
        WTSFreeMemory(s);
    }
    WTSCloseServer(h);

    /* Not an administrator on rdsh-user: bob sees his own session and processes only. */
    h = WTSOpenServerW(L"RDSH-USER");
    o = after(WTSEnumerateSessionsW(h, 0, 1, &s, &n));
    check("nonadmin_sessions_own_only", o.ok && n == 1 && s[0].SessionId == 2,
          "only bob's session 2", o.ok, n);
    if (o.ok) {
        WTSFreeMemory(s);
    }
    o = after(WTSQuerySessionInformationW(h, 1, WTSUserName, &buf, &bytes));
    EXPECT_FAIL("nonadmin_query_other", o, ERROR_ACCESS_DENIED);
    {
        DWORD level = 1;
        LPWSTR raw;
        o = after(WTSEnumerateProcessesExW(h, &level, WTS_ANY_SESSION, &raw, &n));
        check("nonadmin_processes_own_only",
              o.ok && n == 1 && ((WTS_PROCESS_INFO_EXW *)raw)[0].ProcessId == 60002 &&
                  sid_is(((WTS_PROCESS_INFO_EXW *)raw)[0].pUserSid, BOB_SID),
              "only bob's process 60002", o.ok, n);
        if (o.ok) {
            WTSFreeMemoryExW(WTSTypeProcessInfoLevel1, raw, n);
        }
    }
    o = after(WTSLogoffSession(h, 1, FALSE));
    EXPECT_FAIL("nonadmin_logoff_other", o, ERROR_ACCESS_DENIED);
    o = after(WTSTerminateProcess(h, 60003, 1));
    EXPECT_FAIL("nonadmin_terminate_other", o, ERROR_ACCESS_DENIED);
    {
        DWORD resp = 0;
        o = after(WTSSendMessageW(h, 1, L"t", 2, L"m", 2, MB_OK, 0, &resp, FALSE));
        EXPECT_FAIL("nonadmin_message_other", o, ERROR_ACCESS_DENIED);
    }
    o = after(WTSTerminateProcess(h, 60002, 1));
    check("nonadmin_terminate_own", o.ok, "own process", o.ok, o.error);
    o = after(WTSLogoffSession(h, 2, FALSE));
    check("nonadmin_logoff_own", o.ok, "own session", o.ok, o.error);
    check("admin_probe_nonadmin", probe_admin(h) == 0, "no LocalSystem process visible", 0, 0);
    WTSCloseServer(h);

    /* rdsh-deny: process enumeration refused outright, and error 2 for unknown sessions. */
    h = WTSOpenServerW(L"rdsh-deny");
    {
        PWTS_PROCESS_INFOW p;
        o = after(WTSEnumerateProcessesW(h, 0, 1, &p, &n));
        EXPECT_FAIL("nonadmin_processes_deny", o, ERROR_ACCESS_DENIED);
    }
    check("admin_probe_deny", probe_admin(h) == 0, "access denied reads as not admin", 0, 0);
    o = after(WTSQuerySessionInformationW(h, 9, WTSUserName, &buf, &bytes));
    EXPECT_FAIL("session_not_found_error_2", o, ERROR_FILE_NOT_FOUND);
    WTSCloseServer(h);
}

static void process_checks(sleeper *a, sleeper *b)
{
    PWTS_PROCESS_INFOW p;
    DWORD n, level, self = GetCurrentProcessId();
    LPWSTR raw;
    outcome o;
    BOOL have_self = FALSE, have_a = FALSE, have_b = FALSE, have_system = FALSE;

    o = after(WTSEnumerateProcessesW(NULL, 0, 1, &p, &n));
    for (DWORD i = 0; o.ok && i < n; i++) {
        if (p[i].ProcessId == self) {
            have_self = wide_eq(p[i].pProcessName, L"standin_test.exe") && p[i].SessionId == 1 &&
                        p[i].pUserSid != NULL;
        }
        if (p[i].ProcessId == a->pid) {
            have_a = wide_eq(p[i].pProcessName, L"standin_sleeper.exe") && p[i].SessionId == 2 &&
                     sid_is(p[i].pUserSid, BOB_SID);
        }
        have_b |= p[i].ProcessId == b->pid;
        if (p[i].ProcessId == 40002) {
            have_system = sid_is(p[i].pUserSid, SYSTEM_SID) && p[i].SessionId == 0;
        }
    }
    check("enum_processes_w", o.ok && have_self && have_a && have_b && have_system,
          "self, real sleepers, simulated SYSTEM process", o.ok,
          have_self * 1000 + have_a * 100 + have_b * 10 + have_system);
    if (o.ok) {
        WTSFreeMemory(p);
    }

    level = 0;
    o = after(WTSEnumerateProcessesExW(NULL, &level, 2, &raw, &n));
    if (o.ok) {
        WTS_PROCESS_INFOW *q = (WTS_PROCESS_INFOW *)raw;
        BOOL only2 = n > 0;
        for (DWORD i = 0; i < n; i++) {
            only2 &= q[i].SessionId == 2;
        }
        check("enum_processes_ex0_filter", only2, "session 2 only", n, 0);
        o = after(WTSFreeMemoryExW(WTSTypeProcessInfoLevel0, raw, n));
        check("free_processes_level0", o.ok, "freed with WTSTypeProcessInfoLevel0", o.ok, o.error);
    } else {
        check("enum_processes_ex0_filter", FALSE, "call failed", 0, o.error);
    }

    level = 1;
    o = after(WTSEnumerateProcessesExW(NULL, &level, WTS_ANY_SESSION, &raw, &n));
    if (o.ok) {
        WTS_PROCESS_INFO_EXW *q = (WTS_PROCESS_INFO_EXW *)raw;
        BOOL sids = FALSE;
        for (DWORD i = 0; i < n; i++) {
            if (q[i].ProcessId == a->pid) {
                sids = sid_is(q[i].pUserSid, BOB_SID) && q[i].SessionId == 2;
            }
        }
        check("enum_processes_ex1_sids", sids && level == 1, "bob's SID on the real sleeper", n,
              level);
        o = after(WTSFreeMemoryExW(WTSTypeProcessInfoLevel1, raw, n));
        check("free_processes_level1", o.ok, "freed with WTSTypeProcessInfoLevel1", o.ok, o.error);
    } else {
        check("enum_processes_ex1_sids", FALSE, "call failed", 0, o.error);
    }
    level = 7;
    o = after(WTSEnumerateProcessesExW(NULL, &level, WTS_ANY_SESSION, &raw, &n));
    check("enum_processes_bad_level", !o.ok && level == 1, "FALSE and *pLevel set to 1", o.ok,
          level);

    /* A real process that exits by itself leaves the listing. */
    check("exited_process_leaves_listing",
          WaitForSingleObject(b->process, 15000) == WAIT_OBJECT_0 && !process_listed(NULL, b->pid),
          "sleeper B exited and is no longer listed", b->pid, 0);

    o = after(WTSTerminateProcess(NULL, a->pid, 7));
    {
        DWORD code = 0;
        BOOL ended = WaitForSingleObject(a->process, 5000) == WAIT_OBJECT_0 &&
                     GetExitCodeProcess(a->process, &code) && code == 7;
        check("terminate_real_process", o.ok && ended && !process_listed(NULL, a->pid),
              "sleeper A ended with code 7 and unlisted", o.ok, code);
    }
    o = after(WTSTerminateProcess(NULL, 99999, 1));
    EXPECT_FAIL("terminate_unknown_pid", o, ERROR_INVALID_PARAMETER);
    check("admin_probe_local", probe_admin(NULL) == 1, "LocalSystem process visible", 0, 0);
}

static void reuse_checks(void)
{
    HANDLE h = WTSOpenServerW(L"rdsh-admin");
    DWORD level = 1, n, bytes;
    LPWSTR raw, buf;
    outcome o;
    for (int round = 1; round <= 3; round++) {
        BOOL as_bob = FALSE, as_system = FALSE;
        o = after(WTSEnumerateProcessesExW(h, &level, WTS_ANY_SESSION, &raw, &n));
        for (DWORD i = 0; o.ok && i < n; i++) {
            WTS_PROCESS_INFO_EXW *q = (WTS_PROCESS_INFO_EXW *)raw + i;
            if (q->ProcessId == 50002) {
                as_bob = sid_is(q->pUserSid, BOB_SID) && wide_eq(q->pProcessName, L"excel.exe");
                as_system = sid_is(q->pUserSid, SYSTEM_SID) &&
                            wide_eq(q->pProcessName, L"svchost.exe") && q->SessionId == 0;
            }
        }
        if (o.ok) {
            WTSFreeMemoryExW(WTSTypeProcessInfoLevel1, raw, n);
        }
        check(round < 3 ? "pid_reuse_before" : "pid_reuse_after", round < 3 ? as_bob : as_system,
              "pid 50002 owner switches at the 3rd enumeration", round, as_bob * 10 + as_system);
    }
    o = after(WTSTerminateProcess(h, 50002, 1));
    check("pid_reuse_terminate_recorded", o.ok, "TRUE (the record says reused)", o.ok, o.error);
    o = after(WTSTerminateProcess(h, 50003, 1));
    EXPECT_FAIL("terminate_error", o, ERROR_ACCESS_DENIED);
    check("admin_probe_admin", probe_admin(h) == 1, "LocalSystem process visible", 0, 0);
    /* WTS_CURRENT_SESSION on a remote server: documented as inconsistent, flagged. */
    o = after(WTSQuerySessionInformationW(h, WTS_CURRENT_SESSION, WTSSessionId, &buf, &bytes));
    if (o.ok) {
        WTSFreeMemory(buf);
    }
    check("current_session_on_remote_answers", o.ok, "answers (and the record flags it)", o.ok,
          o.error);
    WTSCloseServer(h);
}

static void message_checks(void)
{
    DWORD resp = 0, t0, took;
    outcome o;
    WCHAR title[] = L"Notice";
    WCHAR message[] = L"Please save your work.";
    WCHAR hostile[] = L"line1\r\nline2 \"q\" \x1b[31m";

    /* Title length without the NUL, message length with it: the record shows both. */
    o = after(WTSSendMessageW(NULL, 2, title, 12, message, 46, MB_OK | MB_ICONWARNING, 30, &resp,
                              FALSE));
    check("message_async", o.ok && resp == IDASYNC, "IDASYNC when bWait is FALSE", o.ok, resp);
    t0 = GetTickCount();
    o = after(WTSSendMessageW(NULL, 2, title, 12, hostile, sizeof hostile - 2, MB_YESNO, 30, &resp,
                              TRUE));
    took = GetTickCount() - t0;
    check("message_wait_response", o.ok && resp == IDYES && took >= 80,
          "the user's answer after message_delay_ms", resp, took);
    o = after(WTSSendMessageW(NULL, 77, title, 12, message, 44, MB_OK, 0, &resp, FALSE));
    EXPECT_FAIL("message_unknown_session", o, 7022);
    t0 = GetTickCount();
    o = after(WTSSendMessageW(NULL, 6, title, 12, message, 44, MB_OK, 1, &resp, TRUE));
    took = GetTickCount() - t0;
    check("message_timeout", o.ok && resp == IDTIMEOUT && took >= 900 && took < 4000,
          "IDTIMEOUT after the 1 s timeout", resp, took);
}

static void ownership_checks(void)
{
    PWTS_SESSION_INFO_1W s1;
    PWTS_SESSION_INFOW s;
    DWORD level = 1, n, bytes;
    LPWSTR raw, buf;
    outcome o;
    int not_ours = 0;
    HANDLE h;

    /* Deliberate mistakes, each recorded as a violation (check_record.py counts them). */
    if (WTSEnumerateSessionsExW(NULL, &level, 0, &s1, &n)) {
        WTSFreeMemory(s1); /* needs WTSFreeMemoryExW */
    }
    level = 1;
    if (WTSEnumerateProcessesExW(NULL, &level, WTS_ANY_SESSION, &raw, &n)) {
        o = after(WTSFreeMemoryExW(WTSTypeProcessInfoLevel0, raw, n)); /* wrong type */
        check("wrong_type_class_refused", !o.ok, "FALSE", o.ok, o.error);
    }
    if (WTSEnumerateSessionsExW(NULL, &level, 0, &s1, &n)) {
        o = after(WTSFreeMemoryExW(WTSTypeSessionInfoLevel1, s1, n + 1)); /* wrong count */
        check("wrong_count_refused", !o.ok, "FALSE", o.ok, o.error);
    }
    if (WTSEnumerateSessionsW(NULL, 0, 1, &s, &n)) {
        WTSFreeMemory(s);
        WTSFreeMemory(s); /* double free */
    }
    WTSFreeMemory(&not_ours); /* never handed out */
    /* Allowed: a plain block freed with WTSFreeMemoryExW. */
    if (WTSQuerySessionInformationW(NULL, 1, WTSUserName, &buf, &bytes)) {
        o = after(WTSFreeMemoryExW(WTSTypeProcessInfoLevel0, buf, 1));
        check("plain_block_free_ex_allowed", o.ok, "TRUE, no violation", o.ok, o.error);
    }
    o = after(WTSEnumerateSessionsW((HANDLE)(ULONG_PTR)0x1234, 0, 1, &s, &n));
    EXPECT_FAIL("unknown_handle", o, ERROR_INVALID_HANDLE);
    h = WTSOpenServerW(L"rdsh-admin");
    WTSCloseServer(h);
    o = after(WTSEnumerateSessionsW(h, 0, 1, &s, &n));
    EXPECT_FAIL("handle_after_close", o, ERROR_INVALID_HANDLE);
    WTSCloseServer(h); /* closed twice */

    {
        HANDLE token = NULL;
        o = after(WTSQueryUserToken(1, &token));
        EXPECT_FAIL("not_implemented_recorded", o, ERROR_CALL_NOT_IMPLEMENTED);
    }
    /* Deliberate leaks for the summary line: one block, one handle. */
    WTSQuerySessionInformationW(NULL, 1, WTSDomainName, &buf, &bytes);
    WTSOpenServerW(L"rdsh-admin");
}

static int broken_state_run(void)
{
    PWTS_SESSION_INFOW s;
    DWORD n;
    outcome o = after(WTSEnumerateSessionsW(NULL, 0, 1, &s, &n));
    EXPECT_FAIL("broken_state_refused", o, ERROR_INVALID_DATA);
    printf("checks: %d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}

int main(int argc, char **argv)
{
    WCHAR work[MAX_PATH];
    sleeper a = {0}, b = {0}, c = {0};
    if (argc > 1 && lstrcmpA(argv[1], "--broken") == 0) {
        return broken_state_run();
    }
    if (!GetEnvironmentVariableW(L"STANDIN_WORK", work, MAX_PATH)) {
        printf("FAIL setup: STANDIN_WORK is not set\n");
        return 2;
    }
    if (!start_sleeper(work, L"A", 300, &a) || !start_sleeper(work, L"B", 6, &b) ||
        !start_sleeper(work, L"C", 300, &c)) {
        printf("FAIL setup: could not start the sleepers\n");
        return 2;
    }
    sessions_checks();
    process_checks(&a, &b);
    query_checks();
    logoff_checks(&c);
    remote_checks();
    reuse_checks();
    message_checks();
    ownership_checks();
    /* Nothing the test started outlives it. */
    TerminateProcess(a.process, 0);
    TerminateProcess(b.process, 0);
    TerminateProcess(c.process, 0);
    printf("checks: %d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
