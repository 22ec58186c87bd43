"""Choosing the device, and the device runner's batches, GPU memory back-off and pickling."""

from __future__ import annotations

import logging
import os
import pickle
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from satpy_prenet import device
from satpy_prenet.device import autocast_dtype, device_thread, on_device_thread, precision_name, select_device
from satpy_prenet.inference.runner import DeviceRunner


def test_select_device_falls_back_to_cpu(monkeypatch, caplog):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    caplog.set_level(logging.INFO, logger="satpy_prenet.device")
    assert select_device("cuda:0") == torch.device("cpu")
    assert "CUDA is not available" in caplog.text
    assert any(record.levelno == logging.WARNING for record in caplog.records)
    assert select_device("auto") == torch.device("cpu")
    assert select_device("CPU") == torch.device("cpu")
    assert select_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError, match="Unknown torch device"):
        select_device("gpu-please")


@pytest.mark.parametrize("has_bfloat16", [False, True])
def test_the_cpu_runs_bfloat16_by_default_only_with_bfloat16_instructions(monkeypatch, has_bfloat16):
    cpu = torch.device("cpu")
    monkeypatch.setattr(device, "cpu_has_bfloat16", lambda: has_bfloat16)
    assert autocast_dtype(cpu) is (torch.bfloat16 if has_bfloat16 else None)
    assert precision_name(cpu) == ("bfloat16" if has_bfloat16 else "float32")
    assert autocast_dtype(cpu, "float32") is None
    assert autocast_dtype(cpu, "bfloat16") is torch.bfloat16
    assert precision_name(cpu, "float32") == "float32"
    assert autocast_dtype(torch.device("cuda"), "float32") is None


def test_the_bfloat16_probe_answers_false_without_torchs_private_probe(monkeypatch):
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    assert device.cpu_has_bfloat16() is False


def test_every_load_and_forward_on_the_cpu_runs_on_its_one_thread(demo_bundle):
    from satpy_prenet.bundle import load_model_once

    cpu = torch.device("cpu")
    assert device_thread(cpu) is device_thread(torch.device("cpu"))
    threads = set()
    model = load_model_once(demo_bundle).model
    handle = model.register_forward_hook(lambda *_: threads.add(threading.current_thread().name))
    try:
        runner = DeviceRunner(model, device="cpu", batch_size=1)
        with ThreadPoolExecutor(2) as pool:  # as dask's threads call it
            list(pool.map(lambda _: run_all(runner, np.zeros((2, 8, 64, 64), np.float32)), range(2)))
    finally:
        handle.remove()
    assert threads == {on_device_thread(cpu, lambda: threading.current_thread().name)}
    assert on_device_thread(cpu, on_device_thread, cpu, lambda: 7) == 7, "a call from the thread itself runs inline"


def test_a_forked_child_starts_its_own_device_thread():
    cpu = torch.device("cpu")
    device_thread(cpu).submit(int).result()
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the parent's thread does not exist here, the call must not hang
        signal.alarm(30)
        os.write(writer, str(on_device_thread(cpu, lambda: 41) + 1).encode())
        os._exit(0)
    os.close(writer)
    os.waitpid(pid, 0)
    assert os.read(reader, 8) == b"42"


class Affine(torch.nn.Module):
    """Two outputs per input (2x + 1 and -x), recording the batch sizes it is given."""

    def __init__(self, limit: int | None = None):
        super().__init__()
        self.limit = limit
        self.batches = []

    def forward(self, batch):
        if self.limit is not None and len(batch) > self.limit:  # a GPU too small (cannot be provoked on a CPU)
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        self.batches.append(len(batch))
        return 2 * batch + 1, -batch


def run_all(runner, inputs):
    def fill(buffer, index):
        buffer[...] = inputs[index]

    results = list(runner.map(len(inputs), fill, input_shape=inputs.shape[1:]))
    assert [index for indices, _ in results for index in indices] == list(range(len(inputs)))
    return np.concatenate([outputs for _, outputs in results])


def test_runner_batches_and_stacks_the_outputs():
    inputs = np.arange(7 * 2 * 3, dtype=np.float32).reshape(7, 2, 3)
    model = Affine()
    outputs = run_all(DeviceRunner(model, device="cpu", batch_size=3), inputs)
    assert model.batches == [3, 3, 1] and outputs.shape == (7, 2, 2, 3) and outputs.dtype == np.float32
    np.testing.assert_array_equal(outputs[:, 0], 2 * inputs + 1)
    np.testing.assert_array_equal(outputs[:, 1], -inputs)
    with pytest.raises(ValueError, match="batch_size"):
        DeviceRunner(model, device="cpu", batch_size=0)


def test_out_of_memory_halves_the_batch_and_loses_nothing(caplog):
    inputs = np.random.default_rng(0).normal(size=(9, 1, 4, 4)).astype(np.float32)
    model = Affine(limit=2)
    runner = DeviceRunner(model, device="cpu", batch_size=8)
    with caplog.at_level(logging.WARNING, logger="satpy_prenet.inference"):
        outputs = run_all(runner, inputs)
    assert runner.batch_size == 2 and max(model.batches) == 2 and sum(model.batches) == 9
    assert "out of memory" in caplog.text and "retrying with 4" in caplog.text
    np.testing.assert_allclose(outputs[:, 0], 2 * inputs + 1)


def test_out_of_memory_with_one_input_is_a_clear_error():
    with pytest.raises(RuntimeError, match=r"ran out of memory on cpu .*4 x 4 pixels") as error:
        run_all(DeviceRunner(Affine(limit=0), device="cpu", batch_size=4), np.zeros((3, 1, 4, 4), np.float32))
    assert isinstance(error.value.__cause__, torch.cuda.OutOfMemoryError)


def test_runner_pickles_with_a_fresh_lock():
    runner = pickle.loads(pickle.dumps(DeviceRunner(Affine(), device="cpu", batch_size=2)))
    inputs = np.ones((3, 2), dtype=np.float32)
    np.testing.assert_array_equal(run_all(runner, inputs)[:, 0], 3 * inputs)
