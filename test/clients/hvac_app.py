"""An application that is not root, driven with unmodified hvac (Debian's python3-hvac).

Run by test/integration/apps.test.ts as:
    /usr/bin/python3 hvac_app.py <url> <admin token> <name>
With an admin token (no root): enable AppRole at approle-<name>, write an HCL policy, create a
role, fetch its role ID and a secret ID. Then as the application (its own AppRole token): write,
read and list under its path, be refused outside it, create a child token, look itself up,
renew and revoke itself. Any surprise raises; the last line printed is "ok <n> steps".
"""
import sys

import hvac

url, admin_token, name = sys.argv[1], sys.argv[2], sys.argv[3]
steps = 0


def check(condition, what):
    global steps
    steps += 1
    if not condition:
        raise AssertionError(what)


def refused(fn, what):
    try:
        fn()
    except hvac.exceptions.Forbidden:
        check(True, what)
        return
    check(False, f"{what}: not refused")


admin = hvac.Client(url=url, token=admin_token)
mount = f"approle-{name}"
admin.sys.enable_auth_method("approle", path=mount)
check(f"{mount}/" in admin.sys.list_auth_methods()["data"], "approle enabled")
admin.sys.create_or_update_policy(
    name=f"app-{name}",
    policy=f'''
path "secret/data/app-{name}/*" {{
  capabilities = ["create", "read", "update"]
}}
path "secret/metadata/app-{name}/*" {{
  capabilities = ["list"]
}}
path "auth/token/create" {{
  capabilities = ["update"]
}}
''',
)
check("app-" + name in admin.sys.list_policies()["data"]["policies"], "policy listed")
admin.auth.approle.create_or_update_approle(
    role_name="web", token_policies=[f"app-{name}"], token_ttl="1h", token_max_ttl="4h", mount_point=mount
)
role_id = admin.auth.approle.read_role_id(role_name="web", mount_point=mount)["data"]["role_id"]
secret = admin.auth.approle.generate_secret_id(role_name="web", metadata={"app": name}, mount_point=mount)
secret_id = secret["data"]["secret_id"]
check(secret["data"]["secret_id_accessor"] != "", "secret id accessor")

app = hvac.Client(url=url)
login = app.auth.approle.login(role_id=role_id, secret_id=secret_id, mount_point=mount)
check(login["auth"]["policies"] == ["app-" + name, "default"], f"login policies: {login['auth']}")
check(app.token == login["auth"]["client_token"] and app.is_authenticated(), "logged in")

kv = app.secrets.kv.v2
kv.create_or_update_secret(path=f"app-{name}/db", secret={"password": "p1"})
kv.create_or_update_secret(path=f"app-{name}/web", secret={"k": "v"})
check(kv.read_secret_version(path=f"app-{name}/db")["data"]["data"] == {"password": "p1"}, "read own")
check(kv.list_secrets(path=f"app-{name}")["data"]["keys"] == ["db", "web"], "list own")
refused(lambda: kv.read_secret_version(path="other/x"), "read outside")
refused(lambda: kv.create_or_update_secret(path="other/x", secret={"a": 1}), "write outside")
refused(lambda: kv.list_secrets(path="other"), "list outside")
refused(lambda: app.sys.enable_secrets_engine("kv", path=f"evil-{name}"), "sys outside")

child = app.auth.token.create(policies=["app-" + name], ttl="10m")
check(child["auth"]["orphan"] is False and child["auth"]["lease_duration"] == 600, f"child: {child['auth']}")
child_client = hvac.Client(url=url, token=child["auth"]["client_token"])
check(child_client.secrets.kv.v2.read_secret_version(path=f"app-{name}/db")["data"]["data"]["password"] == "p1", "child reads")
try:
    app.auth.token.create(policies=["root"])
    check(False, "a root child of a token that is not root")
except hvac.exceptions.InvalidRequest as err:
    check("without parent token being root" in str(err), f"child with root: {err}")
try:
    app.auth.token.create(policies=["app-" + name, "admin"])
    check(False, "a child with more policies than its parent")
except hvac.exceptions.InvalidRequest as err:
    check("subset of parent" in str(err), f"child with more policies: {err}")

me = app.auth.token.lookup_self()["data"]
check(me["policies"] == ["app-" + name, "default"] and me["meta"] == {"role_name": "web"}, f"lookup-self: {me}")
renewed = app.auth.token.renew_self(increment="2h")
check(renewed["auth"]["lease_duration"] > 3600, f"renewed: {renewed['auth']}")
app.auth.token.revoke_self()
refused(lambda: app.secrets.kv.v2.read_secret_version(path=f"app-{name}/db"), "revoked self")
refused(lambda: child_client.secrets.kv.v2.read_secret_version(path=f"app-{name}/db"), "child revoked with parent")
print(f"ok {steps} steps")
