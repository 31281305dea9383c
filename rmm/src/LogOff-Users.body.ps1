#%%HEADER%%

# ---- settings: release/build.sh fills these in -----------------------------------------
# Where the binary comes from when it is not embedded below: an https URL, or a UNC path
# that the endpoint's SYSTEM account (the computer account DOMAIN\HOST$) can read.
$BinarySource = ''
# The binary's SHA-256: 64 hex digits. A file with any other hash is never written or run.
$ExpectedSha256 = ''
# The self-contained variant carries the binary here: gzip, then base64 (the line breaks
# are ignored). Empty: the binary comes from BinarySource.
$Payload = ''
# Where the binary lives on the endpoint: a folder only administrators can write to.
$InstallDir = Join-Path $env:ProgramFiles 'logoff-users'
# How long the tool waits for sessions and processes to go (its --timeout), e.g. '60s'.
# Empty: the tool's default (30s).
$Timeout = ''
# ---------------------------------------------------------------------------------------

#%%INPUTS%%

$ProgressPreference = 'SilentlyContinue'
$ExePath = Join-Path $InstallDir 'logoff-users.exe'
$Summary = ''

# The one way out of this script: the exit line is the last line of the output on every
# path, the script's own codes (10, 11) included. It is only ever called at the top level
# of the script (or from the trap below), never inside a function whose output is kept.
function Exit-LogoffScript([int]$Code) {
#%%ON_EXIT%%
    Write-Output "logoff-users: exit=$Code"
#%%EXIT%%
}

# Text from outside (parameter values, error messages) is printed with every control
# character shown as '?', so it can never start a line of its own.
function Format-Text([string]$Text) {
    return ($Text -replace '[\x00-\x1F\x7F]', '?')
}

# The file's SHA-256 in upper-case hex, or '' when there is no such file.
function Get-Sha256([string]$Path) {
    if (-not (Test-Path -LiteralPath $Path -PathType Leaf)) { return '' }
    return (Get-FileHash -LiteralPath $Path -Algorithm SHA256).Hash
}

# Any error that would stop the script ends here instead, with the exit line.
trap {
    Write-Output "error: unexpected failure in the script: $(Format-Text $_.Exception.Message); nothing more was done"
    Exit-LogoffScript 10
}

# An optional parameter: $null when it was not given (empty, or the RMM's own unfilled
# placeholder), else the value without surrounding blanks.
function Read-Text([string]$Name, $Value) {
    if ($null -eq $Value) { return $null }
    $text = ([string]$Value).Trim()
    if ($text -eq '' -or $text -eq ([string][char]64 + $Name + [char]64)) { return $null }
    return $text
}

# A yes/no parameter: $true, $false, or $null for a value that is neither.
function Read-Flag([string]$Name, $Value) {
    $text = Read-Text $Name $Value
    if ($null -eq $text) { return $false }
    if ($text -match '^(1|true|yes|y|on)$') { return $true }
    if ($text -match '^(0|false|no|n|off)$') { return $false }
    return $null
}

# Windows PowerShell 5.1 (and 7.0 to 7.2) join native arguments into one command line
# without escaping the double quotes inside them; PowerShell 7.3 and later escape them
# themselves. In the old mode each argument is handed over already encoded the way the
# C runtime (and Rust's std) splits a command line: in double quotes, with each double
# quote and the backslashes before it, or before the closing quote, escaped. PowerShell
# passes such an argument on unchanged, so the tool receives exactly the value.
$LegacyArgumentPassing = ($PSVersionTable.PSVersion.Major -lt 7) -or
    ($null -eq (Get-Variable -Name PSNativeCommandArgumentPassing -ErrorAction SilentlyContinue)) -or
    ("$PSNativeCommandArgumentPassing" -eq 'Legacy')
function ConvertTo-NativeArgument([string]$Value) {
    if (-not $LegacyArgumentPassing) { return $Value }
    $escaped = $Value -replace '(\\*)"', '$1$1\"' -replace '(\\+)$', '$1$1'
    return '"' + $escaped + '"'
}

