"""Least-privilege checks of deploy/policies/*.json and of fruits.yaml.

Each role's allowed (action, resource, list-prefixes) set must equal the table
below exactly: a grant added or removed anywhere fails. The template's inline
policies must equal the JSON files once the bucket ARNs are substituted.
Run: python -m pytest cloud-aggregator/deploy/tests
"""

import copy
import fnmatch
import json
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[1]
POLICIES = DEPLOY / "policies"
TEMPLATE = DEPLOY / "fruits.yaml"

DATA = "arn:aws:s3:::fruits-data-ACCOUNT"
# A model id (sha256 hex): each model has its own projection series and codes.
MODEL = "ab" * 32
OPS = "arn:aws:s3:::fruits-ops-ACCOUNT"

# The intended table: (action, resource, allowed s3:prefix values or None = any).
INTENDED = {
    "emr-instance": {
        ("s3:ListBucket", DATA, frozenset({"incoming/", "incoming/*", "runs/", "runs/*"})),
        ("s3:GetObject", f"{DATA}/incoming/*", None),
        ("s3:GetObject", f"{DATA}/runs/*", None),
        ("s3:PutObject", f"{DATA}/runs/*", None),
        ("s3:GetObject", f"{DATA}/models/projection/*/latest.json", None),
        ("s3:PutObject", f"{DATA}/quarantine/*", None),
        ("s3:PutObject", f"{DATA}/models/*", None),
        ("s3:PutObject", f"{DATA}/reports/*", None),
        ("s3:ListBucket", OPS, frozenset({"releases/", "releases/*"})),
        ("s3:GetObject", f"{OPS}/releases/*", None),
        ("s3:PutObject", f"{OPS}/emr-logs/*", None),
    },
    "ingest": {
        ("s3:PutObject", f"{DATA}/incoming/*", None),
        ("s3:PutObject", f"{DATA}/codes/*", None),
    },
    "client-read": {
        ("s3:GetObject", f"{DATA}/models/*", None),
    },
    "operator": {
        ("s3:ListBucket", DATA, None),
        ("s3:ListBucketVersions", DATA, None),
        ("s3:ListBucket", OPS, None),
        ("s3:ListBucketVersions", OPS, None),
        ("s3:GetObject", f"{DATA}/*", None),
        ("s3:GetObjectVersion", f"{DATA}/*", None),
        ("s3:GetObject", f"{OPS}/*", None),
        ("s3:GetObjectVersion", f"{OPS}/*", None),
        ("s3:DeleteObject", f"{DATA}/quarantine/*", None),
    },
}

# policy file stem -> (template role logical id, inline policy name)
TEMPLATE_POLICIES = {
    "emr-instance": ("EmrInstanceRole", "fruits-emr-instance"),
    "ingest": ("IngestRole", "fruits-ingest"),
    "client-read": ("ModelReaderRole", "fruits-client-read"),
    "operator": ("OperatorRole", "fruits-operator"),
}

BUCKET_LEVEL = {"s3:ListBucket", "s3:ListBucketVersions"}


def as_list(value):
    return value if isinstance(value, list) else [value]


def load(name):
    return json.loads((POLICIES / f"{name}.json").read_text())


# ------------------------------------------------------------------ checking


def grants(policy):
    """Allowed (action, resource, prefixes) triples; raises on shapes we forbid."""
    out = set()
    for st in as_list(policy["Statement"]):
        for banned in ("NotAction", "NotResource", "NotPrincipal"):
            if banned in st:
                raise ValueError(f"{banned} is not allowed: {st}")
        if st["Effect"] != "Allow":
            raise ValueError(f"identity policies here only allow: {st}")
        cond = st.get("Condition", {})
        prefixes = None
        if cond:
            if set(cond) != {"StringLike"} or set(cond["StringLike"]) != {"s3:prefix"}:
                raise ValueError(f"unexpected condition: {cond}")
            prefixes = frozenset(as_list(cond["StringLike"]["s3:prefix"]))
        for action in as_list(st["Action"]):
            for resource in as_list(st["Resource"]):
                out.add((action, resource, prefixes))
    return out


def problems(policy, intended):
    """Everything wrong with `policy` against the intended grant set (empty = ok)."""
    found = []
    try:
        got = grants(policy)
    except (ValueError, KeyError) as exc:
        return [str(exc)]
    for action, resource, prefixes in got:
        if action.startswith("s3:") and ("*" in action or action == "s3"):
            found.append(f"wildcard action {action}")
        if "*" == action:
            found.append("action *")
        if action.startswith("s3:") and not resource.startswith("arn:aws:s3:::"):
            found.append(f"{action} on non-bucket resource {resource!r}")
        if action in BUCKET_LEVEL and "/" in resource.removeprefix("arn:aws:s3:::"):
            found.append(f"{action} must name the bucket, not {resource}")
        if action not in BUCKET_LEVEL and prefixes is not None:
            found.append(f"s3:prefix condition on object action {action}")
    for extra in sorted(got - intended, key=str):
        found.append(f"not intended: {extra}")
    for missing in sorted(intended - got, key=str):
        found.append(f"missing: {missing}")
    return found


