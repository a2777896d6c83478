#!/usr/bin/env bash
# Offline checks for infra/template.yaml, as CI runs them:
#   1. cfn-lint on the SAM template;
#   2. cfn-lint on the template as SAM translates it (catches what 1 and 3 miss, e.g. the
#      E3004 circular dependency an S3 notification plus a policy on the same bucket can make);
#   3. sam validate --lint;
#   4. checkov (CloudFormation framework) on the template and on its translation: no failed check;
#      skips live in the template's resource Metadata (checkov: skip:) with a written reason;
#   5. scripts/templates/test_template.py (pytest): what the stack promises (names fit, lifecycle, IAM,
#      Rules, the first deploy with no model, the Athena queries' date bounds, ...).
# Tools live in a venv at .venv-infra/ (created on first run; CALLTYPE_INFRA_VENV overrides).
# No AWS account, credentials or network access to AWS is needed. Exits non-zero on any failure.
# Usage: scripts/check-templates.sh [TEMPLATE]   (default infra/template.yaml)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TEMPLATE="${1:-infra/template.yaml}"
VENV="${CALLTYPE_INFRA_VENV:-$ROOT/.venv-infra}"
PYTHON="${PYTHON:-python3}"
# Pinned so a new checkov or cfn-lint rule cannot turn CI red overnight; bump deliberately.
TOOLS="${CALLTYPE_INFRA_TOOLS:-cfn-lint==1.58.0 aws-sam-cli==1.170.0 checkov==3.2.459 pytest==8.4.2 sqlglot==27.8.0}"

export SAM_CLI_TELEMETRY=0
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
# checkov: no calls home, no version check.
export BC_SKIP_MAPPING=TRUE CHECKOV_SKIP_VERSION_CHECK=TRUE

step() { printf '\n==> %s\n' "$*"; }
run() { printf '+ %s\n' "$*"; "$@"; }

start=$(date +%s)

stamp="$VENV/.calltype-tools"
if [[ ! -x "$VENV/bin/cfn-lint" || ! -x "$VENV/bin/sam" || ! -x "$VENV/bin/checkov" || ! -x "$VENV/bin/pytest" \
      || "$(cat "$stamp" 2>/dev/null)" != "$TOOLS" ]]; then
  step "installing $TOOLS into $VENV"
  [[ -x "$VENV/bin/pip" ]] || run "$PYTHON" -m venv "$VENV"
  run "$VENV/bin/pip" install --quiet --upgrade pip
  # shellcheck disable=SC2086
  run "$VENV/bin/pip" install --quiet $TOOLS
  printf '%s' "$TOOLS" > "$stamp"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
printf 'tools: cfn-lint %s, sam %s, aws-sam-translator %s, checkov %s\n' \
  "$(cfn-lint --version | awk '{print $2}')" \
  "$(sam --version | awk '{print $4}')" \
  "$(python -c 'import samtranslator; print(samtranslator.__version__)')" \
  "$(checkov --version)"

failed=()

step "1/5 cfn-lint $TEMPLATE"
run cfn-lint "$TEMPLATE" || failed+=("cfn-lint")

step "2/5 SAM-translate $TEMPLATE, then cfn-lint the result"
workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT
translated="$workdir/template.translated.json"
if run python scripts/templates/translate.py "$TEMPLATE" "$translated"; then
  run cfn-lint "$translated" || failed+=("cfn-lint (translated)")
else
  failed+=("sam translate")
fi

step "3/5 sam validate --lint"
run sam validate --lint --template "$TEMPLATE" --region us-east-1 || failed+=("sam validate --lint")

step "4/5 checkov (cloudformation)"
run checkov --file "$TEMPLATE" --framework cloudformation --compact --quiet --skip-download || failed+=("checkov")
# The translated form also shows the IAM roles, event source mappings and rules SAM generates.
if [[ -s "$translated" ]]; then
  run checkov --file "$translated" --framework cloudformation --compact --quiet --skip-download \
    || failed+=("checkov (translated)")
fi

step "5/5 the stack's promises (scripts/templates/test_template.py)"
CALLTYPE_TEMPLATE="$(realpath "$TEMPLATE")" run python -m pytest -q -p no:cacheprovider scripts/templates/test_template.py \
  || failed+=("test_template.py")

elapsed=$(( $(date +%s) - start ))
if ((${#failed[@]})); then
  printf '\ncheck-templates: FAILED (%s) in %ss\n' "$(printf '%s; ' "${failed[@]}")" "$elapsed"
  exit 1
fi
printf '\ncheck-templates: all checks passed in %ss\n' "$elapsed"
