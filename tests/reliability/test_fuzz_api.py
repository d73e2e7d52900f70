"""Schemathesis over the OpenAPI document, as each role (viewer, contributor, admin), in process
on the ASGI app, with a world behind it (connections to the sandbox, segments, exports, a run):
no answer is a 5xx, and every answer matches the document (status code and schema).

Bounded in time: a few generated requests per operation and role, derandomized.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import hypothesis
import schemathesis
import stamina
from schemathesis.checks import response_schema_conformance, status_code_conformance

from exports.world import Person, World
from segmentsync.api.app import API_PREFIX, create_app
from segmentsync.auth import service as auth_service
from segmentsync.auth.models import Role, User
from segmentsync.db import transaction

from .scenario import ON_SQLITE, drive, make_export, start_run

EXAMPLES = 8  # per operation and role: 53 operations x 3 roles x 8 ≈ 1,300 requests


def no_server_error(ctx: Any, response: Any, case: Any) -> bool:
    assert response.status_code < 500, f"{response.status_code}: {response.text[:300]}"
    return True


@dataclass
class Actor:
    """A role's user; ``token()`` repairs what the fuzzing did to it (revoked, demoted, deactivated)."""

    world: World
    person: Person

    def token(self) -> str:
        now = self.world.runtime.clock()
        with transaction(self.world.runtime.sessions) as session:
            user = auth_service.user_for_api_token(session=session, token=self.person.token, now=now)
            if user is not None and user.role is self.person.role:
                return self.person.token
        with transaction(self.world.runtime.sessions) as session:
            user = session.get(User, self.person.id)
            assert user is not None
            user.is_active, user.role = True, self.person.role
            _, self.person.token = auth_service.create_api_token(
                session=session, user=user, name="fuzz", actor=None, now=self.world.runtime.clock()
            )
        return self.person.token


def fuzz(operation: Any, token: str) -> None:
    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    @hypothesis.given(case=operation.as_strategy())
    def run(case: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
        case.call_and_validate(checks=[no_server_error, response_schema_conformance, status_code_conformance])

    run()


@ON_SQLITE  # once: the store does not change what the API answers
def test_generated_requests_as_every_role_get_documented_answers(world: World) -> None:
    export_id = make_export(world, "campaign_monitor", segment_ids=[world.segments["PL"]])
    drive(world.runtime, start_run(world, export_id))
    make_export(world, "constant_contact", name="Second")
    schema = schemathesis.openapi.from_asgi(f"{API_PREFIX}/openapi.json", create_app(world.runtime))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 50
    stamina.set_testing(True)  # platform retries without their back-off sleeps
    failures: list[str] = []
    try:
        for person in (world.viewer, world.contributor, world.admin):  # the admin last: it deletes
            actor = Actor(world, person)
            for operation in operations:
                started = time.perf_counter()
                try:
                    fuzz(operation, actor.token())
                except Exception as exc:  # collect every failure, then report them all
                    first = str(exc).strip().splitlines()[:6]
                    failures.append(
                        f"{person.role.value} {operation.method.upper()} {operation.path}: {first}"
                    )
                took = time.perf_counter() - started
                if took > 1:
                    print(f"{person.role.value} {operation.method.upper()} {operation.path}: {took:.1f} s")
    finally:
        stamina.set_testing(False)
    assert not failures, "\n".join(failures)
    assert Role.ADMIN  # the roles exercised: viewer, contributor, admin
