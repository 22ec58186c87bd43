# SPDX-License-Identifier: GPL-3.0-or-later
"""trollflow2 workers that deliver the products: staged writing, and completion messages on a chosen address."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from posttroll.publisher import create_publisher_from_dict_config
from trollflow2.plugins import AbortProcessing, save_datasets
from trollflow2.plugins import FilePublisher as _TrollflowFilePublisher

LOG = logging.getLogger(__name__)

#: Seconds the publisher waits before closing, so that a job process ending at once does not drop the last messages.
_FLUSH_S = 0.5


def save_datasets_staged(job):
    """Write the products with trollflow2's ``save_datasets``, through a staging folder of this job only.

    Every file is written under its final name in a fresh folder inside the product list's ``staging_zone``
    (which must be on the same file system as ``output_dir``) and renamed into ``output_dir`` only once all the
    job's files are complete, so no partial product is ever visible there. Whatever happens, the job's staging
    folder is removed afterwards: a failed job leaves nothing behind, and its error names the input files.

    YAML (``staging_zone`` is trollflow2's own product-list setting)::

        product_list:
          output_dir: /data/products/precipitation
          staging_zone: /data/products/precipitation/.staging
        workers:
          - fun: !!python/name:trollflow2_plugins.delivery.save_datasets_staged
    """
    settings = job["product_list"]["product_list"]
    root = settings.get("staging_zone")
    if not root:
        raise AbortProcessing("save_datasets_staged needs 'staging_zone' in the product list "
                              "(a folder on the same file system as output_dir)")
    Path(root).mkdir(parents=True, exist_ok=True)
    _check_same_file_system(root, settings.get("output_dir", ""))
    staging = tempfile.mkdtemp(prefix="job-", dir=root)
    settings["staging_zone"] = staging
    try:
        save_datasets(job)
    except Exception as error:
        LOG.error("Products of %s not written (%s: %s); the partial files were removed",
                  ", ".join(map(str, job["input_filenames"])), type(error).__name__, error)
        raise
    finally:
        settings["staging_zone"] = root
        shutil.rmtree(staging, ignore_errors=True)


def _check_same_file_system(staging_zone, output_dir):
    """Refuse a staging zone the products could not be renamed from, before anything is computed."""
    target = Path(output_dir.split("{")[0] or ".").absolute()  # the fixed part of a trollsift pattern
    while not target.exists():
        target = target.parent
    if os.stat(staging_zone).st_dev != os.stat(target).st_dev:
        raise AbortProcessing(f"staging_zone {staging_zone} and output_dir {output_dir} are on different file "
                              "systems: the products could not be renamed into place")


class FilePublisher(_TrollflowFilePublisher):
    """trollflow2's file publisher (one posttroll ``file`` message per product file) bound to one address.

    trollflow2's own publisher binds every network interface, or multicasts when no name server is used; this
    one listens on the given address only, e.g. the loopback interface or the interface of the site network.

    YAML::

        - fun: !!python/object:trollflow2_plugins.delivery.FilePublisher
            address: tcp://127.0.0.1:30002
    """

    def __init__(self, address):
        """Bind the publisher to ``address`` (``tcp://HOST:PORT``)."""
        self.pub = None
        self.__setstate__({"address": address})

    def __setstate__(self, kwargs):
        """Start publishing; YAML's ``!!python/object`` calls this with the mapping's keys."""
        self.address = kwargs["address"]
        self.pub = create_publisher_from_dict_config({"address": self.address, "nameservers": False,
                                                      "name": "satpy-prenet"})
        self.pub.start()
        LOG.debug("Publishing product messages on %s", self.address)

    def stop(self):
        """Give the last messages time to leave (posttroll closes with a 1 ms linger), then unbind."""
        if self.pub is not None:
            time.sleep(_FLUSH_S)
        super().stop()
