# LogOff-Users.ps1 for Tactical RMM: log users off a Windows endpoint with logoff-users.exe.
#
# Script arguments (Tactical RMM passes them to this script):
#   -Users All                 everyone (the protected accounts are never included)
#   -Users "John Smith,jdoe"   names separated by commas; -Users jdoe,asmith works too
#
# Puts logoff-users.exe on the endpoint when it is missing (or is not the pinned build),
# checks its SHA-256 against the pinned value, runs it, prints its output, and exits with
# the tool's exit code (the script check's return code):
#
#   0  every targeted user is logged off (a user who was not logged on counts as done)
#   1  some action failed or could not be verified
#   2  bad input (an empty list, a missing Users value, ...): nothing was done
#   3  not enough privilege, or OS not supported: nothing was done
#   10 this script could not get or start the binary (not configured, fetch failed, blocked)
#   11 the binary's SHA-256 is not the pinned one: refused to run it
#
# See README.md beside this file.
param(
    # Several values (-Users a,b) arrive as an array; they are joined with commas.
    [string[]]$Users
)

# ---- settings: fill these in once per release ----------------------------------------
# Where the binary comes from: a UNC path that the endpoint's SYSTEM account (the computer
# account DOMAIN\HOST$) can read, such as
#   \\fs01\software\logoff-users\logoff-users-0.1.0-windows-x86_64.exe
# or an https URL, such as a release download link your endpoints can reach.
$BinarySource = ''
# The file's SHA-256 from the release's SHA256SUMS: 64 hex digits. A file with any other
# hash is never run.
$ExpectedSha256 = ''
# Where the binary lives on the endpoint: a folder only administrators can write to.
$InstallDir = Join-Path $env:ProgramFiles 'logoff-users'
# Extra arguments for the tool, separated by blanks, for example '--timeout 60s'. The
# tool waits up to 30s by default for sessions and processes to go.
$ToolArguments = ''
# ---------------------------------------------------------------------------------------

# No -Users argument reaches the tool as no list at all, which it refuses (exit 2): there is
# deliberately no default here, the default lives in the script's Default Arguments.
$UserList = ($Users | Where-Object { $_ }) -join ','

$ExePath = Join-Path $InstallDir 'logoff-users.exe'
$TempPath = Join-Path $InstallDir 'logoff-users.exe.download'

# The file's SHA-256 in upper-case hex, or '' when there is no such file.
function Get-Sha256([string]$Path) {
    if (-not (Test-Path -LiteralPath $Path -PathType Leaf)) { return '' }
    return (Get-FileHash -LiteralPath $Path -Algorithm SHA256).Hash
}

# Copies or downloads the binary from $BinarySource to $Destination. Throws on failure.
function Copy-Binary([string]$Destination) {
    if ($BinarySource -match '^https://') {
        # Windows PowerShell 5.1 may not offer TLS 1.2 by default.
        [Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12
        # The progress bar makes Invoke-WebRequest very slow in Windows PowerShell.
        $ProgressPreference = 'SilentlyContinue'
        Invoke-WebRequest -Uri $BinarySource -OutFile $Destination -UseBasicParsing -ErrorAction Stop
    } elseif ($BinarySource -match '^\\\\[^\\]+\\') {
        Copy-Item -LiteralPath $BinarySource -Destination $Destination -Force -ErrorAction Stop
    } else {
        throw "BinarySource is neither a UNC path (\\server\share\...) nor an https URL: '$BinarySource'"
    }
}

if ($ExpectedSha256 -notmatch '^[0-9A-Fa-f]{64}$') {
    Write-Output 'error: ExpectedSha256 at the top of this script is not a SHA-256 (64 hex digits); nothing was done'
    exit 10
}

# A binary that is missing, or is not the pinned build (say, an older release), is fetched
# into a temporary file, checked, and only then moved into place.
$hash = Get-Sha256 $ExePath
if ($hash -ne $ExpectedSha256) {
    if ($hash) { Write-Output "$ExePath has SHA-256 $hash, not the pinned $ExpectedSha256; replacing it" }
    if (-not $BinarySource) {
        Write-Output "error: $ExePath is missing or not the pinned build, and BinarySource is not set; nothing was done"
        exit 10
    }
    try {
        New-Item -ItemType Directory -Path $InstallDir -Force -ErrorAction Stop | Out-Null
        Write-Output "fetching $BinarySource"
        Copy-Binary $TempPath
    } catch {
        Write-Output "error: could not fetch $BinarySource ($($_.Exception.Message)); nothing was done"
        Remove-Item -LiteralPath $TempPath -Force -ErrorAction SilentlyContinue
        exit 10
    }
    $fetched = Get-Sha256 $TempPath
    if ($fetched -ne $ExpectedSha256) {
        Write-Output "error: the fetched file has SHA-256 $fetched, not the pinned $ExpectedSha256; refusing to run it; nothing was done"
        Remove-Item -LiteralPath $TempPath -Force -ErrorAction SilentlyContinue
        exit 11
    }
    try {
        if (Test-Path -LiteralPath $ExePath) { Remove-Item -LiteralPath $ExePath -Force -ErrorAction Stop }
        Move-Item -LiteralPath $TempPath -Destination $ExePath -ErrorAction Stop
    } catch {
        Write-Output "error: could not install $ExePath ($($_.Exception.Message)); nothing was done"
        Remove-Item -LiteralPath $TempPath -Force -ErrorAction SilentlyContinue
        exit 10
    }
    Write-Output "installed $ExePath"
}

# Checked again right before it runs: the hash of the very file that runs.
$hash = Get-Sha256 $ExePath
if ($hash -ne $ExpectedSha256) {
    Write-Output "error: $ExePath has SHA-256 $hash, not the pinned $ExpectedSha256; refusing to run it; nothing was done"
    exit 11
}
Write-Output "sha256 ok: $hash $ExePath"

# The list reaches the tool unchanged through LOGOFF_USERS rather than through --users:
# Windows PowerShell 5.1 does not escape double quotes inside an argument it passes to a
# program, so a list such as "John Smith",jdoe would reach the tool as other names.
$env:LOGOFF_USERS = $UserList
$toolArgv = $ToolArguments -split '\s+' | Where-Object { $_ }
# The tool writes UTF-8; without this, names such as Emile with an accent arrive garbled.
# There may be no console to set it on: that only costs the accents.
try { [Console]::OutputEncoding = [Text.Encoding]::UTF8 } catch { }
# With Continue, the tool's stderr lines (error records here) are printed like the others
# instead of stopping the script.
$ErrorActionPreference = 'Continue'
# A program that cannot be started (blocked by policy, say) is an error that does not stop
# the script: an unset exit code tells it apart from a run.
$global:LASTEXITCODE = $null
if ($toolArgv) {
    & $ExePath $toolArgv 2>&1 | ForEach-Object { "$_" }
} else {
    & $ExePath 2>&1 | ForEach-Object { "$_" }
}
if ($null -eq $LASTEXITCODE) {
    Write-Output "error: $ExePath could not be started; nothing was done"
    exit 10
}
exit $LASTEXITCODE
