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


def _checked_precision(context: click.Context, parameter: click.Parameter, value: str | None) -> str | None:
    """The --precision value, refused at once if it is not one of `satpy_prenet.device.PRECISIONS`."""
    from satpy_prenet.device import PRECISIONS

    if value is not None and value not in PRECISIONS:
        raise click.BadParameter(f"{value!r} is not one of {', '.join(PRECISIONS)}", ctx=context, param=parameter)
    return value


def precision_option() -> Callable[[Any], Any]:
    """The --precision option of inference, checked when the command line is parsed."""
    return click.option("--precision", default=None, callback=_checked_precision,
                        help="Arithmetic of the model: auto (the default: mixed on a GPU; bfloat16 on a CPU with "
                             "bfloat16 instructions, else float32), float32, or bfloat16 (emulated, so slow, on CPUs "
                             "without those instructions; its skill cost is in docs/benchmarks.md).")
