"""SAM-translate a template offline, as CloudFormation would see it after `sam build` / `sam package`.

Usage: python translate.py TEMPLATE OUT.json   (or import `translate`)
"""

import copy
import json
import sys

from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform


class NoManagedPolicies:
    """The translator asks IAM for managed-policy ARNs only when a template names one; offline we know none."""

    def load(self):
        return {}


def translate(template_text):
    """The translated template (a dict) of a SAM template's text."""
    template = yaml_parse(template_text)
    # `sam build` / `sam package` replace local CodeUri paths with S3 locations before CloudFormation
    # sees the template; the translator insists on that form, so stand in a placeholder.
    for name, res in template["Resources"].items():
        props = res.get("Properties") or {}
        if res.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            if not props["CodeUri"].startswith("s3://"):
                props["CodeUri"] = f"s3://calltype-check-placeholder/{name}.zip"
    return transform(copy.deepcopy(template), {}, NoManagedPolicies())


if __name__ == "__main__":
    src, dst = sys.argv[1], sys.argv[2]
    with open(src, encoding="utf-8") as f:
        out = translate(f.read())
    with open(dst, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1)
    print(f"translated into {len(out['Resources'])} resources: {dst}")
