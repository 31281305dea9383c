/*
 * Declarations that Debian 12's mingw-w64 (10.0) wtsapi32.h lacks, written from Microsoft
 * Learn's pages for each item (see README.md, "Sources"). Shared by the stand-in DLL and its
 * self-test. A newer mingw-w64 that declares WTS_ANY_SESSION is assumed to declare all of
 * them, so the block is skipped there.
 */
#ifndef STANDIN_WTS_EX_H
#define STANDIN_WTS_EX_H

#include <windows.h>
#include <wtsapi32.h>

#ifndef WTS_ANY_SESSION
#define WTS_ANY_SESSION ((DWORD)-2)

/* WTS_INFO_CLASS values after WTSSessionInfo (24), in the documented order. */
#define WTSSessionInfoEx ((WTS_INFO_CLASS)25)
#define WTSConfigInfo ((WTS_INFO_CLASS)26)
#define WTSValidationInfo ((WTS_INFO_CLASS)27)
#define WTSSessionAddressV4 ((WTS_INFO_CLASS)28)
#define WTSIsRemoteSession ((WTS_INFO_CLASS)29)

/* WTS_TYPE_CLASS: what a WTSFreeMemoryEx buffer holds. */
typedef enum _WTS_TYPE_CLASS {
    WTSTypeProcessInfoLevel0,
    WTSTypeProcessInfoLevel1,
    WTSTypeSessionInfoLevel1
} WTS_TYPE_CLASS;

/* WTSINFOEX_LEVEL1_W SessionFlags. */
#define WTS_SESSIONSTATE_UNKNOWN 0xFFFFFFFF
#define WTS_SESSIONSTATE_LOCK 0x00000000
#define WTS_SESSIONSTATE_UNLOCK 0x00000001

typedef struct _WTS_SESSION_INFO_1W {
    DWORD ExecEnvId;
    WTS_CONNECTSTATE_CLASS State;
    DWORD SessionId;
    LPWSTR pSessionName;
    LPWSTR pHostName;
    LPWSTR pUserName;
    LPWSTR pDomainName;
    LPWSTR pFarmName;
} WTS_SESSION_INFO_1W, *PWTS_SESSION_INFO_1W;

typedef struct _WTS_PROCESS_INFO_EXW {
    DWORD SessionId;
    DWORD ProcessId;
    LPWSTR pProcessName;
    PSID pUserSid;
    DWORD NumberOfThreads;
    DWORD HandleCount;
    DWORD PagefileUsage;
    DWORD PeakPagefileUsage;
    DWORD WorkingSetSize;
    DWORD PeakWorkingSetSize;
    LARGE_INTEGER UserTime;
    LARGE_INTEGER KernelTime;
} WTS_PROCESS_INFO_EXW, *PWTS_PROCESS_INFO_EXW;

typedef struct _WTSINFOEX_LEVEL1_W {
    ULONG SessionId;
    WTS_CONNECTSTATE_CLASS SessionState;
    LONG SessionFlags;
    WCHAR WinStationName[WINSTATIONNAME_LENGTH + 1];
    WCHAR UserName[USERNAME_LENGTH + 1];
    WCHAR DomainName[DOMAIN_LENGTH + 1];
    LARGE_INTEGER LogonTime;
    LARGE_INTEGER ConnectTime;
    LARGE_INTEGER DisconnectTime;
    LARGE_INTEGER LastInputTime;
    LARGE_INTEGER CurrentTime;
    DWORD IncomingBytes;
    DWORD OutgoingBytes;
    DWORD IncomingFrames;
    DWORD OutgoingFrames;
    DWORD IncomingCompressedBytes;
    DWORD OutgoingCompressedBytes;
} WTSINFOEX_LEVEL1_W, *PWTSINFOEX_LEVEL1_W;

typedef union _WTSINFOEX_LEVEL_W {
    WTSINFOEX_LEVEL1_W WTSInfoExLevel1;
} WTSINFOEX_LEVEL_W, *PWTSINFOEX_LEVEL_W;

typedef struct _WTSINFOEXW {
    DWORD Level;
    WTSINFOEX_LEVEL_W Data;
} WTSINFOEXW, *PWTSINFOEXW;

HANDLE WINAPI WTSOpenServerExW(LPWSTR pServerName);
WINBOOL WINAPI WTSEnumerateSessionsExW(HANDLE hServer, DWORD *pLevel, DWORD Filter,
                                       PWTS_SESSION_INFO_1W *ppSessionInfo, DWORD *pCount);
WINBOOL WINAPI WTSEnumerateProcessesExW(HANDLE hServer, DWORD *pLevel, DWORD SessionId,
                                        LPWSTR *ppProcessInfo, DWORD *pCount);
WINBOOL WINAPI WTSFreeMemoryExW(WTS_TYPE_CLASS WTSTypeClass, PVOID pMemory,
                                ULONG NumberOfEntries);
#endif /* WTS_ANY_SESSION */

#endif /* STANDIN_WTS_EX_H */
