"""``segmentsync sandbox``: run both emulators."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Annotated

import httpx
import typer

app = typer.Typer()


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    cm_port: Annotated[int, typer.Option(help="Campaign Monitor emulator port (0: any free port).")] = 8801,
    cc_port: Annotated[int, typer.Option(help="Constant Contact emulator port (0: any free port).")] = 8802,
    seed: Annotated[
        bool, typer.Option(help="Create a demo client/account and print its credentials.")
    ] = False,
    ready_file: Annotated[
        Path | None,
        typer.Option(help="Write the emulators' URLs here as JSON once they listen.", hidden=True),
    ] = None,
) -> None:
    """Run the local emulators of the Campaign Monitor and Constant Contact APIs."""
    # lazy: the emulators cost 0.05 s CPU of every command's start-up
    from segmentsync.sandbox.server import build_apps, serve

    apps = build_apps()

    def ready(urls: dict[str, str]) -> None:
        if ready_file is not None:
            tmp = ready_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(urls))
            tmp.replace(ready_file)  # atomic: the reader never sees half a file
        typer.echo(f"Campaign Monitor emulator: {urls['campaign_monitor']}/api/v3.3")
        typer.echo(f"Constant Contact emulator: {urls['constant_contact']}/v3")
        if seed:
            _print_seed(urls)

    asyncio.run(
        serve(
            apps, host=host, ports={"campaign_monitor": cm_port, "constant_contact": cc_port}, on_ready=ready
        )
    )


def _print_seed(urls: dict[str, str]) -> None:
    def create() -> None:  # after the servers accept connections
        with httpx.Client(timeout=10) as http:
            client = http.post(
                f"{urls['campaign_monitor']}/_sandbox/clients", json={"Name": "Demo client"}
            ).json()
            account = http.post(
                f"{urls['constant_contact']}/_sandbox/accounts", json={"name": "Demo account"}
            ).json()
        typer.echo("Demo Campaign Monitor client: " + json.dumps(client))
        typer.echo("Demo Constant Contact account: " + json.dumps(account))

    threading.Timer(0.5, create).start()
