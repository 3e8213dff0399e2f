"""An unmodified hvac (Debian's python3-hvac, default adapter) driving one leaderway address.

Run by test/integration/clients.test.ts as:
    /usr/bin/python3 hvac_scenario.py <url> <token> <name>
It enables KV v2 and v1 mounts named after <name>, then writes, reads, lists (the raw LIST verb,
interleaved with other requests on hvac's keep-alive session), patches and manages metadata,
tunes and disables the mounts. Then, as a trusted orchestrator, it gets an AppRole secret ID
response-wrapped, checks where the wrapping token was made and starts hvac_wrapped_app.py with only
the wrapping token and the role ID; it prints "wrapping token <token>" (spent: the test checks that
a second unwrap is refused). Any surprise raises; the last line printed is "ok <n> steps".
"""
import json
import os
import subprocess
import sys

import hvac

url, token, name = sys.argv[1], sys.argv[2], sys.argv[3]
client = hvac.Client(url=url, token=token)
steps = 0


def check(condition, what):
    global steps
    steps += 1
    if not condition:
        raise AssertionError(what)


v2, v1 = f"hvac-{name}", f"hvac-{name}-v1"
client.sys.enable_secrets_engine("kv", path=v2, options={"version": "2"}, description="hvac test")
client.sys.enable_secrets_engine("kv", path=v1, options={"version": "1"})
mounts = client.sys.list_mounted_secrets_engines()
check(mounts["data"][f"{v2}/"]["options"]["version"] == "2", "v2 mount listed")
check(mounts["data"][f"{v1}/"]["type"] == "kv", "v1 mount listed")

kv = client.secrets.kv.v2
kv.create_or_update_secret(path="app/db", secret={"user": "u", "password": "p1"}, mount_point=v2)
kv.create_or_update_secret(path="app/web", secret={"k": "v"}, mount_point=v2)
for round_ in range(3):
    listed = kv.list_secrets(path="app", mount_point=v2)
    keys = listed["data"]["keys"]
    check("db" in keys and "web" in keys and len(keys) == 2 + round_, f"list round {round_}: {listed}")
    read = kv.read_secret_version(path="app/db", mount_point=v2)
    check(read["data"]["data"]["user"] == "u", "read between lists")
    kv.create_or_update_secret(path=f"app/extra{round_}", secret={"r": round_}, mount_point=v2)
check(len(kv.list_secrets(path="app", mount_point=v2)["data"]["keys"]) == 5, "five keys")

# hvac's patch (read, merge, write with cas) and a server-side JSON merge patch.
kv.patch(path="app/db", secret={"password": "p2"}, mount_point=v2)
check(kv.read_secret_version(path="app/db", mount_point=v2)["data"]["data"] == {"user": "u", "password": "p2"}, "hvac patch")
r = client.adapter.request(
    "patch",
    f"/v1/{v2}/data/app/db",
    json={"data": {"password": None, "token": "t"}},
    headers={"Content-Type": "application/merge-patch+json"},
)
check(r["data"]["version"] == 3, f"merge patch: {r}")
check(kv.read_secret_version(path="app/db", mount_point=v2)["data"]["data"] == {"user": "u", "token": "t"}, "merged")

# metadata: hvac's update_metadata, then custom_metadata through the adapter (as ESO's PushSecret writes it).
kv.update_metadata(path="app/db", max_versions=5, cas_required=False, delete_version_after="0s", mount_point=v2)
client.adapter.post(f"/v1/{v2}/metadata/app/db", json={"custom_metadata": {"owner": name}})
meta = kv.read_secret_metadata(path="app/db", mount_point=v2)
check(meta["data"]["max_versions"] == 5 and meta["data"]["custom_metadata"] == {"owner": name}, f"metadata: {meta}")
kv.configure(max_versions=7, cas_required=False, mount_point=v2)
check(kv.read_configuration(mount_point=v2)["data"]["max_versions"] == 7, "mount config")
kv.delete_metadata_and_all_versions(path="app/web", mount_point=v2)
check("web" not in kv.list_secrets(path="app", mount_point=v2)["data"]["keys"], "web deleted")

kv1 = client.secrets.kv.v1
kv1.create_or_update_secret(path="plain/a", secret={"x": "1"}, mount_point=v1)
check(kv1.read_secret(path="plain/a", mount_point=v1)["data"] == {"x": "1"}, "v1 read")
check(kv1.list_secrets(path="plain", mount_point=v1)["data"]["keys"] == ["a"], "v1 list")
kv1.delete_secret(path="plain/a", mount_point=v1)
try:
    kv1.read_secret(path="plain/a", mount_point=v1)
    check(False, "v1 delete")
except hvac.exceptions.InvalidPath:
    check(True, "v1 deleted")

client.sys.tune_mount_configuration(path=v2, description="tuned by hvac")
check(client.sys.read_mount_configuration(path=v2)["data"]["description"] == "tuned by hvac", "tuned")
client.sys.disable_secrets_engine(path=v2)
client.sys.disable_secrets_engine(path=v1)
check(f"{v2}/" not in client.sys.list_mounted_secrets_engines()["data"], "disabled")

# Response wrapping: the orchestrator hands an application its secret ID as a wrapping token.
approle, role, secret = f"hvac-wrap-{name}", "app", f"hvac-wrap-{name}"
client.sys.enable_auth_method("approle", path=approle)
client.sys.create_or_update_policy(name=secret, policy=f'path "secret/data/{secret}" {{ capabilities = ["read"] }}')
client.secrets.kv.v2.create_or_update_secret(path=secret, secret={"password": f"p-{name}"})
client.auth.approle.create_or_update_approle(
    role_name=role, token_policies=[secret], secret_id_num_uses=1, mount_point=approle
)
role_id = client.auth.approle.read_role_id(role_name=role, mount_point=approle)["data"]["role_id"]
# hvac 0.11.2's generate_secret_id has no wrap_ttl: Client.write passes it to the adapter, which
# sends X-Vault-Wrap-TTL.
wrapped = client.write(f"auth/{approle}/role/{role}/secret-id", wrap_ttl="30s")
info = wrapped.get("wrap_info") or {}
creation_path = f"auth/{approle}/role/{role}/secret-id"
check(wrapped.get("data") is None and info.get("ttl") == 30, f"wrapped secret id: {wrapped}")
check(info.get("creation_path") == creation_path and info.get("accessor"), f"wrap_info: {info}")
looked = client.adapter.post("/v1/sys/wrapping/lookup", json={"token": info["token"]})
check(looked["data"]["creation_path"] == creation_path, f"malfeasance check: {looked}")
app = subprocess.run(
    [sys.executable, os.path.join(os.path.dirname(__file__), "hvac_wrapped_app.py"),
     url, info["token"], role_id, approle, role, secret],
    capture_output=True, text=True, timeout=30,
    env={k: v for k, v in os.environ.items() if not k.startswith("VAULT_")},
)
check(app.returncode == 0, f"wrapped app failed: {app.stdout}{app.stderr}")
report = json.loads(app.stdout.strip().splitlines()[-1])
check(report == {"policies": ["default", secret], "secret": {"password": f"p-{name}"}}, f"wrapped app: {report}")
client.sys.disable_auth_method(path=approle)
print(f"wrapping token {info['token']}")
print(f"ok {steps} steps")
