"""A bare Locust FastHttpUser polling one async request's status as fast as it can.

The yardstick for the harness's own overhead (benchmarks/worker_capacity.py): the
same HTTP client, the same endpoint, the same request events, none of the harness's
journey bookkeeping.  Each user creates one request at start and polls it forever.
"""

from locust import FastHttpUser, constant, task

KEY_HEADER = {"anchor-api-key": "capacity-bench-key", "Accept": "application/json"}


class BarePoller(FastHttpUser):
    wait_time = constant(0)
    insecure = False
    max_redirects = 0

    def on_start(self) -> None:
        created = self.client.post("/v1/sessions/async", data=b"{}", name="create",
                                   headers={**KEY_HEADER, "Content-Type": "application/json"})
        self.path = f"/v1/sessions/async/{created.json()['data']['request_id']}/status"

    @task
    def poll(self) -> None:
        self.client.get(self.path, headers=KEY_HEADER, name="/v1/sessions/async/[id]/status")
