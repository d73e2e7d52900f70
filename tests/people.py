"""Users for the tests: made straight through the service, as the CLI would, each with an API token."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from segmentsync.auth import service
from segmentsync.auth.models import Role, User
from segmentsync.db import transaction
from segmentsync.runtime import Runtime


@dataclass
class Person:
    id: int
    email: str
    role: Role
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def load(self, runtime: Runtime) -> User:
        with runtime.sessions() as session:
            user = session.get(User, self.id)
            assert user is not None
            return user


MakeUser = Callable[..., Person]


def make_person(
    runtime: Runtime, email: str, role: Role = Role.VIEWER, *, password: str | None = None
) -> Person:
    with transaction(runtime.sessions) as session:
        user = service.create_user(session=session, email=email, role=role, password=password, actor=None)
        _, token = service.create_api_token(
            session=session, user=user, name="tests", actor=None, now=runtime.clock()
        )
    return Person(id=user.id, email=user.email, role=role, token=token)