def allows(policy, action, arn, prefix=None):
    """Tiny evaluator: is `action` on `arn` (with list prefix) allowed?"""
    for a, resource, prefixes in grants(policy):
        if not fnmatch.fnmatchcase(action, a) or not fnmatch.fnmatchcase(arn, resource):
            continue
        if prefixes is None or (
            prefix is not None and any(fnmatch.fnmatchcase(prefix, p) for p in prefixes)
        ):
            return True
    return False


# ------------------------------------------------------------------ files


@pytest.mark.parametrize("name", sorted(INTENDED))
def test_policy_equals_intended_table(name):
    assert problems(load(name), INTENDED[name]) == []


def test_every_policy_file_is_in_the_table():
    assert {p.stem for p in POLICIES.glob("*.json")} == set(INTENDED)


def test_ingest_writes_incoming_and_codes_only():
    p = load("ingest")
    assert allows(p, "s3:PutObject", f"{DATA}/incoming/2025-01-01/dev1/b1.shard")
    assert allows(p, "s3:PutObject", f"{DATA}/codes/{MODEL}/v1/dev1/b1.shard")
    assert not allows(p, "s3:GetObject", f"{DATA}/codes/{MODEL}/v1/dev1/b1.shard")
    assert not allows(p, "s3:GetObject", f"{DATA}/incoming/2025-01-01/dev1/b1.shard")
    assert not allows(p, "s3:ListBucket", DATA, "incoming/")
    assert not allows(p, "s3:ListBucket", DATA, "")
    for key in (f"models/projection/{MODEL}/v1.bin", f"models/projection/{MODEL}/latest.json",
                "runs/r1/report.json", "quarantine/r1/x", "reports/r1/index.html"):
        assert not allows(p, "s3:PutObject", f"{DATA}/{key}")
        assert not allows(p, "s3:GetObject", f"{DATA}/{key}")
    assert not allows(p, "s3:DeleteObject", f"{DATA}/incoming/x.shard")


def test_emr_reads_incoming_writes_outputs_never_deletes():
    p = load("emr-instance")
    assert allows(p, "s3:GetObject", f"{DATA}/incoming/d/dev/b.shard")
    assert allows(p, "s3:ListBucket", DATA, "incoming/2025-01-01/")
    assert allows(p, "s3:ListBucket", DATA, "runs/r1/sketches/")
    assert not allows(p, "s3:ListBucket", DATA, "models/")
    assert not allows(p, "s3:ListBucket", DATA, "")
    assert not allows(p, "s3:PutObject", f"{DATA}/incoming/d/dev/b.shard")
    for prefix in ("runs/r1/sketches/0", "quarantine/r1/b.shard",
                   f"models/projection/{MODEL}/v2.bin", "reports/r1/index.html"):
        assert allows(p, "s3:PutObject", f"{DATA}/{prefix}")
    assert allows(p, "s3:GetObject", f"{DATA}/models/projection/{MODEL}/latest.json")
    assert not allows(p, "s3:GetObject", f"{DATA}/models/projection/{MODEL}/v1.bin")
    for key in ("incoming/d/dev/b.shard", "runs/r1/x", f"models/projection/{MODEL}/v1.bin"):
        assert not allows(p, "s3:DeleteObject", f"{DATA}/{key}")


def test_client_reads_models_only():
    p = load("client-read")
    assert allows(p, "s3:GetObject", f"{DATA}/models/projection/{MODEL}/latest.json")
    assert allows(p, "s3:GetObject", f"{DATA}/models/projection/{MODEL}/v3.bin")
    assert not allows(p, "s3:PutObject", f"{DATA}/models/projection/{MODEL}/v3.bin")
    for key in ("incoming/x.shard", "reports/r/index.html", "runs/r/report.json"):
        assert not allows(p, "s3:GetObject", f"{DATA}/{key}")
    assert not allows(p, "s3:ListBucket", DATA, "models/")


def test_operator_reads_all_deletes_quarantine_only():
    p = load("operator")
    assert allows(p, "s3:GetObject", f"{DATA}/incoming/x.shard")
    assert allows(p, "s3:ListBucket", DATA, "quarantine/")
    assert allows(p, "s3:DeleteObject", f"{DATA}/quarantine/r1/x.shard")
    assert not allows(p, "s3:DeleteObject", f"{DATA}/incoming/x.shard")
    assert not allows(p, "s3:PutObject", f"{DATA}/models/projection/{MODEL}/v9.bin")


# ------------------------------------------------------------------ the checker can fail

