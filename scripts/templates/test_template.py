"""What infra/template.yaml promises, checked offline (run by scripts/check-templates.sh).

Each test names the point of issue 18 it guards. The template is read with cfn-lint's decoder
(intrinsic-function tags become `{"Fn::…": …}`), and parameters, conditions, Rules and the
intrinsic functions the template uses are evaluated here for chosen parameter values, so a test
sees what CloudFormation would create for them. CALLTYPE_TEMPLATE overrides the template path.
"""

import itertools
import os
import re
from pathlib import Path

import pytest
import sqlglot
from cfnlint.decode import decode_str
from sqlglot import exp

from translate import translate

# The SAM translator builds ARNs for the region it runs in; no call leaves this machine.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = Path(os.environ.get("CALLTYPE_TEMPLATE", ROOT / "infra/template.yaml"))
TEMPLATE_TEXT = TEMPLATE_PATH.read_text(encoding="utf-8")
T, _matches = decode_str(TEMPLATE_TEXT)
PARAMS = T.get("Parameters", {})
RES = T["Resources"]
ACCOUNT = "123456789012"  # account ids are always 12 digits
NOVALUE = object()


# ---------------------------------------------------------------- a small CloudFormation evaluator
class Stack:
    """The template as CloudFormation would read it for one set of parameter values."""

    def __init__(self, stack_name="calltype", **overrides):
        unknown = set(overrides) - set(PARAMS)
        assert not unknown, f"no such parameters: {unknown}"
        self.values = {k: str(v.get("Default", "")) for k, v in PARAMS.items()}
        self.values.update({k: str(v) for k, v in overrides.items()})
        self.values.update(
            {
                "AWS::StackName": stack_name,
                "AWS::AccountId": ACCOUNT,
                "AWS::Region": "us-east-1",
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
            }
        )
        self.conditions = {}
        for name in T.get("Conditions", {}):
            self.condition(name)

    def condition(self, name):
        if name not in self.conditions:
            self.conditions[name] = bool(self.eval(T["Conditions"][name]))
        return self.conditions[name]

    def eval(self, node):
        """Resolves intrinsic functions; references to resources stay as `{"Ref"|"Fn::GetAtt": …}`."""
        if isinstance(node, list):
            out = [self.eval(n) for n in node]
            return [n for n in out if n is not NOVALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (fn, arg), = node.items()
            if fn == "Ref":
                if arg == "AWS::NoValue":
                    return NOVALUE
                return self.values[arg] if arg in self.values else {"Ref": arg}
            if fn == "Condition":
                return self.condition(arg)
            if fn == "Fn::If":
                return self.eval(arg[1] if self.condition(arg[0]) else arg[2])
            if fn == "Fn::Equals":
                a, b = (self.eval(x) for x in arg)
                return str(a) == str(b)
            if fn == "Fn::Not":
                return not self.eval(arg[0])
            if fn == "Fn::And":
                return all(self.eval(x) for x in arg)
            if fn == "Fn::Or":
                return any(self.eval(x) for x in arg)
            if fn == "Fn::Contains":
                return str(self.eval(arg[1])) in [str(x) for x in self.eval(arg[0])]
            if fn == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.eval(arg[1]))
                return self.sub(text, extra)
            if fn == "Fn::Split":
                return self.eval(arg[1]).split(arg[0]) if isinstance(self.eval(arg[1]), str) else node
            if fn == "Fn::Select":
                items = self.eval(arg[1])
                return items[int(arg[0])] if isinstance(items, list) else node
            if fn == "Fn::Join":
                items = self.eval(arg[1])
                return arg[0].join(items) if all(isinstance(i, str) for i in items) else node
            if fn in ("Fn::GetAtt", "Fn::ImportValue", "Fn::GetAZs"):
                return node
        out = {k: self.eval(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not NOVALUE}

    def sub(self, text, extra):
        def one(m):
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in extra:
                return str(extra[name])
            if name in self.values:
                return self.values[name]
            return "${" + name + "}"  # a resource attribute, unknown before deploy

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def exists(self, logical_id):
        cond = RES[logical_id].get("Condition")
        return cond is None or self.condition(cond)

    def props(self, logical_id):
        assert self.exists(logical_id), f"{logical_id} is not created for {self.values}"
        return self.eval(RES[logical_id].get("Properties", {}))

    def failed_rules(self):
        """The AssertDescription of every Rules assertion these values fail."""
        failed = []
        for name, rule in T.get("Rules", {}).items():
            if "RuleCondition" in rule and not self.eval(rule["RuleCondition"]):
                continue
            for a in rule["Assertions"]:
                if not self.eval(a["Assert"]):
                    failed.append(f"{name}: {a.get('AssertDescription', '')}")
        return failed


def of_type(kind):
    return [k for k, v in RES.items() if v["Type"] == kind]


def statements(policy_doc):
    """The statements of a policy document; both branches of a conditional (`Fn::If`) statement."""
    out = []
    for st in as_list(policy_doc["Statement"]):
        if "Fn::If" in st:
            out += [b for b in st["Fn::If"][1:] if isinstance(b, dict) and "Action" in b]
        else:
            out.append(st)
    return out


def as_list(x):
    return x if isinstance(x, list) else [x]


def translated_roles():
    out = translate(TEMPLATE_TEXT)
    return out, {k: v for k, v in out["Resources"].items() if v["Type"] == "AWS::IAM::Role"}


# ---------------------------------------------------------------- item 7: network isolation
def test_item7_network_isolation_never_on_a_serverless_endpoint():
    model = RES["Model"]["Properties"]
    assert "EnableNetworkIsolation" in model, "the model should still be isolated where SageMaker allows it"
    seen = 0
    for mode, etype in itertools.product(
        PARAMS["ClassifierMode"]["AllowedValues"], PARAMS["EndpointType"]["AllowedValues"]
    ):
        s = Stack(
            ImageUri="123456789012.dkr.ecr.us-east-1.amazonaws.com/calltype:1",
            ModelDataUrl="s3://b/calltype/model/model.tar.gz",
            ClassifierMode=mode,
            EndpointType=etype,
        )
        if s.failed_rules():
            continue  # embedded mode takes no image
        assert s.exists("Model"), "a model with an image and a model.tar.gz is created"
        isolated = s.props("Model").get("EnableNetworkIsolation") in (True, "true")
        serverless = s.exists("EndpointConfig") and any(
            "ServerlessConfig" in v for v in s.props("EndpointConfig")["ProductionVariants"]
        )
        assert not (isolated and serverless), (
            f"item 7: EnableNetworkIsolation is on for a serverless endpoint (mode={mode}, type={etype}); "
            "SageMaker Serverless Inference does not support network isolation"
        )
        if not serverless:
            assert isolated, f"item 7: no network isolation for mode={mode}, type={etype}"
        seen += serverless
    assert seen, "the default serverless endpoint was never built"


# ---------------------------------------------------------------- item 8: retention policies
def test_item8_buckets_are_deleted_when_their_first_create_rolls_back():
    for b in of_type("AWS::S3::Bucket"):
        assert RES[b].get("DeletionPolicy") == "RetainExceptOnCreate", (
            f"item 8: {b} DeletionPolicy is {RES[b].get('DeletionPolicy')!r}: with Retain a rolled-back first "
            "create orphans the bucket and the next deploy fails with 'already exists'"
        )
        # RetainExceptOnCreate is not an UpdateReplacePolicy value; Retain keeps data on replacement.
        assert RES[b].get("UpdateReplacePolicy") == "Retain", f"item 8: {b} UpdateReplacePolicy"


# ---------------------------------------------------------------- item 9: names fit at the longest stack name
def stack_name_parameter():
    """The parameter that Rules tie to AWS::StackName, so its constraints bound the stack name."""
    for rule in T.get("Rules", {}).values():
        for a in rule["Assertions"]:
            eq = a["Assert"].get("Fn::Equals")
            if eq and {"Ref": "AWS::StackName"} in eq:
                other = [x for x in eq if x != {"Ref": "AWS::StackName"}]
                if other and "Ref" in other[0] and "RuleCondition" not in rule:
                    return other[0]["Ref"]
    return None


def test_item9_every_name_fits_at_the_longest_allowed_stack_name():
    param = stack_name_parameter()
    assert param, (
        "item 9: nothing bounds the stack name: CloudFormation cannot measure AWS::StackName, so a Rule must "
        "tie it to a parameter whose MaxLength and AllowedPattern do"
    )
    p = PARAMS[param]
    assert "MaxLength" in p and "AllowedPattern" in p, f"item 9: {param} needs MaxLength and AllowedPattern"
    longest = "a" * int(p["MaxLength"])
    assert re.fullmatch(p["AllowedPattern"], longest), f"{p['AllowedPattern']} rejects {longest!r}"
    assert not re.fullmatch(p["AllowedPattern"], "Calltype"), "bucket names need a lowercase stack name"
    s = Stack(stack_name=longest, **{param: longest})
    assert not s.failed_rules(), s.failed_rules()
    assert Stack(stack_name="calltype", **{param: "other"}).failed_rules(), "the rule must compare the two"
    limits = {
        ("AWS::S3::Bucket", "BucketName"): 63,
        ("AWS::Serverless::Function", "FunctionName"): 64,
        ("AWS::Athena::WorkGroup", "Name"): 128,
    }
    checked = 0
    for (kind, prop), limit in limits.items():
        for r in of_type(kind):
            name = s.props(r).get(prop)
            if name is None:
                continue
            checked += 1
            assert len(name) <= limit, f"item 9: {r}.{prop} is {len(name)} characters at the longest stack name: {name}"
            if kind == "AWS::S3::Bucket":
                assert re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", name), f"{name} is not a bucket name"
    assert checked >= 4
    env = s.props("ClassifyFunction")["Environment"]["Variables"]
    assert len(env["CALLTYPE_TRANSFORM_JOB_PREFIX"]) <= 46, "transform job names would pass 63 characters"
    rule_name = s.props("ClassifyFunction")["Events"]["Schedule"]["Properties"]["Name"]
    assert len(rule_name) <= 64, f"EventBridge rule name {rule_name}"


# ---------------------------------------------------------------- item 10: lifecycle per prefix
def lifecycle(stack):
    return stack.props("DataBucket")["LifecycleConfiguration"]["Rules"]


def rules_for(stack, key):
    out = []
    for r in lifecycle(stack):
        prefix = r.get("Prefix", "")
        if isinstance(r.get("Filter"), dict):
            prefix = r["Filter"].get("Prefix", prefix)
        if r.get("Status") == "Enabled" and key.startswith(prefix):
            out.append(r)
    return out


def noncurrent_days(rules):
    """Days a noncurrent version can live under these rules (the shortest applicable expiry wins)."""
    days = [int(r["NoncurrentVersionExpiration"]["NoncurrentDays"]) for r in rules if "NoncurrentVersionExpiration" in r]
    return min(days) if days else None


def test_item10_master_versions_are_few_and_short_lived():
    s = Stack()
    master = "calltype/transcripts/date=2026-01-02/transcripts.csv"
    rules = rules_for(s, master)
    limited = [
        r for r in rules
        if "NewerNoncurrentVersions" in r.get("NoncurrentVersionExpiration", {})
        and r.get("Prefix", "").endswith("transcripts/")
    ]
    assert limited, "item 10: no rule on transcripts/ limits how many noncurrent master versions are kept"
    nv = limited[0]["NoncurrentVersionExpiration"]
    assert int(nv["NoncurrentDays"]) <= 1 and int(nv["NewerNoncurrentVersions"]) <= 3, f"item 10: {nv}"
    # Every version, the few kept ones included, is gone within a week: some rule without
    # NewerNoncurrentVersions applies to masters too.
    plain = [
        int(r["NoncurrentVersionExpiration"]["NoncurrentDays"])
        for r in rules
        if "NoncurrentVersionExpiration" in r and "NewerNoncurrentVersions" not in r["NoncurrentVersionExpiration"]
    ]
    assert plain and min(plain) <= 7, "item 10: the versions NewerNoncurrentVersions keeps never expire"


def test_item10_quarantine_and_stale_state_expire():
    s = Stack()
    q = rules_for(s, "calltype/quarantine/Analysis/Voice/2026/01/02/x_analysis_2026-01-02T00:00:00Z.json")
    assert any("ExpirationInDays" in r for r in q), "item 10: quarantine/ (raw JSON may sit there) never expires"
    assert noncurrent_days(q) is not None and noncurrent_days(q) <= 1, "item 10: expired quarantine copies linger as noncurrent versions"
    st = rules_for(s, "calltype/state/ingest/date=2026-01-02/checkpoint")
    assert noncurrent_days(st) is not None and noncurrent_days(st) <= 1, (
        "item 10: superseded state (checkpoints, watermarks, deleted transform manifests) is kept for days"
    )
    # Markers and checkpoints that are current stay: exactly-once needs them while a partition can grow.
    assert not any("ExpirationInDays" in r for r in st), "item 10: current ingest state must not expire (markers back exactly-once)"
    assert any(r.get("ExpiredObjectDeleteMarker") in (True, "true") for r in lifecycle(s)), (
        "item 10: expired delete markers are never removed"
    )


def test_item10_readme_has_the_storage_arithmetic():
    readme = (ROOT / "infra/README.md").read_text(encoding="utf-8")
    assert "10,000 calls a day" in readme, "item 10: infra/README.md lacks the storage arithmetic for 10,000 calls a day"


# ---------------------------------------------------------------- item 11: queries bound the transcripts date
def date_bounds(expr, alias):
    """True when `expr` compares `<alias>."date"` with something that is not a column."""
    for cmp in expr.find_all(exp.GTE, exp.GT, exp.EQ, exp.LT, exp.LTE, exp.Between, exp.In):
        if isinstance(cmp, (exp.Between, exp.In)):
            pairs = [(cmp.this, None)]
        else:
            pairs = [(cmp.this, cmp.expression), (cmp.expression, cmp.this)]
        for side, other in pairs:
            if isinstance(side, exp.Column) and side.name == "date" and side.table == alias:
                if not isinstance(other, exp.Column):
                    return True
    return False


SQL_FILES = sorted((ROOT / "infra/athena").glob("*.sql"))


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: p.name)
def test_item11_joins_on_transcripts_bound_its_date(path):
    tree = sqlglot.parse_one(path.read_text(encoding="utf-8"), read="trino")
    for join in tree.find_all(exp.Join):
        table = join.this
        if not (isinstance(table, exp.Table) and table.name == "transcripts"):
            continue
        alias = table.alias_or_name
        select = join.find_ancestor(exp.Select)
        where = select.args.get("where")
        on = join.args.get("on")
        bounded = (on is not None and date_bounds(on, alias)) or (where is not None and date_bounds(where, alias))
        assert bounded, (
            f"item 11: {path.name} joins calltype.transcripts AS {alias} with no bound on {alias}.\"date\" "
            "of its own: Athena reads every partition of the history"
        )


