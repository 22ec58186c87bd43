# SPDX-License-Identifier: GPL-3.0-or-later
"""Command-line options shared by ``satpy-prenet`` and ``satpy-prenet-train``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

DEVICE_HELP = "auto, cpu, cuda or cuda:N."


def _checked_device(context: click.Context, parameter: click.Parameter, value: str | None) -> str | None:
    """The --device value, refused at once if it names no torch device."""
    from satpy_prenet.device import parse_device

    try:
        parse_device(value)
    except ValueError as error:
        raise click.BadParameter(str(error), ctx=context, param=parameter) from error
    return value


def device_option(default: str | None = "auto", help: str = DEVICE_HELP) -> Callable[[Any], Any]:
    """The --device option, checked when the command line is parsed."""
    return click.option("--device", default=default, show_default=default is not None, help=help,
                        callback=_checked_device)
