#!/usr/bin/env bash
# Offline checks for infra/template.yaml, as CI runs them:
#   1. cfn-lint on the SAM template;
#   2. cfn-lint on the template as SAM translates it (catches what 1 and 3 miss, e.g. the
#      E3004 circular dependency an S3 notification plus a policy on the same bucket can make);
#   3. sam validate --lint;
#   4. checkov (CloudFormation framework) on the template and on its translation: no failed check;
#      skips live in the template's resource Metadata (checkov: skip:) with a written reason.
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
TOOLS="${CALLTYPE_INFRA_TOOLS:-cfn-lint==1.58.0 aws-sam-cli==1.170.0 checkov==3.2.459}"

export SAM_CLI_TELEMETRY=0
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
# checkov: no calls home, no version check.
export BC_SKIP_MAPPING=TRUE CHECKOV_SKIP_VERSION_CHECK=TRUE

step() { printf '\n==> %s\n' "$*"; }
run() { printf '+ %s\n' "$*"; "$@"; }

start=$(date +%s)

stamp="$VENV/.calltype-tools"
if [[ ! -x "$VENV/bin/cfn-lint" || ! -x "$VENV/bin/sam" || ! -x "$VENV/bin/checkov" \
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

step "1/4 cfn-lint $TEMPLATE"
run cfn-lint "$TEMPLATE" || failed+=("cfn-lint")

step "2/4 SAM-translate $TEMPLATE, then cfn-lint the result"
workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT
translated="$workdir/template.translated.json"
if run python - "$TEMPLATE" "$translated" <<'PY'; then
import json
import sys

from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform


class NoManagedPolicies:
    """The translator asks IAM for managed-policy ARNs only when a template names one; offline we know none."""

    def load(self):
        return {}


src, dst = sys.argv[1], sys.argv[2]
with open(src, encoding="utf-8") as f:
    template = yaml_parse(f.read())
# `sam build` / `sam package` replace local CodeUri paths with S3 locations before CloudFormation
# sees the template; the translator insists on that form, so stand in a placeholder.
for name, res in template["Resources"].items():
    props = res.get("Properties") or {}
    if res.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
        if not props["CodeUri"].startswith("s3://"):
            props["CodeUri"] = f"s3://calltype-check-placeholder/{name}.zip"
out = transform(template, {}, NoManagedPolicies())
with open(dst, "w", encoding="utf-8") as f:
    json.dump(out, f, indent=1)
print(f"translated {len(template['Resources'])} resources into {len(out['Resources'])}: {dst}")
PY
  run cfn-lint "$translated" || failed+=("cfn-lint (translated)")
else
  failed+=("sam translate")
fi

step "3/4 sam validate --lint"
run sam validate --lint --template "$TEMPLATE" --region us-east-1 || failed+=("sam validate --lint")

step "4/4 checkov (cloudformation)"
run checkov --file "$TEMPLATE" --framework cloudformation --compact --quiet --skip-download || failed+=("checkov")
# The translated form also shows the IAM roles, event source mappings and rules SAM generates.
if [[ -s "$translated" ]]; then
  run checkov --file "$translated" --framework cloudformation --compact --quiet --skip-download \
    || failed+=("checkov (translated)")
fi

elapsed=$(( $(date +%s) - start ))
if ((${#failed[@]})); then
  printf '\ncheck-templates: FAILED (%s) in %ss\n' "$(printf '%s; ' "${failed[@]}")" "$elapsed"
  exit 1
fi
printf '\ncheck-templates: all checks passed in %ss\n' "$elapsed"