# ---------------------------------------------------------------- item 12: chat is ingested by default
def notifications(stack):
    out = []
    for q in stack.props("DataBucket")["NotificationConfiguration"]["QueueConfigurations"]:
        rules = {r["Name"]: r["Value"] for r in q["Filter"]["S3Key"]["Rules"]}
        out.append((q["Event"], rules.get("prefix", ""), rules.get("suffix", "")))
    return out


def triggers(stack, key):
    return any(key.startswith(p) and key.endswith(sfx) for _e, p, sfx in notifications(stack))


def ingest_may_read(stack, key):
    for st in stack.props("IngestFunction")["Policies"][0]["Statement"]:
        if "s3:GetObject" in as_list(st["Action"]):
            for r in as_list(st["Resource"]):
                arn = f"arn:aws:s3:::calltype-data-{ACCOUNT}/{key}"
                if re.fullmatch(re.escape(r).replace(r"\*", ".*"), arn):
                    return True
    return False


KEYS = {
    ("redacted", "voice"): "Analysis/Voice/Redacted/2026/01/02/c1_analysis_redacted_2026-01-02T10:00:00Z.json",
    ("redacted", "chat"): "Analysis/Chat/Redacted/2026/01/02/c2_analysis_redacted_2026-01-02T10:00:00Z.json",
    ("raw", "voice"): "Analysis/Voice/2026/01/02/c1_analysis_2026-01-02T10:00:00Z.json",
    ("raw", "chat"): "Analysis/Chat/2026/01/02/c2_analysis_2026-01-02T10:00:00Z.json",
}


