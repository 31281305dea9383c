<#
.SYNOPSIS
    Acceptance test of logoff-users.exe on a real Windows Server: what the Wine bed in CI
    cannot prove (real sessions, a real logoff, real permissions, the Event Log's User).

.DESCRIPTION
    Run it elevated, on a TEST machine: Windows Server 2016 or later with Remote Desktop
    enabled (with the RD Session Host role, or the two administrative sessions every Server
    allows), PowerShell 5.1, built-in tools only. It:

      1. creates two local test users (random names luacc<hex>a / luacc<hex>b, random
         passwords) in Remote Desktop Users;
      2. opens a session for each by loopback RDP (cmdkey + mstsc /v:127.0.0.2 and
         /v:127.0.0.3); where that is not possible (-Manual, or no session appears), it
         prints the names and passwords and waits for you to log them on;
      3. runs logoff-users.exe for the first user, then a dry run and a real run of ALL
         (every session that existed before the test is excluded by name, so no one else is
         logged off), and, with a Basic User token (runas /trustlevel), once more to see it
         refuse with exit 3;
      4. checks through WTS (WTSEnumerateSessionsW, quser only for display) that the right
         sessions went and the others stayed, and that the tool's Application event log
         records carry this account's SID;
      5. removes the users (and their profiles), the saved credentials and the mstsc
         processes it started, whatever happened;
      6. prints a JSON summary (passed, failed, skipped, every check) and exits 0 when no
         check failed, 1 otherwise, 2 when it could not start.

    The passwords are passed to cmdkey on its command line (visible in the process list for
    a moment); the accounts exist only for the test.

.PARAMETER Exe
    The logoff-users.exe to test (default: next to this script).

.PARAMETER SessionWaitSeconds
    How long to wait for each test user's session to appear.

.PARAMETER Manual
    Do not try loopback RDP: ask the operator to log the test users on.

.EXAMPLE
    powershell -ExecutionPolicy Bypass -File .\Test-LogoffUsers.ps1 -Exe C:\Temp\logoff-users.exe
#>
[CmdletBinding()]
param(
    [string]$Exe = (Join-Path $PSScriptRoot 'logoff-users.exe'),
    [int]$SessionWaitSeconds = 120,
    [switch]$Manual
)

Set-StrictMode -Version 2
$ErrorActionPreference = 'Stop'

$Checks = New-Object System.Collections.ArrayList

function Add-Check {
    param([string]$Name, [string]$Result, [string]$Detail)
    [void]$Checks.Add([ordered]@{ name = $Name; result = $Result; detail = $Detail })
    Write-Host ("{0,-7} {1}: {2}" -f $Result.ToUpper(), $Name, $Detail)
}

function Test-Check {
    param([string]$Name, [bool]$Passed, [string]$Detail)
    if ($Passed) { Add-Check $Name 'passed' $Detail } else { Add-Check $Name 'failed' $Detail }
}

# --- WTS, through P/Invoke (no WMI, no text scraping) ------------------------------------
Add-Type -TypeDefinition @'
using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;

public static class LuAcceptanceWts
{
    [DllImport("wtsapi32.dll", SetLastError = true)]
    static extern bool WTSEnumerateSessionsW(IntPtr server, int reserved, int version, out IntPtr info, out int count);

    [DllImport("wtsapi32.dll", SetLastError = true)]
    static extern bool WTSQuerySessionInformationW(IntPtr server, int sessionId, int infoClass, out IntPtr buffer, out int bytes);

    [DllImport("wtsapi32.dll")]
    static extern void WTSFreeMemory(IntPtr memory);

    [StructLayout(LayoutKind.Sequential)]
    struct WTS_SESSION_INFO
    {
        public int SessionId;
        public IntPtr WinStationName;
        public int State;
    }

    public class Session
    {
        public int Id;
        public int State;
        public string User;
        public string Domain;
    }

    // WTSUserName = 5, WTSDomainName = 7 (WTS_INFO_CLASS).
    static string Query(int id, int infoClass)
    {
        IntPtr buffer;
        int bytes;
        if (!WTSQuerySessionInformationW(IntPtr.Zero, id, infoClass, out buffer, out bytes))
        {
            return "";
        }
        try
        {
            return Marshal.PtrToStringUni(buffer) ?? "";
        }
        finally
        {
            WTSFreeMemory(buffer);
        }
    }

    public static List<Session> Sessions()
    {
        IntPtr info;
        int count;
        if (!WTSEnumerateSessionsW(IntPtr.Zero, 0, 1, out info, out count))
        {
            throw new System.ComponentModel.Win32Exception();
        }
        List<Session> list = new List<Session>();
        try
        {
            int size = Marshal.SizeOf(typeof(WTS_SESSION_INFO));
            for (int i = 0; i < count; i++)
            {
                WTS_SESSION_INFO s = (WTS_SESSION_INFO)Marshal.PtrToStructure(new IntPtr(info.ToInt64() + i * size), typeof(WTS_SESSION_INFO));
                Session session = new Session();
                session.Id = s.SessionId;
                session.State = s.State;
                session.User = Query(s.SessionId, 5);
                session.Domain = Query(s.SessionId, 7);
                list.Add(session);
            }
        }
        finally
        {
            WTSFreeMemory(info);
        }
        return list;
    }
}
'@

function Get-UserSession {
    param([string]$User)
    @([LuAcceptanceWts]::Sessions() | Where-Object { $_.User -eq $User })
}

function Wait-UserSession {
    param([string]$User, [int]$Seconds)
    $deadline = (Get-Date).AddSeconds($Seconds)
    while ((Get-Date) -lt $deadline) {
        # WTSActive is 0.
        $active = @(Get-UserSession $User | Where-Object { $_.State -eq 0 })
        if ($active.Count -gt 0) { return $true }
        Start-Sleep -Seconds 2
    }
    return $false
}

function New-TestPassword {
    $bytes = New-Object byte[] 18
    [System.Security.Cryptography.RandomNumberGenerator]::Create().GetBytes($bytes)
    # Base64 of random bytes, plus one character of each class the default policy asks for.
    'Lu!9' + [Convert]::ToBase64String($bytes)
}

# The tool's JSON report (stdout) and exit code; stderr is kept apart so the JSON parses.
function Invoke-Tool {
    param([string[]]$Arguments)
    # Windows PowerShell turns a redirected native stderr line into an error record, which
    # 'Stop' would make fatal.
    $ErrorActionPreference = 'Continue'
    $errFile = [System.IO.Path]::GetTempFileName()
    try {
        $out = & $Exe @Arguments 2> $errFile
        $code = $LASTEXITCODE
        $text = ($out | Out-String)
        $json = $null
        try { $json = $text | ConvertFrom-Json } catch { $json = $null }
        [pscustomobject]@{ Code = $code; Json = $json; Text = $text; Err = (Get-Content -Raw $errFile) }
    }
    finally {
        Remove-Item -Force $errFile -ErrorAction SilentlyContinue
    }
}

# quser, for the operator's eyes only (its text is not parsed).
function Show-Sessions {
    $ErrorActionPreference = 'Continue'
    & quser.exe 2>&1 | ForEach-Object { Write-Host $_ }
}

function Get-Outcome {
    param($Report, [string]$User)
    foreach ($h in @($Report.hosts)) {
        foreach ($u in @($h.users)) {
            if ($u.user -and $u.user.Split('\')[-1] -eq $User) { return $u.outcome }
        }
    }
    return $null
}

function Get-ProfileUnloaded {
    param($Report, [string]$User)
    foreach ($h in @($Report.hosts)) {
        foreach ($u in @($h.users)) {
            if ($u.user -and $u.user.Split('\')[-1] -eq $User) { return $u.profile_unloaded }
        }
    }
    return $null
}

# TSServerDrainMode as the registry holds it, or $null when there is none.
function Get-DrainMode {
    $item = Get-ItemProperty -LiteralPath 'HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server' -ErrorAction SilentlyContinue
    if ($item -and ($item.PSObject.Properties.Name -contains 'TSServerDrainMode')) { return [int]$item.TSServerDrainMode }
    return $null
}

# --- preconditions -----------------------------------------------------------------------
$identity = [System.Security.Principal.WindowsIdentity]::GetCurrent()
$principal = New-Object System.Security.Principal.WindowsPrincipal($identity)
if (-not $principal.IsInRole([System.Security.Principal.WindowsBuiltInRole]::Administrator)) {
    Write-Error 'Run this script elevated (Run as administrator).'
    exit 2
}
if (-not (Test-Path -LiteralPath $Exe)) {
    Write-Error "logoff-users.exe not found at $Exe (use -Exe)."
    exit 2
}
$Exe = (Resolve-Path -LiteralPath $Exe).Path
$rdp = Get-ItemProperty -Path 'HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server' -Name fDenyTSConnections
if ($rdp.fDenyTSConnections -ne 0) {
    Write-Error 'Remote Desktop is disabled on this machine (fDenyTSConnections); enable it for the test.'
    exit 2
}

$MySession = [System.Diagnostics.Process]::GetCurrentProcess().SessionId
$suffix = '{0:x4}' -f (Get-Random -Maximum 65536)
$User1 = "luacc${suffix}a"
$User2 = "luacc${suffix}b"
$Passwords = @{}
$Started = New-Object System.Collections.ArrayList
# Whether this script left a drain of the tool in force (undone in the clean-up).
$script:Drained = $false
$ClientKey = 'HKCU:\Software\Microsoft\Terminal Server Client'
$OldAuthLevel = $null
$HadAuthLevel = $false
# Users with a session before the test: ALL must leave them alone (they are excluded by
# name), and the test checks that they stayed.
$Before = @([LuAcceptanceWts]::Sessions() | Where-Object { $_.User -ne '' })
$Bystanders = @($Before | ForEach-Object { $_.User } | Sort-Object -Unique)

try {
    # --- two test users ------------------------------------------------------------------
    foreach ($u in @($User1, $User2)) {
        $Passwords[$u] = New-TestPassword
        $secure = ConvertTo-SecureString $Passwords[$u] -AsPlainText -Force
        New-LocalUser -Name $u -Password $secure -PasswordNeverExpires -AccountNeverExpires `
            -Description 'logoff-users acceptance test (temporary)' | Out-Null
        # S-1-5-32-555: Remote Desktop Users, whatever the system's language.
        Add-LocalGroupMember -SID 'S-1-5-32-555' -Member $u
    }
    Add-Check 'users-created' 'passed' "$User1, $User2"

    # --- their sessions ------------------------------------------------------------------
    $addresses = @{ $User1 = '127.0.0.2'; $User2 = '127.0.0.3' }
    $opened = @{}
    if (-not $Manual) {
        if (Test-Path $ClientKey) {
            $prop = Get-ItemProperty -Path $ClientKey -Name AuthenticationLevelOverride -ErrorAction SilentlyContinue
            if ($prop) { $HadAuthLevel = $true; $OldAuthLevel = $prop.AuthenticationLevelOverride }
        }
        else {
            New-Item -Path $ClientKey -Force | Out-Null
        }
        # No certificate prompt for the loopback connections; restored at the end.
        Set-ItemProperty -Path $ClientKey -Name AuthenticationLevelOverride -Value 0 -Type DWord
        foreach ($u in @($User1, $User2)) {
            $target = 'TERMSRV/' + $addresses[$u]
            & cmdkey.exe "/generic:$target" "/user:$env:COMPUTERNAME\$u" "/pass:$($Passwords[$u])" | Out-Null
            $p = Start-Process -FilePath 'mstsc.exe' -ArgumentList ('/v:' + $addresses[$u]) -PassThru
            [void]$Started.Add($p)
            $opened[$u] = Wait-UserSession $u $SessionWaitSeconds
        }
    }
    foreach ($u in @($User1, $User2)) {
        if (-not $opened.ContainsKey($u) -or -not $opened[$u]) {
            if (-not [Environment]::UserInteractive) { continue }
            Write-Host ''
            Write-Host "Log on as $env:COMPUTERNAME\$u with the password $($Passwords[$u])"
            Write-Host '(Remote Desktop from another machine, or mstsc here), leave the session open, then press Enter.'
            [void](Read-Host)
            $opened[$u] = Wait-UserSession $u $SessionWaitSeconds
        }
    }
    $both = $opened.ContainsKey($User1) -and $opened[$User1] -and $opened.ContainsKey($User2) -and $opened[$User2]
    Test-Check 'sessions-opened' $both ("{0}: {1}, {2}: {3}" -f $User1, $opened[$User1], $User2, $opened[$User2])
    if (-not $both) { throw 'the test users have no sessions; nothing to test' }
    Show-Sessions

    # --- --list sees them ----------------------------------------------------------------
    $r = Invoke-Tool @('--list', '--format', 'json')
    $listed = @()
    if ($r.Json) { $listed = @($r.Json.hosts[0].sessions | ForEach-Object { $_.user }) }
    Test-Check 'list' (($r.Code -eq 0) -and ($listed -contains $User1) -and ($listed -contains $User2)) "exit $($r.Code), users: $($listed -join ', ')"

    # --- a non-elevated token is refused (exit 3), nothing done ---------------------------
    $work = Join-Path $env:TEMP "luacc$suffix"
    New-Item -ItemType Directory -Path $work -Force | Out-Null
    $rcFile = Join-Path $work 'rc.txt'
    $batch = Join-Path $work 'not-elevated.cmd'
    Set-Content -Path $batch -Encoding ASCII -Value @(
        '@echo off',
        "`"$Exe`" $User2 --format json > `"$work\not-elevated.json`" 2>&1",
        "echo %errorlevel% > `"$rcFile`""
    )
    # 0x20000: a Basic User token, without the Administrators group.
    Start-Process -FilePath 'runas.exe' -ArgumentList "/trustlevel:0x20000 `"$batch`"" -WindowStyle Hidden
    $deadline = (Get-Date).AddSeconds(60)
    while (-not (Test-Path $rcFile) -and (Get-Date) -lt $deadline) { Start-Sleep -Seconds 1 }
    if (Test-Path $rcFile) {
        Start-Sleep -Seconds 1
        $rc = (Get-Content -Raw $rcFile).Trim()
        $still = (Get-UserSession $User2).Count -gt 0
        Test-Check 'not-elevated-exit-3' (($rc -eq '3') -and $still) "exit $rc, $User2 still logged on: $still"
    }
    else {
        Add-Check 'not-elevated-exit-3' 'skipped' 'runas /trustlevel:0x20000 gave no result within 60 s'
    }

    # --- one named user ------------------------------------------------------------------
    $r = Invoke-Tool @($User1, '--format', 'json', '--timeout', '60s')
    $gone1 = (Get-UserSession $User1).Count -eq 0
    $stay2 = (Get-UserSession $User2).Count -gt 0
    $stayMe = @([LuAcceptanceWts]::Sessions() | Where-Object { $_.Id -eq $MySession }).Count -eq 1
    Test-Check 'named-user' (($r.Code -eq 0) -and ((Get-Outcome $r.Json $User1) -eq 'logged_off') -and $gone1 -and $stay2 -and $stayMe) `
        "exit $($r.Code), outcome $(Get-Outcome $r.Json $User1); $User1 gone: $gone1, $User2 stays: $stay2, own session stays: $stayMe"
    # The profile check (issue 18): the hive of a user whose session was logged off unloads.
    $unloaded = Get-ProfileUnloaded $r.Json $User1
    $hive = $false
    try { $sid = (New-Object System.Security.Principal.NTAccount($User1)).Translate([System.Security.Principal.SecurityIdentifier]).Value; $hive = Test-Path -LiteralPath "Registry::HKEY_USERS\$sid" } catch { $hive = $false }
    Test-Check 'profile-unloaded' (($unloaded -eq $true) -and -not $hive) "profile_unloaded: $unloaded; HKEY_USERS\<SID of $User1> still there: $hive"

    # --- drain (issue 18): the mode change logon /drainuntilrestart sets, and back ----------
    $modeBefore = Get-DrainMode
    $script:Drained = $true
    $r = Invoke-Tool @('--drain', '--format', 'json')
    $modeDrained = Get-DrainMode
    Write-Host 'change logon /query after --drain (for the operator; not parsed):'
    & change.exe logon /query 2>&1 | ForEach-Object { Write-Host "  $_" }
    $u = Invoke-Tool @('--undrain', '--format', 'json')
    $modeAfter = Get-DrainMode
    if ($u.Code -eq 0) { $script:Drained = $false }
    Test-Check 'drain' (($r.Code -eq 0) -and ($modeDrained -eq 1) -and ($u.Code -eq 0) -and ($modeAfter -eq $modeBefore)) `
        "TSServerDrainMode before: $modeBefore, after --drain (exit $($r.Code)): $modeDrained, after --undrain (exit $($u.Code)): $modeAfter"

    # --- the Event Log names who ran it ----------------------------------------------------
    $events = @()
    try {
        $events = @(Get-WinEvent -LogName Application -MaxEvents 200 |
                Where-Object { $_.ProviderName -eq 'logoff-users' -and $_.TimeCreated -gt (Get-Date).AddMinutes(-10) })
    }
    catch { $events = @() }
    $mine = @($events | Where-Object { $_.UserId -and $_.UserId.Value -eq $identity.User.Value })
    Test-Check 'event-log-user' (($events.Count -gt 0) -and ($mine.Count -eq $events.Count)) `
        "$($events.Count) record(s) of logoff-users in the last 10 minutes, $($mine.Count) with this account's SID $($identity.User.Value)"

    # --- ALL (every pre-existing session excluded by name) ---------------------------------
    $exclude = @()
    if ($Bystanders.Count -gt 0) { $exclude = @('--exclude', ($Bystanders -join ',')) }
    $r = Invoke-Tool (@('--dry-run', 'ALL', '--format', 'json') + $exclude)
    $planned = @()
    if ($r.Json) { $planned = @($r.Json.hosts[0].plan.users | ForEach-Object { $_.account.user }) }
    $stay2 = (Get-UserSession $User2).Count -gt 0
    Test-Check 'dry-run-all' (($r.Code -eq 0) -and ($planned -contains $User2) -and $stay2) "exit $($r.Code), planned: $($planned -join ', '); $User2 still logged on: $stay2"

    $r = Invoke-Tool (@('ALL', '--format', 'json', '--timeout', '60s') + $exclude)
    $gone2 = (Get-UserSession $User2).Count -eq 0
    $now = @([LuAcceptanceWts]::Sessions())
    $kept = @($Before | Where-Object { $id = $_.Id; @($now | Where-Object { $_.Id -eq $id -and $_.User -ne '' }).Count -eq 1 })
    Test-Check 'all' (($r.Code -eq 0) -and $gone2 -and ($kept.Count -eq $Before.Count)) `
        "exit $($r.Code); $User2 gone: $gone2; sessions from before the test still there: $($kept.Count) of $($Before.Count)"
    Show-Sessions
}
catch {
    Add-Check 'script' 'failed' $_.Exception.Message
}
finally {
    # --- clean up, whatever happened -------------------------------------------------------
    $ErrorActionPreference = 'Continue'
    if ($script:Drained) { & $Exe --undrain 2>&1 | Out-Null }
    foreach ($u in @($User1, $User2)) {
        foreach ($s in @(Get-UserSession $u)) { & logoff.exe $s.Id 2>&1 | Out-Null }
    }
    & cmdkey.exe '/delete:TERMSRV/127.0.0.2' 2>&1 | Out-Null
    & cmdkey.exe '/delete:TERMSRV/127.0.0.3' 2>&1 | Out-Null
    # Only the mstsc processes this script started, by their own objects.
    foreach ($p in $Started) {
        if (-not $p.HasExited) { $p.Kill() }
    }
    Remove-Item -Recurse -Force -LiteralPath (Join-Path $env:TEMP "luacc$suffix") -ErrorAction SilentlyContinue
    if (Test-Path $ClientKey) {
        if ($HadAuthLevel) {
            Set-ItemProperty -Path $ClientKey -Name AuthenticationLevelOverride -Value $OldAuthLevel -Type DWord
        }
        else {
            Remove-ItemProperty -Path $ClientKey -Name AuthenticationLevelOverride -ErrorAction SilentlyContinue
        }
    }
    Start-Sleep -Seconds 3
    foreach ($u in @($User1, $User2)) {
        $account = Get-LocalUser -Name $u -ErrorAction SilentlyContinue
        if ($account) {
            $sid = $account.SID.Value
            Remove-LocalUser -Name $u
            # The profile may stay locked for a moment after the logoff.
            for ($i = 0; $i -lt 5; $i++) {
                $profile = Get-CimInstance -ClassName Win32_UserProfile -Filter "SID='$sid'" -ErrorAction SilentlyContinue
                if (-not $profile) { break }
                try { $profile | Remove-CimInstance; break } catch { Start-Sleep -Seconds 3 }
            }
        }
    }
    $leftover = @(@($User1, $User2) | Where-Object { Get-LocalUser -Name $_ -ErrorAction SilentlyContinue })
    Test-Check 'users-removed' ($leftover.Count -eq 0) "left: $($leftover -join ', ')"
}

# --- the summary -------------------------------------------------------------------------
$passed = @($Checks | Where-Object { $_.result -eq 'passed' }).Count
$failed = @($Checks | Where-Object { $_.result -eq 'failed' }).Count
$skipped = @($Checks | Where-Object { $_.result -eq 'skipped' }).Count
$os = (Get-CimInstance -ClassName Win32_OperatingSystem).Caption
$summary = [ordered]@{
    test    = 'logoff-users acceptance'
    host    = $env:COMPUTERNAME
    os      = $os
    exe     = $Exe
    passed  = $passed
    failed  = $failed
    skipped = $skipped
    checks  = $Checks
}
$summary | ConvertTo-Json -Depth 4
if ($failed -gt 0) { exit 1 }
exit 0
