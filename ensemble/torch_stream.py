"""The soft-voting job on a torch device: the device never waits on the host.

Three stages overlap: reader threads decode the PNGs and read the maps ahead of the
device; the main thread runs the models and the vote (``device.DeviceVoter``) on the
device; encoder threads clean and format each image's runs while a writer thread writes
them in image order. Only bytes (images, maps) go to the device and only run boundaries
come back. Output order and bytes do not depend on the number of threads.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.codec import rle_text
from core.errors import UsageError
from core.predictions import Predictions, PredictionWriter, written
from core.window import ordered
from ensemble.soft_image import Layer
from ensemble.soft_plan import SoftJob, soft_writer
from ensemble.torch_vote import DeviceLayer, DeviceVoter, ExclusiveDeviceVoter


@dataclass
class _Inputs:
    """One image's host-side inputs, read by a reader thread."""

    name: str
    pixels: np.ndarray | None
    maps: list[Layer | None]
    size: tuple[int, int]


def _read_inputs(job: SoftJob, name: str, path: Path | None) -> _Inputs:
    from ensemble.models import read_image

    pixels = read_image(path) if job.models else None
    size = job.size_of(name, pixels)
    return _Inputs(name, pixels, [_in_memory(m) for m in job.read_maps(name)], size)


def _in_memory(layer: Layer | None) -> Layer | None:
    """The layer with its data read (memory-mapped files are paged in here, in the reader
    thread) in a dtype torch moves to any device: float64 → float32 and uint16 → float32
    are the roundings ``.float()`` would make on the device (uint16 values are exact)."""
    if layer is None:
        return None
    a = layer.data
    if a.dtype in (np.float64, np.uint16):
        a = a.astype(np.float32)
    elif not (a.flags.writeable and a.flags.c_contiguous):  # a read-only memory map: read it now
        a = np.array(a, order="C")
    layer.data = a
    return layer


class _Reader:
    """Reads images ahead of the device in ``workers`` threads, in image order."""

    def __init__(self, job: SoftJob):
        self.job = job
        self.pool = ThreadPoolExecutor(job.workers, thread_name_prefix="soft-read")
        self.ahead = max(2 * job.workers, 2 * job.batch_size)

    def batches(self):
        """Lists of up to ``batch_size`` ``_Inputs``, in image order."""
        images = self.job.images
        batch: list[_Inputs] = []
        for inputs in ordered(lambda k: self.pool.submit(_read_inputs, self.job, *images[k]), len(images), self.ahead):
            batch.append(inputs)
            if len(batch) == self.job.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class _Sink:
    """Cleans and formats images in a pool and writes them in submission order from one
    thread. The first image is done inline so that numba compiles or loads the cleaning
    kernels before threads call them (first-time compilation is not thread-safe). Text is
    made by ``rle_text``: no numba unless there is cleaning."""

    def __init__(self, job: SoftJob, writer: PredictionWriter, progress, workers: int):
        self.job, self.writer, self.progress = job, writer, progress
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="soft-encode")
        self.queue: queue.Queue = queue.Queue(maxsize=4 * workers)
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None

    def put(self, name: str, runs: list[np.ndarray], grid: tuple[int, int] | None = None) -> None:
        """Clean (on ``grid``, the runs' ``(rows, columns)``), format and write one image."""
        if self.error is not None:
            raise self.error
        if self.thread is None:
            self._write(name, self.job.encode(runs, rle_text, grid))
            self.thread = threading.Thread(target=self._drain, name="soft-write", daemon=True)
            self.thread.start()
            return
        self.queue.put((name, self.pool.submit(self.job.encode, runs, rle_text, grid)))

    def _write(self, name: str, rles: list[str]) -> None:
        self.writer.write_image(name, rles)
        if self.progress is not None:
            self.progress.update(1)

    def _drain(self) -> None:
        while (item := self.queue.get()) is not None:
            name, fut = item
            if self.error is not None:
                fut.cancel()
                continue  # keep taking items so that ``put`` never blocks on a full queue
            try:
                self._write(name, fut.result())
            except BaseException as e:  # handed to the main thread, raised there
                self.error = e

    def close(self) -> None:
        """Wait for every image to be written; re-raise an encoder's or writer's error."""
        self._stop()
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        """Stop writing (the main thread failed): pending images are dropped, not written."""
        if self.error is None:
            self.error = RuntimeError("aborted")
        self._stop()

    def _stop(self) -> None:
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
            self.thread = None
        self.pool.shutdown(wait=True, cancel_futures=True)


def _upload(layer: Layer, device) -> DeviceLayer:
    import torch

    return DeviceLayer(
        torch.from_numpy(layer.data).to(device),
        logits=layer.logits,
        scale=layer.scale,
        box=layer.box,
        origin=layer.origin or layer.name,
    )


class _Voters:
    """The job's device voter of each image size (a voter holds its canvas), made on first use."""

    def __init__(self, job: SoftJob, device):
        self.job, self.device = job, device
        self.voters: dict[tuple[int, int], DeviceVoter | ExclusiveDeviceVoter] = {}

    def __call__(self, size: tuple[int, int]) -> DeviceVoter | ExclusiveDeviceVoter:
        voter = self.voters.get(size)
        if voter is None:
            job, (h, w), transpose = self.job, size, self.job.layout.transposed
            if job.exclusive:
                voter = ExclusiveDeviceVoter(h, w, self.device, transpose=transpose)
            else:
                voter = DeviceVoter(job.thresholds, h, w, self.device, job.class_chunk, transpose=transpose)
            self.voters[size] = voter
        return voter


def run_device_job(job: SoftJob, output: str | Path | None, progress=None) -> int | Predictions:
    """Vote every image on ``job.device`` and write the CSV atomically; returns rows written."""
    import torch

    from ensemble.models import forward

    device = torch.device(job.device or "cpu")
    voters = _Voters(job, device)
    n_models = len(job.models)
    reader = _Reader(job)
    try:
        with soft_writer(job, output) as writer:
            sink = _Sink(job, writer, progress, job.workers)
            try:
                for batch in reader.batches():
                    logits = (
                        forward(job.models, [b.pixels for b in batch], job.tta, device, len(job.classes), job.exclusive)
                        if n_models
                        else []
                    )
                    for i, item in enumerate(batch):
                        rows = job.present(item.name, n_models, item.maps)
                        layers = [
                            DeviceLayer(lg[i], logits=True, origin=f"model {job.names[m]}")
                            for m, lg in enumerate(logits)
                        ]
                        layers += [_upload(m, device) for m in item.maps if m is not None]
                        runs = voters(item.size).vote(layers, job.channel_weights(rows))
                        sink.put(item.name, runs, job.layout.grid(*item.size))
                sink.close()
            except torch.OutOfMemoryError as e:
                sink.abort()
                raise UsageError(
                    f"device {device}: out of memory ({str(e).splitlines()[0][:120]}); lower "
                    f"class_chunk (now {job.class_chunk}) or batch_size (now {job.batch_size})"
                ) from None
            except BaseException:
                sink.abort()
                raise
    finally:
        reader.close()
    return written(writer)