@pytest.mark.parametrize("copy", ["redacted", "raw"])
def test_item12_voice_and_chat_trigger_ingest(copy):
    overrides = {"ContactLensCopy": copy}
    s = Stack(**overrides)
    for (c, channel), key in KEYS.items():
        if c != copy:
            continue
        assert triggers(s, key), f"item 12: a {copy} {channel} analysis ({key}) never reaches ingest by default"
        assert ingest_may_read(s, key), f"item 12: ingest may not read {key}"
    if copy == "redacted":
        raw = KEYS[("raw", "voice")]
        assert not ingest_may_read(s, raw), "ingest of the redacted copy must not be able to read raw analyses"
    for root in ("connect/my-instance/",):
        s2 = Stack(**overrides, **{root_param(): root})
        assert triggers(s2, root + KEYS[(copy, "chat")]), "a root prefix moves both triggers"
    # S3 refuses overlapping notification filters for the same event.
    n = notifications(s)
    for (e1, p1, s1), (e2, p2, s2_) in itertools.combinations(n, 2):
        overlap = (p1.startswith(p2) or p2.startswith(p1)) and (s1.endswith(s2_) or s2_.endswith(s1))
        assert not (overlap and e1 == e2), f"item 12: notification filters overlap: {p1} and {p2}"
    # Our own outputs never trigger ingest.
    assert not triggers(s, "calltype/transcripts/date=2026-01-02/transcripts.csv")


