/*
 * A stand-in for bcryptprimitives.dll, for running our Windows build under Wine 8.0 in CI.
 *
 * Rust's std imports ProcessPrng from bcryptprimitives.dll (Windows 10+). Wine 8.0 does not
 * ship that DLL, so every Rust .exe fails to load (exit code 53). This DLL exports only
 * ProcessPrng and fills the buffer from advapi32's SystemFunction036 (RtlGenRandom), which
 * Wine implements. It is never shipped: ci/windows.sh builds it with mingw and copies it
 * into a throwaway WINEPREFIX.
 */
#include <windows.h>

/* RtlGenRandom is exported under this name; ntsecapi.h only offers it as a macro. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    /* SystemFunction036 takes a ULONG, so fill a large request in ULONG-sized pieces. */
    while (length > 0) {
        ULONG chunk = length > 0x7fffffff ? 0x7fffffff : (ULONG)length;
        if (!SystemFunction036(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID reserved)
{
    (void)instance;
    (void)reason;
    (void)reserved;
    return TRUE;
}