WIDENINGS = {
    "extra action": lambda p: p["Statement"][0].__setitem__(
        "Action", as_list(p["Statement"][0]["Action"]) + ["s3:DeleteObject"]),
    "s3 wildcard": lambda p: p["Statement"][0].__setitem__("Action", "s3:*"),
    "prefix wildcard": lambda p: p["Statement"][0].__setitem__("Action", "s3:Put*"),
    "resource star": lambda p: p["Statement"][0].__setitem__("Resource", "*"),
    "whole bucket": lambda p: p["Statement"][0].__setitem__("Resource", f"{DATA}/*"),
    "incoming delete": lambda p: p["Statement"].append(
        {"Effect": "Allow", "Action": "s3:DeleteObject", "Resource": f"{DATA}/incoming/*"}),
    "not action": lambda p: p["Statement"].append(
        {"Effect": "Allow", "NotAction": "s3:DeleteObject", "Resource": f"{DATA}/*"}),
}


@pytest.mark.parametrize("name", sorted(INTENDED))
@pytest.mark.parametrize("how", sorted(WIDENINGS))
def test_widened_copy_is_caught(name, how):
    widened = copy.deepcopy(load(name))
    WIDENINGS[how](widened)
    assert problems(widened, INTENDED[name]) != []


def test_dropped_list_condition_is_caught():
    widened = copy.deepcopy(load("emr-instance"))
    del widened["Statement"][0]["Condition"]
    assert problems(widened, INTENDED["emr-instance"]) != []
    assert allows(widened, "s3:ListBucket", DATA, "models/")


# ------------------------------------------------------------------ template


class CfnLoader(yaml.SafeLoader):
    """YAML loader mapping CloudFormation short tags to their long form."""


def _tag(loader, suffix, node):
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _tag)

BUCKET_ARNS = {"DataBucket": DATA, "OpsBucket": OPS}


def resolve(value):
    """Replace the bucket ARNs of the template by the placeholders of the files."""
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        logical, attr = value["Fn::GetAtt"]
        assert attr == "Arn" and logical in BUCKET_ARNS, value
        return BUCKET_ARNS[logical]
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        text = value["Fn::Sub"]
        for logical, arn in BUCKET_ARNS.items():
            text = text.replace("${%s.Arn}" % logical, arn)
        assert "${" not in text, f"unresolved substitution in {text}"
        return text
    if isinstance(value, dict):
        return {k: resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v) for v in value]
    return value


def canonical(policy):
    """Statements as comparable values: lists sorted, one-element lists flattened."""
    def norm(v):
        if isinstance(v, dict):
            return tuple(sorted((k, norm(x)) for k, x in v.items()))
        return tuple(sorted(norm(x) if isinstance(x, dict) else x for x in as_list(v)))
    return sorted(norm(st) for st in as_list(policy["Statement"]))


@pytest.fixture(scope="module")
def template():
    return yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)


def inline_policies(template, logical):
    props = template["Resources"][logical]["Properties"]
    return {p["PolicyName"]: p["PolicyDocument"] for p in props.get("Policies", [])}


@pytest.mark.parametrize("name", sorted(TEMPLATE_POLICIES))
def test_template_inline_policy_equals_file(template, name):
    logical, policy_name = TEMPLATE_POLICIES[name]
    doc = resolve(inline_policies(template, logical)[policy_name])
    assert canonical(doc) == canonical(load(name))
    assert problems(doc, INTENDED[name]) == []


def s3_actions(doc):
    return [a for st in as_list(doc["Statement"]) for a in as_list(st.get("Action", []))
            if a.startswith("s3:")]


def test_template_grants_s3_only_through_the_files(template):
    mapped = {v for v in TEMPLATE_POLICIES.values()}
    for logical, res in template["Resources"].items():
        if res["Type"] in ("AWS::IAM::Role", "AWS::IAM::Group", "AWS::IAM::User"):
            for pname, doc in inline_policies(template, logical).items():
                if (logical, pname) not in mapped:
                    assert s3_actions(doc) == [], (logical, pname)
            # Managed policies: only the EMR service role's AWS-managed v2 policy.
            for arn in res["Properties"].get("ManagedPolicyArns", []):
                assert logical == "EmrServiceRole"
                assert arn["Fn::Sub"].endswith(":iam::aws:policy/service-role/AmazonEMRServicePolicy_v2")
        assert res["Type"] not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"), logical


def test_bucket_policies_only_deny_plain_http(template):
    for logical, res in template["Resources"].items():
        if res["Type"] != "AWS::S3::BucketPolicy":
            continue
        for st in as_list(res["Properties"]["PolicyDocument"]["Statement"]):
            assert st["Effect"] == "Deny", logical
            assert st["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}, logical


def test_buckets_private_encrypted_versioned(template):
    for logical in ("DataBucket", "OpsBucket"):
        props = template["Resources"][logical]["Properties"]
        assert all(props["PublicAccessBlockConfiguration"].values()), logical
        assert props["VersioningConfiguration"]["Status"] == "Enabled"
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    rules = template["Resources"]["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    expiring = {r.get("Prefix") for r in rules if "ExpirationInDays" in r}
    assert expiring == {"runs/", "quarantine/"}
    assert any("NoncurrentVersionExpiration" in r for r in rules)