def root_param():
    names = [k for k in PARAMS if "Root" in k or k == "ContactLensPrefix"]
    return names[0]


# ---------------------------------------------------------------- item 13: one classify run at a time
def test_item13_classify_runs_one_at_a_time_by_default():
    p = RES["ClassifyFunction"]["Properties"]
    assert "ReservedConcurrentExecutions" in p, "item 13: classify has no reserved concurrency: runs overlap"
    assert Stack().props("ClassifyFunction").get("ReservedConcurrentExecutions") in (1, "1"), (
        "item 13: classify's reserved concurrency must default to 1"
    )
    params = [k for k in PARAMS if "Concurrency" in k and "Classify" in k]
    assert params, "item 13: the reserved concurrency should be a parameter"
    unreserved = Stack(**{params[0]: 0}).props("ClassifyFunction")
    assert "ReservedConcurrentExecutions" not in unreserved, "0 must mean unreserved, not a throttled function"
    for skip in RES["ClassifyFunction"].get("Metadata", {}).get("checkov", {}).get("skip", []):
        if skip["id"] == "CKV_AWS_115":
            assert "cannot double-label" not in skip["comment"] and params[0] in skip["comment"], (
                "item 13: the CKV_AWS_115 skip reason is wrong: overlapping runs call the endpoint twice"
            )


