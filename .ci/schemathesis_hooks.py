"""Schemathesis hooks for .ci/run: the run's own key follows its rotations.

Schemathesis finds the administrator's principal id in a listing and may rotate that key
(`POST /v1/principals/{id}/rotate`), as any administrator may rotate their own. The old key
then stops working and every later request would test only the 401 path. Here the run
carries on with the new key the rotation returned, so the whole API stays reachable.
A revocation of its own key still ends the run's access: that is the API working.
"""

import os
import urllib.request

import schemathesis

KEY = {"value": os.environ["CUSTODIA_ST_KEY"]}
BASE = os.environ["CUSTODIA_ST_ADDR"]


def _works(key):
    request = urllib.request.Request(f"{BASE}/v1/principals", headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status == 200
    except Exception:
        return False


@schemathesis.auth(refresh_interval=None)
class RunKey:
    def get(self, case, context):
        return KEY["value"]

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


@schemathesis.hook
def after_call(context, case, response):
    if (
        case.method.upper() == "POST"
        and case.path == "/v1/principals/{principal_id}/rotate"
        and response.status_code == 200
        and not _works(KEY["value"])
    ):
        fresh = response.json().get("api_key")
        if fresh:
            KEY["value"] = fresh
