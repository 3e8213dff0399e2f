"""An application that receives its AppRole secret ID wrapped, driven with unmodified hvac.

Started by hvac_scenario.py (the trusted orchestrator) with only a wrapping token and its role ID:
    /usr/bin/python3 hvac_wrapped_app.py <url> <wrapping token> <role id> <approle mount> <role> <secret>
It checks where the wrapping token was made (sys/wrapping/lookup, with no token of its own),
unwraps it with the wrapping token as its only token, logs in with AppRole and reads the KV v2
secret `secret/<secret>` its policy allows. Any surprise raises; the last line printed is
{"policies": [...], "secret": {...}} as JSON, which the orchestrator checks.
"""
import json
import sys

import hvac

url, wrapping_token, role_id, mount, role, secret_path = sys.argv[1:7]

# The recipient's check that the token was not swapped on the way: hvac 0.11.2 has no
# sys.wrapping lookup method, so through its adapter (the endpoint needs no token).
looked = hvac.Client(url=url).adapter.post("/v1/sys/wrapping/lookup", json={"token": wrapping_token})
expected = f"auth/{mount}/role/{role}/secret-id"
if looked["data"]["creation_path"] != expected:
    raise AssertionError(f"wrapping token made at {looked['data']['creation_path']}, not {expected}")

secret_id = hvac.Client(url=url, token=wrapping_token).sys.unwrap()["data"]["secret_id"]
app = hvac.Client(url=url)
login = app.auth.approle.login(role_id=role_id, secret_id=secret_id, mount_point=mount)
read = app.secrets.kv.v2.read_secret_version(path=secret_path)
print(json.dumps({"policies": sorted(login["auth"]["policies"]), "secret": read["data"]["data"]}))