# ---------------------------------------------------------------- item 14: SQS batching arithmetic
def test_item14_batching_window_fits_the_visibility_timeout():
    timeout = int(RES["IngestFunction"]["Properties"]["Timeout"])
    visibility = int(RES["IngestQueue"]["Properties"]["VisibilityTimeout"])
    window = PARAMS["IngestBatchingWindowSeconds"]
    largest = int(window["MaxValue"])
    # Rules may bound it further; take the largest window any rule lets through.
    allowed = [w for w in range(0, largest + 1) if not Stack(IngestBatchingWindowSeconds=w, IngestBatchSize=10).failed_rules()]
    assert allowed, "no batching window is allowed at all"
    assert visibility >= 6 * timeout + max(allowed), (
        f"item 14: a batching window of {max(allowed)} s breaks the visibility arithmetic: "
        f"{visibility} < 6 x {timeout} + {max(allowed)} (AWS guidance for Lambda and SQS)"
    )


def test_item14_batches_over_ten_need_a_window():
    assert Stack(IngestBatchSize=11, IngestBatchingWindowSeconds=0).failed_rules(), (
        "item 14: no Rule refuses a batch size above 10 with no batching window (Lambda rejects it)"
    )
    assert not Stack(IngestBatchSize=100, IngestBatchingWindowSeconds=1).failed_rules()
    assert not Stack(IngestBatchSize=10, IngestBatchingWindowSeconds=0).failed_rules()
    assert not Stack().failed_rules(), f"the defaults fail a rule: {Stack().failed_rules()}"