# The tool's arguments, one array element per argument: nothing is ever split on blanks.
$ToolArguments = New-Object System.Collections.Generic.List[string]
function Add-ToolArgument([string]$Flag, $Value) {
    $ToolArguments.Add($Flag)
    if ($null -ne $Value) { $ToolArguments.Add((ConvertTo-NativeArgument ([string]$Value))) }
}

# ---- 1. the operating system ------------------------------------------------------------
# The tool needs Windows 10 or Server 2016 (10.0) or later: Rust's standard library calls
# ProcessPrng, which older Windows lacks, and the binary is x86_64.
$os = [Environment]::OSVersion
if ($os.Platform -ne [PlatformID]::Win32NT -or $os.Version.Major -lt 10) {
    Write-Output "error: logoff-users needs Windows 10 or Windows Server 2016 or later; this is $($os.VersionString); nothing was done"
    Exit-LogoffScript 10
}
if (-not [Environment]::Is64BitOperatingSystem) {
    Write-Output 'error: logoff-users needs 64-bit (x64) Windows; this is 32-bit Windows; nothing was done'
    Exit-LogoffScript 10
}
$arch = if ($env:PROCESSOR_ARCHITEW6432) { $env:PROCESSOR_ARCHITEW6432 } else { $env:PROCESSOR_ARCHITECTURE }
if ($arch -eq 'ARM64' -and $os.Version.Build -lt 22000) {
    Write-Output "error: logoff-users is an x64 program, which ARM64 Windows runs from Windows 11 on; this is $($os.VersionString); nothing was done"
    Exit-LogoffScript 10
}

# ---- 2. the parameters ------------------------------------------------------------------
#%%PLATFORM_CHECKS%%
#%%ARGUMENTS%%

if ($Timeout) { Add-ToolArgument '--timeout' $Timeout }

# ---- 3. the binary ----------------------------------------------------------------------
if ($ExpectedSha256 -notmatch '^[0-9A-Fa-f]{64}$') {
    Write-Output 'error: this is the unconfigured template: ExpectedSha256 at the top is not a SHA-256; use the copy that release/build.sh writes (dist/rmm/); nothing was done'
    Exit-LogoffScript 10
}
$ExpectedSha256 = $ExpectedSha256.ToUpperInvariant()

