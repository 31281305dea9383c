/*
 * A real process for the stand-in's scenarios: writes its own pid (decimal) to PIDFILE, then
 * sleeps SECONDS and exits 0. Usage: standin_sleeper.exe PIDFILE SECONDS
 *
 * The pid file is written to PIDFILE.tmp first and renamed, so a reader never sees half of
 * it. Under Wine, Windows pids are not Linux pids: this is how a scenario learns them.
 */
#include <windows.h>

int wmain(int argc, WCHAR **argv)
{
    WCHAR tmp[MAX_PATH + 8];
    char text[16];
    int n = 0;
    DWORD pid = GetCurrentProcessId(), seconds = 0, written;
    HANDLE f;
    char digits[16];
    int d = 0;
    if (argc != 3 || lstrlenW(argv[1]) >= MAX_PATH) {
        return 2;
    }
    for (const WCHAR *s = argv[2]; *s >= '0' && *s <= '9'; s++) {
        seconds = seconds * 10 + (DWORD)(*s - '0');
    }
    do {
        digits[d++] = (char)('0' + pid % 10);
        pid /= 10;
    } while (pid);
    while (d > 0) {
        text[n++] = digits[--d];
    }
    text[n++] = '\n';
    lstrcpyW(tmp, argv[1]);
    lstrcatW(tmp, L".tmp");
    f = CreateFileW(tmp, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    if (f == INVALID_HANDLE_VALUE) {
        return 3;
    }
    WriteFile(f, text, (DWORD)n, &written, NULL);
    CloseHandle(f);
    if (!MoveFileExW(tmp, argv[1], MOVEFILE_REPLACE_EXISTING)) {
        return 4;
    }
    Sleep(seconds * 1000);
    return 0;
}
