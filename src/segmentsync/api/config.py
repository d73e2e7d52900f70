"""Configuration as code over HTTP (administrators): plan and apply a configuration file.

The body is the file itself (YAML, or JSON, which YAML reads too). Secret references
(``${CM_API_KEY}``) are resolved from the **server's** environment, never sent in a request. Both
routes end the request's transaction first: applying calls the platforms and then writes in one
transaction of its own (on SQLite that needs the write lock the request would hold).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from segmentsync.api.deps import RuntimeDep, SessionDep, require
from segmentsync.auth.models import User
from segmentsync.auth.policy import Action
from segmentsync.config import apply as applying
from segmentsync.config import document, state
from segmentsync.errors import Invalid

router = APIRouter(prefix="/config", tags=["configuration"])
Admin = Annotated[User, Depends(require(Action.CONNECTIONS_MANAGE))]
Prune = Annotated[bool, Query(description="also remove what a section of the file leaves out")]
BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
        "description": "the configuration file, as `segmentsync config export` writes it; its JSON "
        "Schema is GET /api/v1/config/schema",
    }
}


async def _text(request: Request) -> str:
    raw = await request.body()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("the configuration must be UTF-8 text", field="body") from None


Text = Annotated[str, Depends(_text)]


@router.get("", summary="The whole configuration, as `segmentsync config export` writes it (JSON)")
def export_config(session: SessionDep, admin: Admin) -> dict[str, Any]:
    return state.export_config(session, actor=admin)


@router.get("/schema", summary="The JSON Schema of the configuration file")
def config_schema(admin: Admin) -> dict[str, Any]:
    return document.json_schema()


@router.post(
    "/plan",
    summary="What applying the file would create, change and remove (nothing is written)",
    openapi_extra=BODY,
)
def plan_config(
    text: Text, session: SessionDep, runtime: RuntimeDep, admin: Admin, prune: Prune = False
) -> applying.Plan:
    session.commit()  # the request's transaction ends before the platforms are asked
    return applying.plan(runtime=runtime, actor=admin, text=text, prune=prune)


@router.post(
    "/apply",
    summary="Make the configuration match the file, in one transaction (idempotent)",
    openapi_extra=BODY,
)
def apply_config(
    text: Text, session: SessionDep, runtime: RuntimeDep, admin: Admin, prune: Prune = False
) -> applying.Plan:
    session.commit()
    return applying.apply(runtime=runtime, actor=admin, text=text, prune=prune)