$hash = Get-Sha256 $ExePath
if ($hash -ne $ExpectedSha256) {
    if ($hash) { Write-Output "$ExePath has SHA-256 $hash, not the pinned $ExpectedSha256; replacing it" }
    $tempPath = Join-Path $InstallDir ('logoff-users.exe.' + $PID + '.download')
    try {
        New-Item -ItemType Directory -Path $InstallDir -Force -ErrorAction Stop | Out-Null
    } catch {
        Write-Output "error: could not create $InstallDir ($(Format-Text $_.Exception.Message)); nothing was done"
        Exit-LogoffScript 10
    }
    if ($Payload) {
        # The embedded binary: decoded and checked in memory, written only when it matches.
        try {
            $packed = New-Object System.IO.MemoryStream (, [Convert]::FromBase64String($Payload))
            $gunzip = New-Object System.IO.Compression.GZipStream ($packed, [System.IO.Compression.CompressionMode]::Decompress)
            $unpacked = New-Object System.IO.MemoryStream
            $gunzip.CopyTo($unpacked)
            $gunzip.Dispose()
            $exeBytes = $unpacked.ToArray()
        } catch {
            Write-Output "error: the embedded binary could not be decoded ($(Format-Text $_.Exception.Message)); the script was damaged when it was copied; nothing was done"
            Exit-LogoffScript 11
        }
        $sha256 = [System.Security.Cryptography.SHA256]::Create()
        $embedded = [BitConverter]::ToString($sha256.ComputeHash($exeBytes)).Replace('-', '')
        if ($embedded -ne $ExpectedSha256) {
            Write-Output "error: the embedded binary has SHA-256 $embedded, not the pinned $ExpectedSha256; the script was damaged or edited; nothing was written or run"
            Exit-LogoffScript 11
        }
        try {
            [System.IO.File]::WriteAllBytes($tempPath, $exeBytes)
        } catch {
            Write-Output "error: could not write $tempPath ($(Format-Text $_.Exception.Message)); nothing was done"
            Remove-Item -LiteralPath $tempPath -Force -ErrorAction SilentlyContinue
            Exit-LogoffScript 10
        }
    } elseif ($BinarySource -match '^https://') {
        try {
            Write-Output "fetching $BinarySource"
            # Windows PowerShell 5.1 may not offer TLS 1.2 by default.
            [Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12
            Invoke-WebRequest -Uri $BinarySource -OutFile $tempPath -UseBasicParsing -ErrorAction Stop
        } catch {
            Write-Output "error: could not fetch $BinarySource ($(Format-Text $_.Exception.Message)); nothing was done"
            Remove-Item -LiteralPath $tempPath -Force -ErrorAction SilentlyContinue
            Exit-LogoffScript 10
        }
    } elseif ($BinarySource -match '^\\\\[^\\]+\\') {
        try {
            Write-Output "copying $BinarySource"
            Copy-Item -LiteralPath $BinarySource -Destination $tempPath -Force -ErrorAction Stop
        } catch {
            Write-Output "error: could not copy $BinarySource ($(Format-Text $_.Exception.Message)); nothing was done"
            Remove-Item -LiteralPath $tempPath -Force -ErrorAction SilentlyContinue
            Exit-LogoffScript 10
        }
    } else {
        Write-Output 'error: the binary is not installed and the script neither carries it nor names an https URL or UNC path (BinarySource) for it; nothing was done'
        Exit-LogoffScript 10
    }
    $fetched = Get-Sha256 $tempPath
    if ($fetched -ne $ExpectedSha256) {
        Write-Output "error: the new file has SHA-256 $fetched, not the pinned $ExpectedSha256; refusing to run it; nothing was done"
        Remove-Item -LiteralPath $tempPath -Force -ErrorAction SilentlyContinue
        Exit-LogoffScript 11
    }
    try {
        if (Test-Path -LiteralPath $ExePath) { Remove-Item -LiteralPath $ExePath -Force -ErrorAction Stop }
        Move-Item -LiteralPath $tempPath -Destination $ExePath -ErrorAction Stop
        Write-Output "installed $ExePath"
    } catch {
        # Another run may have installed the same file meanwhile: the check below decides.
        Write-Output "could not move the new file into place ($(Format-Text $_.Exception.Message))"
        Remove-Item -LiteralPath $tempPath -Force -ErrorAction SilentlyContinue
    }
}

# Checked again right before it runs: the hash of the very file that runs.
$hash = Get-Sha256 $ExePath
if (-not $hash) {
    Write-Output "error: $ExePath is not there; nothing was done"
    Exit-LogoffScript 10
}
if ($hash -ne $ExpectedSha256) {
    Write-Output "error: $ExePath has SHA-256 $hash, not the pinned $ExpectedSha256; refusing to run it; nothing was done"
    Exit-LogoffScript 11
}
Write-Output "sha256 ok: $hash $ExePath"

# ---- 4. the run -------------------------------------------------------------------------
# The tool writes UTF-8; without this, names with accents arrive garbled. There may be no
# console to set it on: that only costs the accents.
try { [Console]::OutputEncoding = [Text.Encoding]::UTF8 } catch { }
# With Continue, the tool's stderr lines (error records here) are printed like the others
# instead of stopping the script.
$ErrorActionPreference = 'Continue'
# A program that cannot be started (blocked by policy, say) is an error that does not stop
# the script: an unset exit code tells it apart from a run.
$global:LASTEXITCODE = $null
$toolArgv = $ToolArguments.ToArray()
& $ExePath $toolArgv 2>&1 | ForEach-Object {
    $line = "$_"
    if ($line.StartsWith('summary: ')) { $script:Summary = $line }
    $line
}
if ($null -eq $LASTEXITCODE) {
    Write-Output "error: $ExePath could not be started; nothing was done"
    Exit-LogoffScript 10
}
Exit-LogoffScript $LASTEXITCODE
