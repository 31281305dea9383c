# Sourced by ansible/test.sh and ci/ansible.sh: puts ansible-playbook, ansible-galaxy and
# ansible-lint on PATH from a venv (Debian 12 refuses pip installs into the system Python).
# The "ansible" package from PyPI ships the ansible.windows collection that
# ansible/requirements.yml names, so no Galaxy download is needed.
#
#   LOGOFF_ANSIBLE_VENV   the venv (default /var/cache/logoff-users/ansible-venv as root,
#                         else ~/.cache/logoff-users/ansible-venv)
ansible_venv_setup() {
  local want="ansible ansible-lint" venv py
  if [ "$(id -u)" = 0 ]; then venv=${LOGOFF_ANSIBLE_VENV:-/var/cache/logoff-users/ansible-venv}
  else venv=${LOGOFF_ANSIBLE_VENV:-$HOME/.cache/logoff-users/ansible-venv}; fi
  if [ ! -x "$venv/bin/ansible-lint" ] || [ "$(cat "$venv/.logoff-users-packages" 2>/dev/null)" != "$want" ]; then
    echo "ansible venv: pip install $want into $venv" >&2
    py=python3
    if ! "$py" -c 'import venv, ensurepip' 2>/dev/null; then
      [ "$(id -u)" = 0 ] || { echo "python3-venv is missing: apt-get install python3-venv" >&2; return 1; }
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; }
      py=/usr/bin/python3
    fi
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    "$py" -m venv "$venv"
    # shellcheck disable=SC2086 # two package names
    "$venv/bin/pip" install -q --disable-pip-version-check $want || { rm -rf "$venv"; return 1; }
    echo "$want" >"$venv/.logoff-users-packages"
  fi
  PATH="$venv/bin:$PATH"
  export PATH
}
