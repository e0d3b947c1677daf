"""The project's own rules for the ECS CloudFormation template (cfn-lint and checkov check the rest).

Secrets reach containers only through `Secrets` (Secrets Manager / SSM ARNs), never as environment values, URLs with
credentials or plain parameters; the API service sits behind a target group whose health check is /readyz, with a
container health check, a deployment circuit breaker that rolls back, and draining that fits the server's shutdown
timeout; no database or task is reachable from the internet; every container logs to CloudWatch as a non-root
user on a read-only root file system; the daily job is scheduled one task at a time; the API scales on CPU and on
requests. With `--docs`, the ECS section of docs/deploy.md names only stacks, parameters, outputs and resources
that the template defines.
Usage: python ecs_rules.py template.yaml [--docs docs/deploy.md]  (one line per problem; exit 1 if any)
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml
from report import report

CONFIG = Path(__file__).resolve().parent.parent / "k8s" / "base" / "churnops.toml"
SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|DB_URL|DATABASE_URL|TOML)", re.IGNORECASE)
SECRET_PARAM = re.compile(r"(password|token|secret|apikey|api_key|credential)", re.IGNORECASE)
URL_WITH_CREDENTIALS = re.compile(r"://[^/@\s:]+:[^@\s/]+@")
OPEN_CIDRS = {"0.0.0.0/0", "::/0"}
DATABASE_PORTS = (5432, 3306)


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags: `!Ref X` → {"Ref": X}, `!Sub s` → {"Fn::Sub": s}, …"""


def _intrinsic(loader: CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _intrinsic)


def load(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=CfnLoader)