# ---------------------------------------------------------------- item 15: least privilege
def test_item15_no_managed_sqs_policy_and_one_queue():
    out, roles = translated_roles()
    for name, role in roles.items():
        arns = [str(a) for a in role["Properties"].get("ManagedPolicyArns", [])]
        assert not any("AWSLambdaSQSQueueExecutionRole" in a for a in arns), (
            f"item 15: {name} has AWSLambdaSQSQueueExecutionRole (receive/delete on every queue)"
        )
    sqs = []
    for name, role in roles.items():
        for pol in role["Properties"].get("Policies", []):
            for st in statements(pol["PolicyDocument"]):
                if any(str(a).startswith("sqs:Receive") for a in as_list(st["Action"])):
                    sqs.append((name, st))
    assert sqs, "item 15: no role may receive from the ingest queue"
    for name, st in sqs:
        assert as_list(st["Resource"]) == [{"Fn::GetAtt": ["IngestQueue", "Arn"]}], (
            f"item 15: {name} receives from {st['Resource']}, not only the ingest queue"
        )
    esm = [r for r in out["Resources"].values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert any(r["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]} for r in esm)


def all_statements():
    out, roles = translated_roles()
    for name, role in roles.items():
        for pol in role["Properties"].get("Policies", []):
            for st in statements(pol["PolicyDocument"]):
                yield name, st


def test_item15_no_unused_s3_actions():
    for name, st in all_statements():
        if isinstance(st, dict) and "Action" in st:
            assert "s3:ListMultipartUploadParts" not in as_list(st["Action"]), (
                f"item 15: {name} is granted s3:ListMultipartUploadParts, which no code calls"
            )


def test_item15_ecr_pull_is_limited_to_the_image_repository():
    image = "210987654321.dkr.ecr.eu-west-1.amazonaws.com/team/calltype@sha256:" + "a" * 64
    s = Stack(ImageUri=image, ModelDataUrl="s3://b/m/model.tar.gz")
    pol = s.props("ModelExecutionRole")["Policies"][0]["PolicyDocument"]
    pulls = [st for st in statements(pol) if "ecr:BatchGetImage" in as_list(st["Action"])]
    assert pulls
    for st in pulls:
        assert as_list(st["Resource"]) == ["arn:aws:ecr:eu-west-1:210987654321:repository/team/calltype"], (
            f"item 15: the SageMaker role pulls from {st['Resource']}, not only the image's repository"
        )
    tagged = Stack(ImageUri="123456789012.dkr.ecr.us-east-1.amazonaws.com/calltype:v1", ModelDataUrl="s3://b/m/model.tar.gz")
    pol = tagged.props("ModelExecutionRole")["Policies"][0]["PolicyDocument"]
    res = [st["Resource"] for st in statements(pol) if "ecr:BatchGetImage" in as_list(st["Action"])]
    assert res == ["arn:aws:ecr:us-east-1:123456789012:repository/calltype"], res
    assert re.fullmatch(PARAMS["ImageUri"]["AllowedPattern"], image)
    assert not re.fullmatch(PARAMS["ImageUri"]["AllowedPattern"], "docker.io/library/calltype:latest")


def test_item15_a_missing_key_answers_404():
    """S3 answers 404 for a missing key only to callers with s3:ListBucket on the bucket (HeadObject and
    GetObject API reference); a request for an object carries no s3:prefix, so a grant conditioned on it is not
    the documented case. Ingest and classify HEAD/GET keys that may not exist yet on every first append."""
    for fn in ("IngestFunction", "ClassifyFunction"):
        lists = [st for st in Stack().props(fn)["Policies"][0]["Statement"] if "s3:ListBucket" in as_list(st["Action"])]
        assert lists, f"item 15: {fn} has no s3:ListBucket: a missing key answers 403"
        assert any("Condition" not in st for st in lists), (
            f"item 15: {fn}'s s3:ListBucket holds only under an s3:prefix condition, which a HEAD of a missing key "
            "does not carry: S3 may answer 403, and the first append of a day fails"
        )


# ---------------------------------------------------------------- item 16: a first deploy with no model
def classifier_ready(s):
    env = s.props("ClassifyFunction")["Environment"]["Variables"]
    if env["CALLTYPE_MODE"] == "transform":
        return s.exists("Model")
    if env["CALLTYPE_MODE"] == "embedded":
        return env["CALLTYPE_MODEL_S3_URI"] != ""
    return s.exists("Endpoint") or s.values.get("EndpointName", "") != ""


def schedule_on(s):
    ev = s.props("ClassifyFunction")["Events"]["Schedule"]["Properties"]
    if "State" in ev:
        return ev["State"] == "ENABLED"
    return ev.get("Enabled", True) in (True, "true")


def test_item16_first_deploy_has_no_model_and_no_failing_schedule():
    s = Stack()
    assert not s.failed_rules(), s.failed_rules()
    sagemaker = [r for r, v in RES.items() if v["Type"].startswith("AWS::SageMaker::") and s.exists(r)]
    assert not sagemaker, f"item 16: the default deploy creates {sagemaker}, before any model exists"
    assert not schedule_on(s), "item 16: with no model the classify schedule runs (and fails) every 5 minutes"


def test_item16_schedule_runs_only_with_a_classifier():
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/calltype:1"
    for mode, img, url, endpoint in itertools.product(
        ["endpoint", "transform", "embedded"], ["", image], ["", "s3://b/m/model.tar.gz"], ["", "mine"]
    ):
        kw = dict(ClassifierMode=mode, ImageUri=img, ModelDataUrl=url)
        if "EndpointName" in PARAMS:
            kw["EndpointName"] = endpoint
        s = Stack(**kw)
        if s.failed_rules():
            continue
        assert schedule_on(s) == classifier_ready(s), f"item 16: schedule {'on' if schedule_on(s) else 'off'} for {kw}"
        if s.exists("Model"):
            url_used = s.props("Model")["PrimaryContainer"]["ModelDataUrl"]
            assert url_used == url, f"item 16: the model reads {url_used}, not ModelDataUrl"
    assert Stack(ImageUri=image, ModelDataUrl="").failed_rules(), (
        "item 16: an image with no ModelDataUrl points SageMaker at a model.tar.gz nobody uploaded"
    )


def test_item16_readme_documents_the_first_deploy_order():
    readme = (ROOT / "infra/README.md").read_text(encoding="utf-8")
    m = re.search(r"## First deploy\n(.*?)\n## ", readme, re.S)
    assert m, "item 16: infra/README.md has no '## First deploy' section"
    steps = re.findall(r"^(\d)\. (.*?)(?=^\d\. |\Z)", m.group(1), re.S | re.M)
    words = ("make deploy", "model.tar.gz", "ImageUri")
    assert len(steps) >= 3 and all(w in text for w, (_n, text) in zip(words, steps)), (
        "item 16: the steps must be: deploy, upload the model, update with ImageUri and ModelDataUrl"
    )


def test_item16_the_image_builds_for_linux_amd64():
    froms = [l for l in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines() if l.upper().startswith("FROM ")]
    assert froms
    for line in froms:
        assert "--platform=linux/amd64" in line, f"item 16: `{line}` builds for the host's platform"


def test_also_readme_does_not_say_classify_rejects_transform_mode():
    readme = (ROOT / "infra/README.md").read_text(encoding="utf-8")
    assert "rejects `CALLTYPE_MODE=transform`" not in readme and "does not implement" not in readme, (
        "infra/README.md says classify rejects transform mode; it implements it"
    )


# ---------------------------------------------------------------- issue 19: embedded mode
def classify_statements(s):
    return [st for st in s.props("ClassifyFunction")["Policies"][0]["Statement"] if isinstance(st, dict)]


def test_embedded_mode_has_no_sagemaker_and_reads_only_its_artifact():
    url = "s3://models-bucket/star/v3/model.tar.gz"
    s = Stack(ClassifierMode="embedded", ModelDataUrl=url)
    assert not s.failed_rules(), s.failed_rules()
    sagemaker = [r for r, v in RES.items() if v["Type"].startswith("AWS::SageMaker::") and s.exists(r)]
    assert not sagemaker, f"embedded mode creates {sagemaker}"
    assert not s.exists("ModelExecutionRole")
    sts = classify_statements(s)
    actions = [a for st in sts for a in as_list(st["Action"])]
    assert not [a for a in actions if a.startswith("sagemaker:")], f"embedded mode may call SageMaker: {actions}"
    reads = [st for st in sts if st.get("Sid") == "ReadTheModelArtifact"]
    assert len(reads) == 1 and as_list(reads[0]["Action"]) == ["s3:GetObject"], reads
    assert as_list(reads[0]["Resource"]) == ["arn:aws:s3:::models-bucket/star/v3/model.tar.gz"], reads
    props = s.props("ClassifyFunction")
    env = props["Environment"]["Variables"]
    assert (env["CALLTYPE_MODE"], env["CALLTYPE_MODEL_S3_URI"]) == ("embedded", url)
    assert str(props["MemorySize"]) == str(PARAMS["EmbeddedMemoryMB"]["Default"]) == "3538"
    assert schedule_on(s)
    # No model yet: nothing to read, the schedule stays off.
    first = Stack(ClassifierMode="embedded")
    assert not first.failed_rules()
    assert not [st for st in classify_statements(first) if st.get("Sid") == "ReadTheModelArtifact"]
    assert not schedule_on(first)
    # An image makes no sense without SageMaker: the Rule says so.
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/calltype:1"
    assert Stack(ClassifierMode="embedded", ImageUri=image, ModelDataUrl=url).failed_rules()


def test_only_endpoint_mode_may_invoke_an_endpoint():
    url = "s3://b/m/model.tar.gz"
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/calltype:1"
    for mode, kw in [
        ("endpoint", dict(EndpointName="mine")),
        ("transform", dict(ImageUri=image, ModelDataUrl=url)),
        ("embedded", dict(ModelDataUrl=url)),
    ]:
        s = Stack(ClassifierMode=mode, **kw)
        invokes = [st for st in classify_statements(s) if "sagemaker:InvokeEndpoint" in as_list(st["Action"])]
        assert bool(invokes) == (mode == "endpoint"), f"{mode}: InvokeEndpoint granted={bool(invokes)}"
        assert str(s.props("ClassifyFunction")["MemorySize"]) == ("3538" if mode == "embedded" else "1024")


def test_embedded_mode_is_explained_in_the_readme():
    readme = (ROOT / "infra/README.md").read_text(encoding="utf-8")
    m = re.search(r"## Embedded mode\n(.*?)(\n## |\Z)", readme, re.S)
    assert m, "infra/README.md has no '## Embedded mode' section"
    for word in ("EmbeddedMemoryMB", "3538", "1,769", "Timeout", "ModelDataUrl"):
        assert word in m.group(1), f"the Embedded mode section does not mention {word}"
