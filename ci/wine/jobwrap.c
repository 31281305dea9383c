/*
 * jobwrap.exe: runs a command the way RMM agents run scripts, inside a job object that kills
 * everything in it when it closes (JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE, breakaway not
 * allowed), then closes the job, as an agent does when the script returns or times out.
 *
 *   jobwrap.exe RESULT_FILE OUT_FILE "CANARY COMMAND LINE" "COMMAND LINE"
 *
 * The canary (a long sleep) goes into the job first; then the command, with its standard
 * output and error going to OUT_FILE. Once the command has exited, the job is closed, and
 * RESULT_FILE receives one line:
 *
 *   exit=N canary_in_job=0|1 canary_killed=0|1
 *
 * canary_killed=1 shows that closing the job did kill what was in it (so a process the
 * command left in the job would have died too). For ci/wine/scenarios.py (scheduled logoffs).
 */
#include <windows.h>
#include <stdio.h>

static HANDLE start_in_job(HANDLE job, WCHAR *cmdline, HANDLE out)
{
    STARTUPINFOW si;
    PROCESS_INFORMATION pi;
    ZeroMemory(&si, sizeof si);
    si.cb = sizeof si;
    if (out != NULL) {
        si.dwFlags = STARTF_USESTDHANDLES;
        si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
        si.hStdOutput = out;
        si.hStdError = out;
    }
    if (!CreateProcessW(NULL, cmdline, NULL, NULL, out != NULL, CREATE_SUSPENDED, NULL, NULL, &si, &pi)) {
        return NULL;
    }
    if (!AssignProcessToJobObject(job, pi.hProcess)) {
        TerminateProcess(pi.hProcess, 1);
        CloseHandle(pi.hThread);
        CloseHandle(pi.hProcess);
        return NULL;
    }
    ResumeThread(pi.hThread);
    CloseHandle(pi.hThread);
    return pi.hProcess;
}

int wmain(int argc, WCHAR **argv)
{
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION limits;
    SECURITY_ATTRIBUTES inherit = {sizeof inherit, NULL, TRUE};
    HANDLE job, canary, command, out;
    DWORD code = 999, waited;
    BOOL in_job = FALSE;
    FILE *result;

    if (argc != 5) {
        return 2;
    }
    job = CreateJobObjectW(NULL, NULL);
    if (job == NULL) {
        return 3;
    }
    ZeroMemory(&limits, sizeof limits);
    limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    if (!SetInformationJobObject(job, JobObjectExtendedLimitInformation, &limits, sizeof limits)) {
        return 4;
    }
    out = CreateFileW(argv[2], GENERIC_WRITE, FILE_SHARE_READ, &inherit, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    if (out == INVALID_HANDLE_VALUE) {
        return 5;
    }
    canary = start_in_job(job, argv[3], NULL);
    command = start_in_job(job, argv[4], out);
    if (canary == NULL || command == NULL) {
        return 6;
    }
    WaitForSingleObject(command, 120000);
    GetExitCodeProcess(command, &code);
    CloseHandle(out);
    IsProcessInJob(canary, job, &in_job);
    CloseHandle(job);
    waited = WaitForSingleObject(canary, 10000);
    result = _wfopen(argv[1], L"w");
    if (result == NULL) {
        return 7;
    }
    fprintf(result, "exit=%lu canary_in_job=%d canary_killed=%d\n", code, in_job ? 1 : 0, waited == WAIT_OBJECT_0);
    fclose(result);
    return 0;
}
