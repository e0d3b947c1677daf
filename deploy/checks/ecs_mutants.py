"""Deliberately broken copies of the ECS template, to prove that the checks fire.

Each mutant is the real template with one mistake a person could make: a secret written as a plain environment
value, the API's health checks removed, a database open to the internet. deploy/validate.sh runs cfn-lint,
checkov and ecs_rules.py on each and fails unless at least one of them refuses it.
Usage: python ecs_mutants.py template.yaml OUT_DIR  (writes OUT_DIR/<mutant>.yaml, prints the mutant names)
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from ecs_rules import load

Template = dict[str, Any]


def _api_container(t: Template) -> dict[str, Any]:
    return next(
        c for c in t["Resources"]["ApiTaskDefinition"]["Properties"]["ContainerDefinitions"] if c["Name"] == "api"
    )


def plaintext_secret(t: Template) -> None:
    """The API keys typed into the task definition instead of taken from Secrets Manager."""
    _api_container(t)["Environment"].append({"Name": "CHURNOPS_API_KEYS", "Value": "3f2a9c0d41e8b7a6"})


def missing_health_check(t: Template) -> None:
    """No /readyz health check on the target group and no container health check."""
    tg = t["Resources"]["ApiTargetGroup"]["Properties"]
    for key in ("HealthCheckPath", "HealthCheckProtocol", "HealthCheckIntervalSeconds", "Matcher"):
        tg.pop(key, None)
    tg["HealthCheckEnabled"] = False
    _api_container(t).pop("HealthCheck")


def public_database(t: Template) -> None:
    """A PostgreSQL instance created in the stack, publicly accessible, its port open to the world."""
    t["Resources"]["OpenDatabaseSecurityGroup"] = {
        "Type": "AWS::EC2::SecurityGroup",
        "Properties": {
            "GroupDescription": "database",
            "VpcId": {"Ref": "VpcId"},
            "SecurityGroupIngress": [{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "CidrIp": "0.0.0.0/0"}],
        },
    }
    t["Resources"]["Database"] = {
        "Type": "AWS::RDS::DBInstance",
        "Properties": {
            "Engine": "postgres",
            "DBInstanceClass": "db.t4g.micro",
            "AllocatedStorage": "20",
            "MasterUsername": "churnops",
            "ManageMasterUserPassword": True,
            "PubliclyAccessible": True,
            "VPCSecurityGroups": [{"Fn::GetAtt": ["OpenDatabaseSecurityGroup", "GroupId"]}],
        },
    }


MUTANTS: dict[str, Callable[[Template], None]] = {
    "plaintext-secret": plaintext_secret,
    "missing-health-check": missing_health_check,
    "public-database": public_database,
}


class CfnDumper(yaml.SafeDumper):
    """Writes intrinsics in their long form ({"Ref": …}, {"Fn::Sub": …}), which CloudFormation also accepts."""


if __name__ == "__main__":
    template, out = load(Path(sys.argv[1])), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    for name, mutate in MUTANTS.items():
        broken = copy.deepcopy(template)
        mutate(broken)
        (out / f"{name}.yaml").write_text(yaml.dump(broken, Dumper=CfnDumper, sort_keys=False))
        print(name)