def strings(value: Any) -> list[str]:
    """Every string inside a value, intrinsic functions included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def present(value: Any) -> list[Any]:
    """A list property with `!If [cond, item, !Ref AWS::NoValue]` items: the items that can be there."""
    out: list[Any] = []
    for v in value or []:
        if isinstance(v, dict) and "Fn::If" in v:
            out.extend(x for x in v["Fn::If"][1:] if x != {"Ref": "AWS::NoValue"})
        else:
            out.append(v)
    return out


def ref_name(value: Any) -> str | None:
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


def of_type(resources: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r.get("Properties", {}) for k, r in resources.items() if r.get("Type") == kind}


def opens_database(rule: dict[str, Any]) -> bool:
    cidr = rule.get("CidrIp") or rule.get("CidrIpv6")
    if not isinstance(cidr, str) or cidr not in OPEN_CIDRS:
        return False
    low, high = int(rule.get("FromPort", 0)), int(rule.get("ToPort", 65535))
    return str(rule.get("IpProtocol")) == "-1" or any(low <= p <= high for p in DATABASE_PORTS)


def secret_problems(template: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for name, param in template.get("Parameters", {}).items():
        if SECRET_PARAM.search(name) and not str(param.get("AllowedPattern", "")).lstrip("^$|").startswith("arn:"):
            out.append(
                f"parameter {name}: a secret is passed as a Secrets Manager ARN (AllowedPattern ^arn:…), not as a value"
            )
        if "Default" in param and URL_WITH_CREDENTIALS.search(str(param["Default"])):
            out.append(f"parameter {name}: its default is a URL with credentials")
    for s in strings(template.get("Resources", {})):
        if URL_WITH_CREDENTIALS.search(s):
            out.append(f"a URL with credentials is written in the template: {URL_WITH_CREDENTIALS.sub('://***@', s)}")
    for td_name, td in of_type(template["Resources"], "AWS::ECS::TaskDefinition").items():
        for c in td.get("ContainerDefinitions", []):
            for env in present(c.get("Environment")):
                if SECRET_NAME.search(str(env.get("Name", ""))):
                    out.append(
                        f"{td_name}/{c['Name']}: {env['Name']} is a plain-text environment value; use Secrets"
                    )
    return out


def container_problems(template: dict[str, Any]) -> list[str]:
    out: list[str] = []
    shutdown_ms = int(tomllib.loads(CONFIG.read_text()).get("server", {}).get("shutdown_timeout_ms", 20000))
    for td_name, td in of_type(template["Resources"], "AWS::ECS::TaskDefinition").items():
        if td.get("RequiresCompatibilities") != ["FARGATE"]:
            out.append(f"{td_name}: must require FARGATE")
        for c in td.get("ContainerDefinitions", []):
            where = f"{td_name}/{c['Name']}"
            if c.get("LogConfiguration", {}).get("LogDriver") != "awslogs":
                out.append(f"{where}: logs must go to CloudWatch (awslogs)")
            if c.get("ReadonlyRootFilesystem") is not True:
                out.append(f"{where}: set ReadonlyRootFilesystem: true")
            if str(c.get("User", "root")).split(":")[0] in ("root", "0"):
                out.append(f"{where}: must run as a non-root user")
            if c.get("Privileged") is True:
                out.append(f"{where}: must not be privileged")
            if c.get("PortMappings") and "HealthCheck" not in c:
                out.append(f"{where}: a serving container needs a HealthCheck")
            if c.get("PortMappings") and int(c.get("StopTimeout", 30)) * 1000 <= shutdown_ms:
                out.append(f"{where}: StopTimeout must exceed the server's shutdown_timeout_ms ({shutdown_ms} ms)")
    return out


def service_problems(template: dict[str, Any]) -> list[str]:
    out: list[str] = []
    resources = template["Resources"]
    services = of_type(resources, "AWS::ECS::Service")
    if not services:
        return ["no ECS service for the API"]
    for name, svc in services.items():
        breaker = svc.get("DeploymentConfiguration", {}).get("DeploymentCircuitBreaker", {})
        if breaker.get("Enable") is not True or breaker.get("Rollback") is not True:
            out.append(f"{name}: the deployment circuit breaker must be enabled with rollback")
        if svc.get("NetworkConfiguration", {}).get("AwsvpcConfiguration", {}).get("AssignPublicIp") != "DISABLED":
            out.append(f"{name}: tasks must not get public IPs (AssignPublicIp: DISABLED)")
        lbs = svc.get("LoadBalancers", [])
        if not lbs:
            out.append(f"{name}: the API service must sit behind the load balancer")
        for lb in lbs:
            tg = resources.get(ref_name(lb.get("TargetGroupArn")) or "", {}).get("Properties", {})
            if tg.get("HealthCheckEnabled") is False or tg.get("HealthCheckPath") != "/readyz":
                out.append(f"{name}: its target group must health-check /readyz")
            delay = {a["Key"]: a["Value"] for a in tg.get("TargetGroupAttributes", [])}.get(
                "deregistration_delay.timeout_seconds"
            )
            if delay is None or int(delay) > 60:
                out.append(f"{name}: set the target group's deregistration_delay.timeout_seconds (at most 60 s)")
    metrics = {
        p.get("TargetTrackingScalingPolicyConfiguration", {})
        .get("PredefinedMetricSpecification", {})
        .get("PredefinedMetricType")
        for p in of_type(resources, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    }
    for metric in ("ECSServiceAverageCPUUtilization", "ALBRequestCountPerTarget"):
        if metric not in metrics:
            out.append(f"the API must scale by target tracking on {metric}")
    return out


def network_problems(template: dict[str, Any]) -> list[str]:
    out: list[str] = []
    resources = template["Resources"]
    for kind in ("AWS::RDS::DBInstance", "AWS::RDS::DBCluster"):
        for name, db in of_type(resources, kind).items():
            if db.get("PubliclyAccessible") not in (False, "false"):
                out.append(f"{name}: the database must not be publicly accessible")
    for name, sg in of_type(resources, "AWS::EC2::SecurityGroup").items():
        for rule in sg.get("SecurityGroupIngress", []):
            if opens_database(rule):
                out.append(f"{name}: a database port is open to the internet")
    for name, rule in of_type(resources, "AWS::EC2::SecurityGroupIngress").items():
        if opens_database(rule):
            out.append(f"{name}: a database port is open to the internet")
    return out


def schedule_problems(template: dict[str, Any]) -> list[str]:
    resources = template["Resources"]
    for sched in of_type(resources, "AWS::Scheduler::Schedule").values():
        ecs = sched.get("Target", {}).get("EcsParameters", {})
        family = resources.get(ref_name(ecs.get("TaskDefinitionArn")) or "", {}).get("Properties", {}).get("Family", {})
        if "daily" in str(family) and int(ecs.get("TaskCount", 1)) == 1:
            return []
    return ["the daily job needs a schedule that starts one daily task at a time"]


def defined_names(template: dict[str, Any], stack_name: str) -> set[str]:
    """Physical names the template gives, with ${Name} as the docs deploy it."""
    names = {stack_name}
    for r in template["Resources"].values():
        for key in ("ServiceName", "Family", "Name", "ClusterName", "LogGroupName"):
            value = r.get("Properties", {}).get(key)
            if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
                names.add(value["Fn::Sub"].replace("${Name}", stack_name))
            elif isinstance(value, dict) and value.get("Ref") == "Name":
                names.add(stack_name)
    return names


# The flags of the aws CLI whose value names something this stack defines.
NAMED_BY_FLAG = re.compile(r"--(stack-name|cluster|service|task-definition|name|log-group-name)[ =]+'?([\w/.:-]+)")
LOGS_TAIL = re.compile(r"aws logs tail ([\w/.-]+)")


def docs_problems(template: dict[str, Any], docs: Path) -> list[str]:
    text = docs.read_text()
    match = re.search(r"^## Amazon ECS.*?(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    if match is None:
        return [f"{docs}: no '## Amazon ECS' section"]
    code = "\n".join(re.findall(r"^```[a-z]*\n(.*?)^```", match.group(0), re.MULTILINE | re.DOTALL))
    out: list[str] = []
    stack = template["Parameters"]["Name"]["Default"]
    names = defined_names(template, stack)
    # Secrets and the config parameter live outside the stack by design: their commands create them.
    in_stack = "\n".join(line for line in code.splitlines() if not re.search(r"aws (secretsmanager|ssm) ", line))
    named = [(f"--{flag}", value) for flag, value in NAMED_BY_FLAG.findall(in_stack)]
    named += [("aws logs tail", value) for value in LOGS_TAIL.findall(code)]
    for flag, value in named:
        # A task definition may carry a revision (churnops-api:41).
        if value.split(":")[0] not in names:
            out.append(f"{docs}: `{flag} {value}` names something the template does not define")
    overrides = re.findall(r"--parameter-overrides((?:[^\n]*\\\n)*[^\n]*)", code)
    for key in sorted({k for block in overrides for k in re.findall(r"(?<![\w-])([A-Z]\w*)=", block)}):
        if key not in template["Parameters"]:
            out.append(f"{docs}: parameter {key} is not a parameter of the template")
    for key in sorted(set(re.findall(r"OutputKey==`?'?(\w+)", code))):
        if key not in template.get("Outputs", {}):
            out.append(f"{docs}: output {key} is not an output of the template")
    if not named or not overrides:
        out.append(
            f"{docs}: the ECS section shows no deploy command (aws cloudformation deploy --parameter-overrides …)"
        )
    return out


def problems(template: dict[str, Any]) -> list[str]:
    return [
        *secret_problems(template),
        *container_problems(template),
        *service_problems(template),
        *network_problems(template),
        *schedule_problems(template),
    ]


if __name__ == "__main__":
    tpl = load(Path(sys.argv[1]))
    found = problems(tpl)
    if "--docs" in sys.argv:
        found += docs_problems(tpl, Path(sys.argv[sys.argv.index("--docs") + 1]))
    report(found)
